"""``FakeBotAPI``: the server's state, lifecycle and change notification, made of one mixin per
idea (the other modules of this package), and ``running()``.

How it is built: a ``ThreadingHTTPServer`` in a background thread, one thread per request and one
connection per request (``Connection: close``), so it never depends on the test's event loop and
``stop()`` leaves no thread or socket behind. All state sits behind one lock; every change wakes
the waiting helpers, which are async (they yield to the loop PTB runs in) or sync (``*_sync``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from .faults import FaultInjection, _Fault
from .inspection import Inspection
from .learners import LearnerActions
from .messages import MessageMethods
from .methods import BotMethods
from .protocol import JSONDict
from .records import RecordedRequest, SentMessage, _Pending
from .transport import HTTPEntry, _HTTPServer
from .updates import UpdateQueue


class FakeBotAPI(FaultInjection, LearnerActions, Inspection, HTTPEntry, BotMethods, UpdateQueue, MessageMethods):
    """A fake Telegram Bot API server on 127.0.0.1 (ephemeral port), run in a background thread.

    Args:
        token: the bot token requests must carry (``/bot<token>/<method>``); others get 401.
        bot_username, bot_first_name: what ``getMe`` answers. The bot's id is the token's prefix.
        strict_html: also refuse a ``&`` that starts no HTML entity (Telegram shows it literally;
            in our bot it means missing escaping).
        require_known_chats: sending to a chat no learner has written from (or ``add_chat``) fails
            with "chat not found", as on Telegram.
        min_poll_options: Bot API 10.0 accepts 1 option; 2 (the default) keeps the older, stricter
            rule so a poll with a single option is caught.
        first_update_id: the first ``update_id`` handed out.
        clock: wall-clock seconds for message dates (``time.time`` by default).
    """

    def __init__(
        self,
        token: str = "123456:TEST-TOKEN",
        *,
        bot_username: str = "AutogradTutorBot",
        bot_first_name: str = "Autograd Tutor",
        strict_html: bool = True,
        require_known_chats: bool = True,
        min_poll_options: int = 2,
        first_update_id: int = 1000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        prefix = token.split(":", 1)[0]
        if not prefix.isdigit():
            raise ValueError("a bot token looks like '<digits>:<secret>'")
        self.token = token
        self.bot_user: JSONDict = {
            "id": int(prefix),
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self.strict_html = strict_html
        self.require_known_chats = require_known_chats
        self.min_poll_options = min_poll_options
        self._clock = clock

        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._stop_event = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._async_waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._version = 0

        self._update_ids = itertools.count(first_update_id)
        self._ids = itertools.count(1)
        self._pending: list[_Pending] = []
        self._all_updates: dict[int, JSONDict] = {}
        self._delivered_ids: set[int] = set()
        self._allowed_updates: list[str] | None = None
        self._poll_generation = 0
        self._webhook: JSONDict = {"url": ""}
        self._webhook_threads: list[threading.Thread] = []
        self._webhook_stop = threading.Event()
        self._webhook_error: tuple[int, str] | None = None

        self._chats: dict[int, JSONDict] = {}
        self._next_message_id: dict[int, int] = {}
        self._messages: dict[int, list[SentMessage]] = {}
        self._learner_messages: dict[int, dict[int, JSONDict]] = {}
        self._files: dict[str, tuple[str, bytes]] = {}  # file_id -> (file_path, bytes)
        self._polls: dict[str, tuple[int, int]] = {}  # poll id -> (chat_id, message_id)
        self._callback_queries: dict[str, JSONDict] = {}
        self._answers: dict[str, JSONDict] = {}
        self._commands: dict[tuple[str, str], list[JSONDict]] = {}
        self._bot_settings: dict[str, Any] = {}
        self._blocked: set[int] = set()
        self._faults: list[_Fault] = []
        self._flood: tuple[int | None, int | None, int] | None = None
        self._send_times: list[tuple[float, int]] = []
        self._requests: list[RecordedRequest] = []
        self.server_errors: list[str] = []  # tracebacks of bugs inside the fake itself

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeBotAPI:
        """Bind 127.0.0.1 on a free port and serve in a background thread."""
        if self._httpd is not None:
            raise RuntimeError("already started")
        self._stop_event.clear()
        self._httpd = _HTTPServer(("127.0.0.1", 0), self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="FakeBotAPI", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: wake long polls, close the socket, join every thread. Idempotent."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        self._stop_event.set()
        self._stop_webhook_delivery()
        with self._cond:
            self._changed()
        httpd.shutdown()
        httpd.server_close()  # joins the request threads
        thread.join()
        self._httpd = None
        self._thread = None

    def __enter__(self) -> FakeBotAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> FakeBotAPI:
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the fake Bot API server is not running")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """For ``ApplicationBuilder().base_url(...)``: PTB appends the token."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """For ``ApplicationBuilder().base_file_url(...)``."""
        return f"{self.url}/file/bot"

    # ------------------------------------------------------------------ state change notification

    def _changed(self) -> None:
        """Call with the lock held after any change: wakes sync and async waiters."""
        self._version += 1
        self._cond.notify_all()
        for loop, event in list(self._async_waiters):
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop is closed
                self._async_waiters.discard((loop, event))

    def _now(self) -> int:
        return int(self._clock())


@contextlib.contextmanager
def running(server: FakeBotAPI | None = None) -> Iterator[FakeBotAPI]:
    """``with running() as server:`` starts a server and always stops it."""
    server = server or FakeBotAPI()
    server.start()
    try:
        yield server
    finally:
        server.stop()

"""The real Telegram bot (``bot.telegram.app.build_application``) run against the fake Bot API.

    async with FakeBotAPI() as server, TelegramBot(server, db, course) as bot:
        ada = server.learner(11, language_code="en")
        update = ada.send("/start")
        await bot.settled(update)           # every handler for that update has finished
        assert "Course map" in server.texts(11)[-1]

The bot runs in the test's event loop exactly as ``run_bot`` runs it (same builder, handlers,
rate limiter, ``post_init``/``post_shutdown``), with long polling against the fake. ``restart()``
stops it cleanly and builds a new ``Application`` and ``Repository`` on the same SQLite file, as a
new process would. With ``webhook=True`` it takes updates through PTB's webhook server on a
loopback port (the fake posts them there) instead of long polling.

``settled`` waits for a marker handler in the last handler group, which PTB runs after the tutor's
handler and after the error handler: tests never sleep for a fixed time.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import logging
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from telegram import Update
from telegram.ext import Application, ContextTypes, TypeHandler

from bot.config import Settings
from bot.service import Evaluator, Tutor
from bot.storage import Repository
from bot.telegram.app import build_application, learner_id, webhook_args
from dialogs.course import Course
from dialogs.state import LearnerState
from tests.support.fake_bot_api import FakeBotAPI, JSONDict, Learner, SentMessage

LAST_GROUP = 99


def settings_for(server: FakeBotAPI, db: Path, *, webhook_port: int | None = None) -> Settings:
    """Settings that point the bot at the fake server and a SQLite file (nothing from the environment);
    with ``webhook_port``, a loopback webhook with a secret token instead of long polling."""
    values: dict[str, Any] = {
        "telegram_bot_token": SecretStr(server.token),
        "telegram_api_base_url": server.base_url,
        "telegram_file_base_url": server.base_file_url,
        "database_url": f"sqlite:///{db}",
        "webhook_url": None,
    }
    if webhook_port is not None:
        values.update(webhook_url=f"http://127.0.0.1:{webhook_port}/telegram/hook", port=webhook_port,
                      webhook_secret="a-secret-for-tests")
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TelegramBot:
    """Start, restart and stop the bot; wait until updates are fully handled; read learners' state."""

    def __init__(self, server: FakeBotAPI, db: Path, course: Course, evaluator: Evaluator | None = None,
                 *, poll_timeout: float = 10.0, webhook: bool = False) -> None:
        self.server = server
        self.db = db
        self.course = course
        self.evaluator = evaluator
        self.settings = settings_for(server, db, webhook_port=free_port() if webhook else None)
        self.poll_timeout = poll_timeout
        self.app: Application | None = None
        self.repo: Repository | None = None
        self.handled: list[int] = []  # ids of the updates this run has handled, in the order it finished them
        self.handled_updates: list[Update] = []
        self._changed = asyncio.Event()

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> TelegramBot:
        self.handled.clear()
        self.handled_updates.clear()
        self.repo = Repository(self.settings.db_url)
        app = build_application(self.settings, self.course, self.repo, self.evaluator)
        app.add_handler(TypeHandler(Update, self._mark_handled), group=LAST_GROUP)
        self.app = app
        await app.initialize()
        if app.post_init is not None:
            await app.post_init(app)
        await app.start()
        assert app.updater is not None
        if self.settings.webhook_url:  # as run_bot does, but on loopback only
            args = webhook_args(self.settings) | {"listen": "127.0.0.1"}
            await app.updater.start_webhook(**args, allowed_updates=Update.ALL_TYPES)
        else:
            await app.updater.start_polling(poll_interval=0, timeout=dtm.timedelta(seconds=self.poll_timeout),
                                            allowed_updates=Update.ALL_TYPES)
        return self

    async def stop(self) -> None:
        app, self.app = self.app, None
        if app is not None:
            if app.updater is not None and app.updater.running:
                await app.updater.stop()
            if app.running:
                await app.stop()
            await app.shutdown()
            if app.post_shutdown is not None:
                await app.post_shutdown(app)
        if self.repo is not None:
            self.repo.close()
            self.repo = None

    async def restart(self) -> None:
        """A clean stop, then a new Application and Repository on the same database file."""
        await self.stop()
        await self.start()

    async def __aenter__(self) -> TelegramBot:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ waiting

    async def _mark_handled(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        self.handled.append(update.update_id)
        self.handled_updates.append(update)
        self._changed.set()

    async def wait_handled(self, predicate: Callable[[list[Update]], bool], timeout: float = 15.0,
                           *, what: str = "updates") -> None:
        """Wait until ``predicate(handled updates)`` holds."""

        async def until() -> None:
            while not predicate(self.handled_updates):
                self._changed.clear()
                await self._changed.wait()

        try:
            await asyncio.wait_for(until(), timeout)
        except TimeoutError:
            raise TimeoutError(f"{what} not handled within {timeout}s; handled {self.handled}") from None

    async def settled(self, *updates: JSONDict | int | Iterable[JSONDict], timeout: float = 15.0) -> None:
        """Wait until the bot has finished handling these updates (replies sent, queries answered)."""
        wanted: set[int] = set()
        for u in updates:
            if isinstance(u, int):
                wanted.add(u)
            elif isinstance(u, dict):
                wanted.add(int(u["update_id"]))
            else:
                wanted.update(int(x["update_id"]) for x in u)
        await self.wait_handled(lambda handled: wanted <= {u.update_id for u in handled}, timeout,
                                what=f"updates {sorted(wanted)}")

    # ------------------------------------------------------------------ inspection

    @property
    def tutor(self) -> Tutor:
        assert self.app is not None
        return self.app.bot_data["shell"].tutor

    def state(self, chat_id: int) -> LearnerState | None:
        assert self.repo is not None
        return self.repo.load(learner_id(chat_id))

    def active(self, chat_id: int) -> bool | None:
        assert self.repo is not None
        row = self.repo.learner(learner_id(chat_id))
        return None if row is None else bool(row.active)


# ------------------------------------------------------------------ learners in tests


class Chat:
    """One learner's private chat with the bot: act, wait until handled, return what is new."""

    def __init__(self, server: FakeBotAPI, bot: TelegramBot, user_id: int, language_code: str = "en") -> None:
        self.server = server
        self.bot = bot
        self.learner: Learner = server.learner(user_id, language_code=language_code)
        self.id = user_id

    def new_since(self, mark: int) -> list[SentMessage]:
        return [m for m in self.server.messages(self.id) if m.message_id > mark]

    async def _act(self, action: Callable[[], JSONDict | list[JSONDict]]) -> list[SentMessage]:
        mark = self.server.last_message_id(self.id)
        updates = action()
        await self.bot.settled(updates)
        return self.new_since(mark)

    async def send(self, text: str) -> list[SentMessage]:
        return await self._act(lambda: self.learner.send(text))

    async def press(self, label: str, *, message_id: int | None = None) -> list[SentMessage]:
        """Tap a button (on the given message, else the newest one showing it); the tap is answered."""
        before = set(self.server.answered_callback_queries)
        new = await self._act(lambda: self.learner.press(label, message_id=message_id))
        assert not self.server.unanswered_callback_queries(), "a tap was left spinning"
        assert len(self.server.answered_callback_queries) == len(before) + 1
        return new

    async def click(self, data: str, message_id: int, *, check: bool = True) -> list[SentMessage]:
        return await self._act(lambda: self.server.click(self.id, message_id, data, check=check))

    @property
    def messages(self) -> list[SentMessage]:
        return self.server.messages(self.id)

    def message(self, message_id: int) -> SentMessage:
        return self.server.message(self.id, message_id)

    def state(self) -> Any:
        state = self.bot.state(self.id)
        assert state is not None
        return state


def with_text(messages: list[SentMessage], fragment: str) -> SentMessage:
    found = [m for m in messages if fragment in (m.plain_text or "")]
    assert found, f"no message with {fragment!r} in {[m.summary() for m in messages]}"
    return found[-1]


def texts(messages: list[SentMessage]) -> str:
    return "\n---\n".join(m.plain_text or "" for m in messages)


@dataclass
class Expect:
    """What may go wrong in a test on purpose; everything else must go right (checked at the end)."""

    failed_requests: set[int] = field(default_factory=set)  # HTTP statuses the bot may have met
    error_logs: int = 0  # ERROR log records the test provokes

    def verify(self, server: FakeBotAPI, records: list[logging.LogRecord]) -> None:
        failed = [str(r) for r in server.requests
                  if r.method.lower() != "getupdates" and not r.ok and r.status not in self.failed_requests]
        assert not failed, "requests the fake refused:\n" + "\n".join(failed)
        assert not server.unanswered_callback_queries(), "taps left spinning"
        errors = [r.getMessage() for r in records if r.levelno >= logging.ERROR]
        assert len(errors) == self.error_logs, f"error logs: {errors}"
        assert not server.server_errors, server.server_errors[0]

"""The real Telegram bot (``bot.telegram.app.build_application``) run against the fake Bot API.

    async with FakeBotAPI() as server, TelegramBot(server, db, course) as bot:
        ada = server.learner(11, language_code="en")
        update = ada.send("/start")
        await bot.settled(update)           # every handler for that update has finished
        assert "Course map" in server.texts(11)[-1]

The bot runs in the test's event loop exactly as ``run_bot`` runs it (same builder, handlers, rate
limiter, the durable ``Runtime`` with its inbox and outbox), with long polling against the fake.
``restart()`` stops it cleanly and builds a new ``Application`` and ``Repository`` on the same SQLite
file, as a new process would. With ``webhook=True`` it takes updates through the bot's webhook server on
a loopback port (the fake posts them there) instead of long polling.

``settled`` waits until the database says the updates are handled and everything they caused (replies,
callback answers, sandbox runs and their results) is sent: tests never sleep for a fixed time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from telegram import Update
from telegram.ext import Application

from bot.config import Settings
from bot.service import Evaluator, Tutor
from bot.storage import Repository
from bot.telegram.app import build_application, learner_id, runtime_for
from bot.telegram.runtime import Runtime
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
        self.runtime: Runtime | None = None
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
        self.app = app
        runtime = runtime_for(app, self.settings, on_handled=self._mark_handled, poll_timeout=self.poll_timeout)
        if runtime.webhook is not None:
            runtime.webhook["listen"] = "127.0.0.1"  # as run_bot does, but on loopback only
        self.runtime = runtime
        await runtime.start()
        return self

    async def stop(self) -> None:
        runtime, self.runtime, self.app = self.runtime, None, None
        if runtime is not None:
            await runtime.stop()
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

    def _mark_handled(self, update: Update) -> None:
        self.handled.append(update.update_id)
        self.handled_updates.append(update)

    async def _until(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        """Wait until ``done()``, looking again whenever the bot reports progress (and every 50 ms)."""

        async def until() -> None:
            while not done():
                assert self.runtime is not None, "the bot is not running"
                self.runtime.changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.runtime.changed.wait(), 0.05)

        try:
            await asyncio.wait_for(until(), timeout)
        except TimeoutError:
            raise TimeoutError(f"{what} not handled within {timeout}s; handled {self.handled}") from None

    async def wait_handled(self, predicate: Callable[[list[Update]], bool], timeout: float = 15.0,
                           *, what: str = "updates") -> None:
        """Wait until ``predicate(handled updates)`` holds."""
        await self._until(lambda: predicate(self.handled_updates), timeout, what)

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
        def settled() -> bool:
            assert self.repo is not None
            return self.repo.settled(wanted)

        await self._until(settled, timeout, f"updates {sorted(wanted)}")

    async def push(self) -> int:
        """Run the daily push now (as its job does) and wait until what it sent is out."""
        shell = self.app.bot_data["shell"] if self.app is not None else None
        assert shell is not None
        pushed = await self.tutor.push(shell.push_sender)
        await self.sent()
        return int(pushed)

    async def sent(self, timeout: float = 15.0) -> None:
        """Wait until the outbox has nothing left to send now."""

        def empty() -> bool:
            assert self.repo is not None
            return self.repo.outbox_counts().get("pending", 0) == 0

        await self._until(empty, timeout, "the outbox")

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

"""Shared test set-up: no test may reach the real network."""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.service import Evaluator
from dialogs.course import Course
from tests.support.driver import mini_course
from tests.support.fake_bot_api import FakeBotAPI
from tests.support.networking import block_real_network
from tests.support.telegram_bot import Expect, TelegramBot

# python-telegram-bot 22 warns (an error here) when RetryAfter.retry_after is read as an int;
# opting into timedelta values is its documented way forward.
os.environ.setdefault("PTB_TIMEDELTA", "true")


@pytest.fixture(autouse=True)
def _no_real_network() -> Iterator[None]:
    with block_real_network():
        yield

# ------------------------------------------------------------------ the databases: SQLite, and PostgreSQL

#: The PostgreSQL server the storage and service suite also runs on: a database of its own per test is
#: created through this URL (its role must be allowed to CREATE DATABASE). The machines here run one.
POSTGRES = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
#: ``.ci/run`` sets it: an unreachable PostgreSQL fails the run instead of skipping its half.
REQUIRE_POSTGRES = os.environ.get("REQUIRE_POSTGRES") == "1"
_POSTGRES_PROBLEM: list[str] = []


def _postgres_admin() -> Any:
    from sqlalchemy import create_engine

    return create_engine(POSTGRES, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})


def _postgres_reachable() -> str | None:
    """Why PostgreSQL cannot be used (None: it can); asked once per run."""
    if not _POSTGRES_PROBLEM:
        from sqlalchemy import text

        try:
            engine = _postgres_admin()
            with engine.connect() as db:
                db.execute(text("SELECT 1"))
            engine.dispose()
            _POSTGRES_PROBLEM.append("")
        except Exception as exc:  # any reason at all: the half is skipped (or fails, on CI)
            _POSTGRES_PROBLEM.append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}")
    return _POSTGRES_PROBLEM[0] or None


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test (dropped after it): its URL."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    problem = _postgres_reachable()
    if problem is not None:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL is required (REQUIRE_POSTGRES=1) but unreachable at {POSTGRES}: {problem}")
        pytest.skip(f"PostgreSQL unreachable at {POSTGRES}: {problem}")
    name = f"tutor_test_{uuid.uuid4().hex[:12]}"
    admin = _postgres_admin()
    with admin.connect() as db:
        db.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as db:
            db.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each storage and service test runs twice: on a SQLite file and on a PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tutor.db'}"
        return
    with postgres_database() as url:
        yield url


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One visible line when the PostgreSQL half was skipped."""
    if _POSTGRES_PROBLEM and _POSTGRES_PROBLEM[0]:
        terminalreporter.write_line(f"PostgreSQL half skipped: {_POSTGRES_PROBLEM[0]} (TEST_DATABASE_URL={POSTGRES})",
                                    yellow=True)

# ------------------------------------------------------------------ the Telegram bot against the fake Bot API

BOT_NAME = "AutogradTutorBot"


@pytest.fixture
async def server() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI(bot_username=BOT_NAME) as fake:
        yield fake


@pytest.fixture
def expect(caplog: pytest.LogCaptureFixture) -> Iterator[Expect]:
    caplog.set_level(logging.INFO, logger="bot")
    yield Expect()


@pytest.fixture
async def run_bot(server: FakeBotAPI, tmp_path: Path, expect: Expect,
                  caplog: pytest.LogCaptureFixture) -> AsyncIterator[Callable[..., Any]]:
    """``await run_bot(course, evaluator=None, webhook=False)`` starts the bot; it is stopped and checked at
    the end."""
    bots: list[TelegramBot] = []

    async def start(course: Course | None = None, evaluator: Evaluator | None = None, **options: Any) -> TelegramBot:
        bot = TelegramBot(server, tmp_path / "tutor.db", course or mini_course(), evaluator, **options)
        bots.append(bot)
        return await bot.start()

    yield start
    for bot in bots:
        await bot.stop()
    expect.verify(server, [r for phase in ("setup", "call") for r in caplog.get_records(phase)] + caplog.records)


@pytest.fixture
async def bot(run_bot: Callable[..., Any]) -> TelegramBot:
    return await run_bot()

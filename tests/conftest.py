"""Shared test set-up: no test may reach the real network."""

from __future__ import annotations

import logging
import os
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

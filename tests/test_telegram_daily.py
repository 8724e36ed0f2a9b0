"""Coming back tomorrow, in Telegram: the daily push job, card ratings by buttons, 403/429 on pushes,
quiz polls whose answers update mastery, and ``python -m bot push --now`` as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.telegram.push import JOB_NAME, install_push_job
from tests.support.driver import NOW
from tests.support.fake_bot_api import FakeBotAPI
from tests.support.telegram_bot import Chat, Expect, TelegramBot, texts, with_text

ROOT = Path(__file__).resolve().parent.parent
TONIGHT = datetime(2026, 11, 25, 19, 0, 20, tzinfo=UTC)  # NOW's day, 20 s past the default 19:00
PUSH_TIME = datetime(2026, 11, 26, 19, 0, 20, tzinfo=UTC)  # the next evening: yesterday's cards are due


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def start(run_bot: Callable[..., Any], clock: Clock, tick: float = 0.2) -> TelegramBot:
    bot: TelegramBot = await run_bot()
    bot.tutor.clock = clock
    # the job the bot installed at start (one, by its stable name), made quick for the test
    assert bot.app is not None and bot.app.job_queue is not None
    assert len(bot.app.job_queue.get_jobs_by_name(JOB_NAME)) == 1
    install_push_job(bot.app, interval=tick)
    return bot


async def finish_section_one(chat: Chat) -> None:
    for text in ("/start", "go", "go", "b", "ac", "T F T", "4"):
        await chat.send(text)
    assert chat.state().phase == "section_end"


async def test_daily_push_fires_for_due_learners_and_cards_are_rated(server: FakeBotAPI, run_bot: Callable[..., Any],
                                                                     expect: Expect) -> None:
    clock = Clock(NOW)
    bot = await start(run_bot, clock, tick=3600)  # no tick yet
    ada, bob, cy = Chat(server, bot, 501), Chat(server, bot, 502), Chat(server, bot, 503)
    await finish_section_one(ada)
    await finish_section_one(bob)
    await bob.send("/settings pause")
    await cy.send("/start")
    await cy.send("/settings time 08:00")
    marks = {c.id: server.last_message_id(c.id) for c in (ada, bob, cy)}
    clock.now = TONIGHT
    install_push_job(bot.app, interval=0.2)  # type: ignore[arg-type]
    tonight = await server.wait_for_messages(ada.id, 1, after=marks[ada.id])
    assert "Today's teaser" in texts(tonight)  # the new cards are due from tomorrow
    clock.now = PUSH_TIME
    pushed = await server.wait_for_messages(ada.id, 1, after=tonight[-1].message_id)
    push = with_text(pushed, "Your daily card")
    assert "Where does the gradient go?" in push.plain_text and "Streak: 1 (best: 1)" in push.plain_text
    assert server.last_message_id(bob.id) == marks[bob.id]  # paused
    assert server.last_message_id(cy.id) == marks[cy.id]  # her push is at 08:00
    # the card's answer is behind a button; rating buttons follow
    shown = await ada.press("👀 Show answer", message_id=push.message_id)
    assert "Into .grad of leaves" in texts(shown)
    rated = await ada.press("🙂 Good")
    assert "See you again" in texts(rated)
    assert bot.repo is not None
    reviews = bot.repo.reviews("tg:501")
    assert [(r.card, r.rating) for r in reviews] == [("m1.one.c-where-grad-goes", 3)]
    assert ada.state().streak == 2
    assert ada.state().deck["m1.one.c-where-grad-goes"]["due"] == "2026-11-28T19:00:20+00:00"
    assert "d(x*x)/dx?" in texts(rated)  # the second card, its answer hidden again
    await ada.press("👀 Show answer")
    await ada.press("😵 Again")
    assert ada.state().deck["m1.one.c-square-derivative"]["due"] == "2026-11-27T19:00:20+00:00"
    # no second push the same day
    await bot.push()
    assert len(with_text_all(server.messages(ada.id), "Your daily card")) == 1


def with_text_all(messages: list[Any], fragment: str) -> list[Any]:
    return [m for m in messages if fragment in (m.plain_text or "")]


async def test_push_job_is_rebuilt_after_a_restart(server: FakeBotAPI, run_bot: Callable[..., Any]) -> None:
    clock = Clock(NOW)
    bot = await start(run_bot, clock, tick=3600)
    ada = Chat(server, bot, 511)
    await finish_section_one(ada)
    await bot.restart()  # a new Application: JobQueue jobs are not persisted, the schedule is in the database
    assert bot.app is not None and bot.app.job_queue is not None
    assert [j.name for j in bot.app.job_queue.jobs()] == [JOB_NAME]
    bot.tutor.clock = clock
    mark = server.last_message_id(ada.id)
    clock.now = TONIGHT
    install_push_job(bot.app, interval=0.2)
    assert "Today's teaser" in texts(await server.wait_for_messages(ada.id, 1, after=mark))


async def test_blocked_learner_is_deactivated_and_not_pushed_again(server: FakeBotAPI, run_bot: Callable[..., Any],
                                                                   expect: Expect) -> None:
    expect.failed_requests.add(403)
    clock = Clock(NOW)
    bot = await start(run_bot, clock, tick=3600)
    ada = Chat(server, bot, 521)
    await finish_section_one(ada)
    server.block_chat(ada.id)
    clock.now = TONIGHT
    assert await bot.push() == 1
    assert bot.active(ada.id) is False
    clock.now = PUSH_TIME
    assert await bot.push() == 0  # no longer pushed
    server.unblock_chat(ada.id)
    await ada.send("/start")  # back: pushes resume
    assert bot.active(ada.id) is True
    clock.now = PUSH_TIME.replace(day=27)
    assert await bot.push() == 1


async def test_429_on_a_push_is_honoured(server: FakeBotAPI, run_bot: Callable[..., Any], expect: Expect) -> None:
    expect.failed_requests.add(429)
    clock = Clock(NOW)
    bot = await start(run_bot, clock, tick=3600)
    ada = Chat(server, bot, 531)
    await finish_section_one(ada)
    clock.now = TONIGHT
    server.fail_next("sendMessage", 429, retry_after=1, chat_id=ada.id)
    mark = server.last_message_id(ada.id)
    assert await bot.push() == 1
    assert "Today's teaser" in texts(ada.new_since(mark))
    failed = [r for r in server.requests if r.status == 429]
    sent = [r for r in server.calls("sendMessage") if r.ok and r.time > failed[0].time]
    assert sent and sent[0].time - failed[0].time >= 0.9  # waited retry_after


async def test_quiz_poll_answer_updates_mastery(server: FakeBotAPI, run_bot: Callable[..., Any]) -> None:
    bot = await start(run_bot, Clock(NOW), tick=3600)
    ada = Chat(server, bot, 541)
    for text in ("/start", "go", "go", "a", "c", "b", "ac", "T F T", "4"):  # "backward" twice wrong: the weakest
        await ada.send(text)
    await ada.send("/quiz 1")
    poll = [m for m in server.messages(ada.id) if m.kind == "poll"][-1]
    assert poll.poll is not None and poll.poll["type"] == "quiz"
    assert [o["text"] for o in poll.poll["options"]] == ["A. 3", "B. 6", "C. 9"]
    assert poll.poll["correct_option_ids"] == [1]
    before = ada.state().mastery["backward"]
    mark = server.last_message_id(ada.id)
    update = server.poll_answer(ada.id, [1])
    await bot.settled(update)
    after = ada.state().mastery["backward"]
    assert after == [before[0] + 1, before[1] + 1]
    assert "Quiz done: 1/1 right first time" in texts(ada.new_since(mark)) and ada.state().mode == "course"


def test_push_now_cli_sends_to_one_chat(server: FakeBotAPI, tmp_path: Path) -> None:
    from bot.storage import Repository
    from dialogs.state import LearnerState

    db = tmp_path / "tutor.db"
    repo = Repository(f"sqlite:///{db}")
    state = LearnerState(phase="map", push_due=NOW.isoformat())
    repo.save_turn("tg:551", state, (), NOW, chat_id=551)
    repo.save_turn("tg:552", state, (), NOW, chat_id=552)
    repo.close()
    server.add_chat(551)
    env = {k: v for k, v in os.environ.items() if k not in ("LANG", "LC_ALL")}
    env.update(TELEGRAM_BOT_TOKEN=server.token, TELEGRAM_API_BASE_URL=server.base_url,
               TELEGRAM_FILE_BASE_URL=server.base_file_url, DATABASE_URL=f"sqlite:///{db}", PTB_TIMEDELTA="true")
    done = subprocess.run([sys.executable, "-m", "bot", "push", "--now", "--chat", "551"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "pushed to 1 learner(s)" in done.stdout
    assert "Today's teaser" in server.texts(551)[-1]
    assert server.messages(552) == []

"""Durable updates: nothing Telegram handed the bot is lost, nothing applied goes unanswered, nothing is
applied twice — across ``kill -9``, SIGTERM (every deploy) and updates the library cannot read.

The crash test plays scripted learners (tapping and typing, sometimes several messages at once) twice:
once against a bot that runs undisturbed (the reference), once against the real bot process killed
with ``kill -9`` at random moments and started again, through the fake Bot API, which hands out
unconfirmed updates again after a restart as Telegram does. The learners act on what they see (the
newest button), so any lost, unanswered or doubly applied update changes what they see next: both
runs must end with the same chats, the same learner states and the same answer logs.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.content import default_content_dir, load_course
from bot.storage import Repository
from dialogs.course import Course
from tests.support.fake_bot_api import FakeBotAPI, JSONDict
from tests.support.process import BotProcess, cli_env
from tests.support.telegram_bot import TelegramBot

LEARNERS = 8
ACTIONS = 45  # per learner
KILLS = 10
Settle = Callable[[list[int]], Awaitable[None]]


def course() -> Course:
    return load_course(default_content_dir())


# ------------------------------------------------------------------------------------ scripted learners


def ids(updates: list[JSONDict]) -> list[int]:
    return [int(u["update_id"]) for u in updates]


async def play(server: FakeBotAPI, chat_id: int, seed: int, settle: Settle) -> None:
    """One learner: /start, then taps and typing chosen by a seeded random walk over what the chat shows.
    Each step waits until the bot has handled it and sent everything it caused."""
    rng = random.Random(seed)
    learner = server.learner(chat_id, language_code="zh-hans" if chat_id % 3 == 0 else "en")
    await settle(ids([learner.send("/start")]))
    for _ in range(ACTIONS):
        what = rng.choice(["tap", "tap", "tap", "go", "burst", "answer", "command"])
        sent: list[JSONDict] = []
        if what == "tap":  # a button of the newest message (a message sent twice shows the same ones)
            newest = learner.messages[-1] if learner.messages else None
            if newest is not None and newest.buttons:
                labels = newest.button_texts
                sent.append(learner.press(labels[rng.randrange(len(labels))], message_id=newest.message_id))
            else:
                sent.append(learner.send("go"))
        elif what == "go":
            sent.append(learner.send("go"))
        elif what == "burst":  # typed quickly, without waiting for the answers
            sent.extend(learner.send(text) for text in rng.sample(["go", "b", "/progress", "ok", "hint"], 3))
        elif what == "answer":
            sent.append(learner.send(rng.choice(["a", "b", "bc", "T F T", "对 错", "1", "answer"])))
        else:
            sent.append(learner.send(rng.choice(["/help", "/map", "/progress", "/recap"])))
        await settle(ids(sent))


async def play_all(server: FakeBotAPI, settle: Settle) -> None:
    await asyncio.gather(*(play(server, 900 + i, 1000 + i, settle) for i in range(LEARNERS)))


CHAT_CALLS = ("sendmessage", "editmessagetext", "editmessagereplymarkup", "sendphoto", "senddocument", "sendpoll")


def chat_calls(server: FakeBotAPI, chat_id: int) -> tuple[list[str], int]:
    """What the bot did in a chat, call by call (those Telegram carried out), with a call made twice in a
    row counted once; and how many such repeats there were."""
    out: list[str] = []
    repeats = 0
    for request in server.requests:
        if request.method.lower() not in CHAT_CALLS or request.params.get("chat_id") != chat_id or not request.ok:
            continue
        params = {k: v for k, v in request.params.items() if k in ("text", "caption", "question", "reply_markup")}
        call = request.method.lower() + " " + json.dumps(params, ensure_ascii=False, sort_keys=True, default=str)
        if out and out[-1] == call:
            repeats += 1
            continue
        out.append(call)
    return out, repeats


def learners_in(db: Path) -> dict[str, Any]:
    """Each learner's state (without timestamps) and answer log, read from the database file."""
    with sqlite3.connect(db) as con:
        states = {lid: json.loads(blob) for lid, blob in con.execute("SELECT id, state FROM learner")}
        logs: dict[str, list[tuple[str, str]]] = {}
        for lid, step, verdict in con.execute("SELECT learner_id, step, verdict FROM answerlog ORDER BY id"):
            logs.setdefault(lid, []).append((step, verdict))
    keep = ("section", "step", "phase", "seq", "done", "lang", "deck")
    return {lid: ({k: s.get(k) for k in keep}, logs.get(lid, [])) for lid, s in states.items()}


def repo_settled(db: Path) -> Settle:
    """Wait (looking at the database the bot process writes) until updates are handled and sent."""
    repo: Repository | None = None

    async def settle(update_ids: list[int]) -> None:
        nonlocal repo
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120
        while True:
            if repo is None and db.exists():
                repo = Repository(f"sqlite:///{db}")
            if repo is not None and await asyncio.to_thread(repo.settled, update_ids):
                return
            if loop.time() > deadline:
                raise AssertionError(f"updates {update_ids} not settled within 120 s")
            await asyncio.sleep(0.05)

    return settle


# ------------------------------------------------------------------------------------ the crash test


@pytest.mark.slow
async def test_kill_9_at_random_moments_loses_nothing(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    # the reference: the same learners against a bot nobody disturbs
    async with FakeBotAPI(bot_username="AutogradTutorBot") as server:
        async with TelegramBot(server, tmp_path / "reference.db", course()) as bot:
            await play_all(server, lambda u: bot.settled(*u, timeout=60))
        reference = {c: chat_calls(server, c) for c in server.chats}
        assert not server.unanswered_callback_queries()
    reference_learners = learners_in(tmp_path / "reference.db")
    reference_seconds = loop.time() - started

    # the same learners against the real process, killed again and again
    db = tmp_path / "crash.db"
    async with FakeBotAPI(bot_username="AutogradTutorBot") as server:
        env = cli_env(tmp_path, TELEGRAM_BOT_TOKEN=server.token, TELEGRAM_API_BASE_URL=server.base_url,
                      TELEGRAM_FILE_BASE_URL=server.base_file_url, DATABASE_URL=f"sqlite:///{db}",
                      CONTENT_DIR=str(default_content_dir()), PTB_TIMEDELTA="true")
        bot_process = BotProcess(["serve"], env, tmp_path)
        await bot_process.start()
        rng = random.Random(7)
        kills = 0
        playing = asyncio.create_task(play_all(server, repo_settled(db)))
        try:
            while kills < KILLS and not playing.done():
                await asyncio.wait({playing}, timeout=rng.uniform(0.3, 1.5))
                if playing.done():
                    break
                await bot_process.kill()
                kills += 1
                await bot_process.start()
            await asyncio.wait_for(playing, 300)
            # all done: the updates are confirmed, handled once, answered
            assert not server.pending_updates
            chats = {c: chat_calls(server, c) for c in server.chats}
            assert not server.unanswered_callback_queries(), "taps left spinning"
            code, _ = await bot_process.terminate()
            assert code == 0
        finally:
            await bot_process.close()
    assert kills == KILLS, f"the learners finished after {kills} kills: make their scripts longer"
    log = bot_process.stderr
    assert "Traceback" not in log, log[-5000:]

    repo = Repository(f"sqlite:///{db}")
    try:
        inbox = repo.inbox_counts()
        outbox = repo.outbox_counts()
    finally:
        repo.close()
    assert set(inbox) == {"done"}, inbox  # every update confirmed to Telegram was handled
    assert set(outbox) <= {"sent", "expired"}, outbox  # and everything it caused was sent
    # a callback answer is refused only when it was answered before a kill and sent again after it
    assert outbox.get("expired", 0) <= log.count("was being sent when the process stopped")
    assert learners_in(db) == reference_learners  # nothing lost, nothing applied twice
    resent = log.count("was being sent when the process stopped")
    repeats = sum(r for _, r in chats.values()) - sum(r for _, r in reference.values())
    assert repeats <= resent, f"{repeats} calls made twice, only {resent} were in flight at a kill"
    assert set(chats) == set(reference)
    for chat, (calls, _) in chats.items():
        assert calls == reference[chat][0], f"chat {chat} differs from the undisturbed run"
    print(f"\nreference run {reference_seconds:.1f} s, crash run {loop.time() - started - reference_seconds:.1f} s; "
          f"{kills} kills; {len(server.chats)} chats; resent after a kill: {resent}; "
          f"inbox handled after a restart: {log.count('from before the restart are handled first')} times")

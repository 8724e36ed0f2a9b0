"""Benchmark of the daily push.

1. Planning for 10,000 learners with decks (the course's first 10 sections' cards, random due dates):
   the pure engine alone (Push event on each state), and the whole service path (query who is due,
   load, step, store each learner in SQLite) — time and peak Python memory (tracemalloc).
2. Delivery of 1,000 pushes through the real python-telegram-bot Application, its AIORateLimiter on,
   against the fake Bot API over loopback HTTP: messages per second.

    .venv/bin/python -m bench.push [--learners 10000] [--deliver 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.config import Settings
from bot.content import load_course
from bot.service import Tutor
from bot.storage import Repository
from dialogs import cards
from dialogs.engine import Engine
from dialogs.messages import Push, Reply
from dialogs.state import LearnerState

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 25, 19, 0, tzinfo=UTC)


def make_state(course, rng: random.Random) -> LearnerState:
    done = course.section_ids[:10]
    deck = {}
    for sid in done:
        for card in course.section(sid).cards:
            deck[card.id] = cards.new_card(card.id, NOW + timedelta(hours=rng.randint(-72, 72)))
    return LearnerState(phase="section_end", section=done[-1], step=course.section(done[-1]).steps[-1].id,
                        done_sections=tuple(done), deck=deck, streak=rng.randint(0, 30), last_day="2026-11-24",
                        push_due=NOW.isoformat())


def plan(n: int) -> None:
    course = load_course(ROOT / "content")
    rng = random.Random(0)
    states = [make_state(course, rng) for _ in range(n)]
    engine = Engine(course)
    t0 = time.perf_counter()
    messages = sum(len(engine.step(s, Push(), NOW).replies) for s in states)
    pure = time.perf_counter() - t0
    tracemalloc.start()  # a second pass, traced, for the memory figure (tracing slows it down)
    for s in states[:1000]:
        engine.step(s, Push(), NOW)
    _, peak_pure = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"pure engine: {n} learners planned in {pure:.2f} s ({n / pure:,.0f}/s), {messages} messages; "
          f"peak extra Python memory per 1,000 plans {peak_pure / 2**20:.2f} MiB; "
          f"{n} states in memory ≈ {sum(len(json.dumps(s.to_dict())) for s in states) / 2**20:.0f} MiB of JSON")

    with tempfile.TemporaryDirectory() as tmp:
        repo = Repository(f"sqlite:///{tmp}/bench.db")
        for i, s in enumerate(states):
            repo.save_turn(f"tg:{i}", s, (), NOW - timedelta(days=1), chat_id=i)
        tutor = Tutor(course, repo, None, clock=lambda: NOW)
        sent = 0

        def sender(chat: int):
            async def send(replies: Sequence[Reply]) -> None:
                nonlocal sent
                sent += len(replies)

            return send

        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        due = len(repo.due_pushes(NOW))
        query = time.perf_counter() - t0
        pushed = asyncio.run(tutor.push(sender))
        whole = time.perf_counter() - t0
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        repo.close()
    print(f"service path: due query {query * 1000:.0f} ms for {due} due; {pushed} learners loaded, planned and "
          f"stored in {whole:.2f} s ({pushed / whole:,.0f}/s), {sent} messages; process peak RSS "
          f"{rss_after / 1024:.0f} MiB (+{(rss_after - rss_before) / 1024:.0f} MiB during the push)")


async def deliver(n: int) -> float:
    from bot.telegram.app import build_application
    from bot.telegram.push import push_now
    from tests.support.fake_bot_api import FakeBotAPI

    course = load_course(ROOT / "content")
    with tempfile.TemporaryDirectory() as tmp, FakeBotAPI(require_known_chats=False) as api:
        repo = Repository(f"sqlite:///{tmp}/deliver.db")
        rng = random.Random(1)
        for i in range(n):
            repo.save_turn(f"tg:{1000 + i}", make_state(course, rng), (), NOW, chat_id=1000 + i)
        settings = Settings(telegram_bot_token=api.token, telegram_api_base_url=api.base_url,
                            telegram_file_base_url=api.base_file_url, _env_file=None)
        app = build_application(settings, course, repo, None)
        await app.initialize()
        try:
            t0 = time.perf_counter()
            await push_now(app)
            elapsed = time.perf_counter() - t0
        finally:
            await app.shutdown()
            repo.close()
        sent = len([r for r in api.calls("sendMessage") if r.ok])
    rate = sent / elapsed
    print(f"delivery: {sent} pushes in {elapsed:.1f} s through AIORateLimiter = {rate:.1f} messages/s "
          f"(Telegram's limit: about 30/s overall)")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--learners", type=int, default=10_000)
    parser.add_argument("--deliver", type=int, default=1_000)
    args = parser.parse_args()
    plan(args.learners)
    rate = asyncio.run(deliver(args.deliver))
    print(f"RESULT planning {args.learners} learners + delivery {args.deliver} pushes: {rate:.1f} messages/s")


if __name__ == "__main__":
    main()

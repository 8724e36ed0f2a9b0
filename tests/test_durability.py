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
import io
import json
import random
import signal
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from bot.console import Console
from bot.content import default_content_dir, load_course
from bot.service import Tutor
from bot.storage import Repository
from dialogs.course import Course
from dialogs.messages import Text
from tests.support.driver import NOW, Driver, mini_course
from tests.support.fake_bot_api import FakeBotAPI, JSONDict
from tests.support.process import BotProcess, cli_env
from tests.support.telegram_bot import Chat, Expect, TelegramBot, free_port, texts

LEARNERS = 8
MODES = {  # how updates come in: (kills, actions per learner)
    "polling": (10, 45),
    "webhook": (5, 25),  # the fake posts one update at a time: slower, so a shorter run
}
Settle = Callable[[list[int]], Awaitable[None]]


def course() -> Course:
    return load_course(default_content_dir())


# ------------------------------------------------------------------------------------ scripted learners


def ids(updates: list[JSONDict]) -> list[int]:
    return [int(u["update_id"]) for u in updates]


async def play(server: FakeBotAPI, chat_id: int, seed: int, settle: Settle, actions: int) -> None:
    """One learner: /start, then taps and typing chosen by a seeded random walk over what the chat shows.
    Each step waits until the bot has handled it and sent everything it caused."""
    rng = random.Random(seed)
    learner = server.learner(chat_id, language_code="zh-hans" if chat_id % 3 == 0 else "en")
    await settle(ids([learner.send("/start")]))
    for _ in range(actions):
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


async def play_all(server: FakeBotAPI, settle: Settle, actions: int) -> None:
    await asyncio.gather(*(play(server, 900 + i, 1000 + i, settle, actions) for i in range(LEARNERS)))


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
@pytest.mark.parametrize("mode", list(MODES))
async def test_kill_9_at_random_moments_loses_nothing(tmp_path: Path, mode: str) -> None:
    kills_wanted, actions = MODES[mode]
    webhook = mode == "webhook"
    loop = asyncio.get_running_loop()
    started = loop.time()
    # the reference: the same learners against a bot nobody disturbs
    async with FakeBotAPI(bot_username="AutogradTutorBot") as server:
        async with TelegramBot(server, tmp_path / "reference.db", course(), webhook=webhook) as bot:
            await play_all(server, lambda u: bot.settled(*u, timeout=60), actions)
        reference = {c: chat_calls(server, c) for c in server.chats}
        assert not server.unanswered_callback_queries()
    reference_learners = learners_in(tmp_path / "reference.db")
    reference_seconds = loop.time() - started

    # the same learners against the real process, killed again and again
    db = tmp_path / "crash.db"
    async with FakeBotAPI(bot_username="AutogradTutorBot") as server:
        port = free_port()
        hook = {"WEBHOOK_URL": f"http://127.0.0.1:{port}/hook", "PORT": str(port), "WEBHOOK_SECRET": "s3cret"}
        env = bot_env(server, tmp_path, db, **(hook if webhook else {}))
        bot_process = BotProcess(["serve"], env, tmp_path)
        await bot_process.start()
        rng = random.Random(7)
        kills = 0
        settle = repo_settled(db)
        done = 0  # learner actions settled so far: kills come with progress, whatever the machine's speed

        async def counted(update_ids: list[int]) -> None:
            nonlocal done
            await settle(update_ids)
            done += 1

        playing = asyncio.create_task(play_all(server, counted, actions))
        try:
            while kills < kills_wanted and not playing.done():
                mark = done + rng.randint(4, 28)  # then a random moment while the learners go on
                while done < mark and not playing.done():
                    await asyncio.sleep(0.01)
                await asyncio.sleep(rng.uniform(0, 0.3))
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
    assert kills == kills_wanted, f"the learners finished after {kills} kills: make their scripts longer"
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
    crash_seconds = loop.time() - started - reference_seconds
    print(f"\n{mode}: reference run {reference_seconds:.1f} s, crash run {crash_seconds:.1f} s; "
          f"{kills} kills; {len(server.chats)} chats; resent after a kill: {resent}; "
          f"inbox handled after a restart: {log.count('from before the restart are handled first')} times")


async def until(done: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Look every 20 ms until ``done()`` (bounded: a minute by default)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not done():
        assert loop.time() < deadline, f"no {what} within {timeout} s"
        await asyncio.sleep(0.02)


def bot_env(server: FakeBotAPI, tmp_path: Path, db: Path, **extra: str) -> dict[str, str]:
    return cli_env(tmp_path, TELEGRAM_BOT_TOKEN=server.token, TELEGRAM_API_BASE_URL=server.base_url,
                   TELEGRAM_FILE_BASE_URL=server.base_file_url, DATABASE_URL=f"sqlite:///{db}",
                   CONTENT_DIR=str(default_content_dir()), PTB_TIMEDELTA="true", **extra)


def sends(server: FakeBotAPI, chat_id: int) -> list[str]:
    """The texts of the messages the learner has in a chat, in order, as they were sent (a message whose
    answer the bot never got, on a loaded machine, is there too: Telegram posted it)."""
    return [m.text or "" for m in server.messages(chat_id) if m.kind == "text"]


@pytest.mark.slow
async def test_a_429_a_tap_a_typed_go_and_a_kill_during_the_wait(tmp_path: Path) -> None:
    """Telegram answers the tap's reply with 429 (retry after 4 s); the learner types "go" meanwhile; the bot
    is killed during the wait. After the restart the tap's reply and the answer to "go" both arrive, once
    each, in order, and the tap is answered."""
    # what the learner sees when nothing goes wrong
    async with FakeBotAPI(bot_username="AutogradTutorBot") as server, \
            TelegramBot(server, tmp_path / "reference.db", course()) as bot:
        ada = server.learner(31)
        await bot.settled(ada.send("/start"))
        await bot.settled(ada.press("Continue"))
        await bot.settled(ada.send("go"))
        expected = sends(server, 31)
    assert len(expected) == 3 and len(set(expected)) == 3

    db = tmp_path / "crash.db"
    async with FakeBotAPI(bot_username="AutogradTutorBot") as server:
        process = BotProcess(["serve"], bot_env(server, tmp_path, db), tmp_path)
        settle = repo_settled(db)
        try:
            await process.start()
            ada = server.learner(31)
            await settle(ids([ada.send("/start")]))
            server.fail_next("sendMessage", 429, retry_after=4, chat_id=31)
            tap = ada.press("Continue")
            await server.wait_for(lambda: any(r.status == 429 for r in server.requests), 30, what="the 429")
            go = ada.send("go")
            await server.wait_for(lambda: all(u["update_id"] != go["update_id"] for u in server.pending_updates), 30,
                                  what="'go' confirmed")  # Telegram will never send it again
            await process.kill()  # during the 4 s wait
            await process.start()
            await settle(ids([tap, go]))
            assert not server.unanswered_callback_queries(), "the tap was left spinning"
            assert sends(server, 31) == expected
            code, _ = await process.terminate()
            assert code == 0
        finally:
            await process.close()


@pytest.mark.slow
async def test_sigterm_with_a_backlog_stops_in_time_and_loses_nothing(tmp_path: Path) -> None:
    """300 learners send /start at 150 a second; SIGTERM comes in the middle of it. The bot exits within its
    shutdown time (10 s, plus the interpreter's exit) with status 0; after the restart every learner gets the
    course map, once."""
    db = tmp_path / "tutor.db"
    learners = 300
    async with FakeBotAPI(bot_username="AutogradTutorBot") as server:
        process = BotProcess(["serve"], bot_env(server, tmp_path, db), tmp_path)
        try:
            await process.start()
            updates = []
            for i in range(learners):
                updates.append(server.learner(5000 + i).send("/start"))
                await asyncio.sleep(1 / 150)
                if i == learners // 2:
                    assert process.proc is not None
                    process.proc.send_signal(signal.SIGTERM)
                    stopping = asyncio.get_running_loop().time()
            code = await asyncio.wait_for(process.wait(), 30)
            took = asyncio.get_running_loop().time() - stopping
            first = process.stderr
            # bounded: SHUTDOWN_SECONDS (10) plus the interpreter's own exit, with room for a slow machine
            assert code == 0 and took < 20, (code, took, first[-3000:])
            assert "stopping: no new updates" in first and "Traceback" not in first, first[-3000:]
            await process.start()
            await repo_settled(db)(ids(updates))
            code, _ = await process.terminate()
            assert code == 0
        finally:
            await process.close()
        repo = Repository(f"sqlite:///{db}")
        try:
            outbox = repo.outbox_counts()
        finally:
            repo.close()
        # "unknown": a timeout on a loaded machine after Telegram took the message (not sent again, by design)
        assert set(outbox) <= {"sent", "unknown"}, outbox
        maps = {chat: [t for t in sends(server, chat) if "map" in t.lower() or "地图" in t]
                for chat in range(5000, 5000 + learners)}
        missing = {c: server.transcript(c) for c, m in maps.items() if not m}
    resent = process.stderr.count("was being sent when the process stopped")
    if missing:
        repo = Repository(f"sqlite:///{db}")
        try:
            rows = {c: [(r.update_id, r.status, r.error) for r in [repo.inbox_row(int(u["update_id"]))
                                                                  for u in updates
                                                                  if u["message"]["chat"]["id"] == c] if r]
                    for c in missing}
        finally:
            repo.close()
        raise AssertionError(f"no course map for {missing}; inbox: {rows}; log:\n{process.stderr[-6000:]}")
    twice = sum(len(m) - 1 for m in maps.values())
    assert twice <= resent, f"{twice} maps sent twice, {resent} rows were in flight"
    print(f"\nSIGTERM after {learners // 2} of {learners} updates: exit in {took:.1f} s; "
          f"{first.split('stopped: ')[-1].splitlines()[0] if 'stopped: ' in first else '?'}")


# ------------------------------------------------------------------------------------ in one process


async def test_an_update_the_library_cannot_read_is_logged_stored_and_skipped(
        server: FakeBotAPI, bot: TelegramBot, expect: Expect, caplog: pytest.LogCaptureFixture) -> None:
    """A poll answer in an older Bot API's shape (python-telegram-bot 22 requires ``option_persistent_ids``)
    is confirmed, kept with its raw body and skipped: nobody waits behind it, nothing fetches it again."""
    expect.error_logs = 1
    old = server.send_update({"poll_answer": {"poll_id": "5000", "option_ids": [1],
                                              "user": {"id": 61, "is_bot": False, "first_name": "Old"}}})
    chat = Chat(server, bot, 62)
    new = await chat.send("/start")
    assert "Course map" in texts(new)
    await bot.settled(old)
    assert not server.pending_updates  # confirmed: Telegram will not send it again
    assert bot.repo is not None
    row = bot.repo.inbox_row(old["update_id"])
    assert row is not None and row.status == "bad" and "option_persistent_ids" in (row.error or "")
    assert json.loads(row.body) == old
    logged = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any("could not be read" in m and '"poll_id": "5000"' in m for m in logged), logged
    assert bot.runtime is not None and bot.runtime.polls < 10  # no refetching it over and over


async def test_a_5xx_is_retried_for_every_call(server: FakeBotAPI, bot: TelegramBot, expect: Expect) -> None:
    """Telegram answers 502 (nothing done): the callback answer and the message are sent again, once."""
    expect.failed_requests.update({500, 502})
    chat = Chat(server, bot, 63)
    await chat.send("/start")
    server.fail_next("answerCallbackQuery", 502)
    server.fail_next("sendMessage", 500, chat_id=chat.id)
    new = await chat.press("Continue")  # asserts the tap was answered
    assert new
    assert [r.status for r in server.calls("answerCallbackQuery")] == [502, 200]
    statuses = [r.status for r in server.calls("sendMessage") if r.params.get("chat_id") == chat.id]
    assert statuses.count(500) == 1 and statuses[-1] == 200
    texts_sent = [r.params["text"] for r in server.calls("sendMessage") if r.params.get("chat_id") == chat.id and r.ok]
    assert len(texts_sent) == len(set(texts_sent))  # nothing posted twice


async def test_a_full_inbox_pauses_polling_and_nothing_is_lost(server: FakeBotAPI, run_bot: Callable[..., Any],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Updates come faster than they are handled: they wait in the inbox up to ``INBOX_BACKLOG``, the rest
    stay with Telegram (polling pauses); when handling catches up, every one is handled, in order."""
    from bot.telegram.runtime import Runtime

    gate = asyncio.Event()
    handle = Runtime._handle

    async def slow(self: Runtime, update_id: int, body: str) -> None:
        await gate.wait()
        await handle(self, update_id, body)

    monkeypatch.setattr(Runtime, "_handle", slow)
    monkeypatch.setenv("INBOX_BACKLOG", "4")
    bot = await run_bot()
    assert bot.runtime is not None and bot.runtime.max_backlog == 4
    chat = Chat(server, bot, 64)
    updates = [chat.learner.send(text) for text in ["/start", "go", "/help", "/map", "/progress", "go", "/help"]]
    runtime = bot.runtime
    await until(lambda: runtime.paused >= 2, "polling to pause")
    assert bot.repo is not None and bot.repo.inbox_counts() == {"new": 4}
    delivered = [server.was_delivered(u["update_id"]) for u in updates]
    assert delivered == [True] * 4 + [False] * 3  # the rest are still Telegram's
    gate.set()
    await bot.settled(*updates, timeout=60)
    assert bot.handled == [u["update_id"] for u in updates]  # in order
    assert len([m for m in chat.messages if "What I understand" in (m.plain_text or "")]) == 2


async def test_the_terminal_chat_survives_a_bug_of_ours(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug of ours in one turn: an apology, the turn not stored, and the chat goes on (no traceback exit)."""
    repo = Repository(f"sqlite:///{tmp_path / 'tutor.db'}")
    tutor = Tutor(mini_course(), repo)
    real = tutor.engine.step

    def step(state: Any, event: Any, now: Any) -> Any:
        if isinstance(event, Text) and event.text == "boom":
            raise RuntimeError("a bug of ours")
        return real(state, event, now)

    monkeypatch.setattr(tutor.engine, "step", step)
    out = io.StringIO()
    try:
        code = await Console(tutor, "console:ada", "en", stdin=io.StringIO("go\nboom\n/help\n"), stdout=out).run()
        state = repo.load("console:ada")
    finally:
        repo.close()
    text = out.getvalue()
    assert code == 0 and "something went wrong on our side" in text
    assert text.index("something went wrong") < text.index("What I understand")  # and it went on
    assert state is not None and state.step == "m1.one.intro"  # where "go" took it; "boom" changed nothing


async def test_a_run_cut_by_a_restart_is_reported_without_waiting_for_the_learner(
        server: FakeBotAPI, run_bot: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Code is running when the bot stops: after the start the learner is told, unprompted, to send it again."""
    from dialogs.evaluation import CheckSpec, EvalOutcome

    class Held:
        running = 0

        async def evaluate(self, code: str, checks: Sequence[CheckSpec]) -> EvalOutcome:
            Held.running += 1
            await asyncio.Event().wait()  # never finishes: the stop cuts it
            raise AssertionError("unreachable")

        def is_saturated(self) -> bool:
            return False

    monkeypatch.setenv("SHUTDOWN_SECONDS", "1.5")
    bot = await run_bot(evaluator=Held())
    driver = Driver(mini_course())
    driver.go_to("m1.two.square")
    assert bot.repo is not None
    bot.repo.save_turn("tg:65", driver.state, (), NOW, chat_id=65)
    chat = Chat(server, bot, 65)
    update = chat.learner.send("def square(t):\n    return t * t")
    await until(lambda: Held.running == 1, "the run to start")
    assert bot.repo.running_evals()
    mark = server.last_message_id(chat.id)
    await bot.restart()
    await bot.settled(update)
    new = chat.new_since(mark)
    assert "send your code again" in texts(new)
    assert chat.state().phase == "question" and not bot.repo.running_evals()


def test_prune_forgets_only_what_is_old_and_finished(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from bot.storage import Incoming, Outgoing

    repo = Repository(f"sqlite:///{tmp_path / 'tutor.db'}")
    try:
        now = datetime.now(UTC)
        old = now - timedelta(days=8)
        repo.ingest([Incoming(1, 7, "{}"), Incoming(2, 7, "{}")], old)
        repo.ingest([Incoming(3, 7, "{}")], now)
        repo.save_turn("tg:7", Driver(mini_course()).state, (), old, update_id=1, chat_id=7,
                       outbox=[Outgoing(7, "say", {"text": "a"}), Outgoing(7, "say", {"text": "b"})])
        first, second = repo.next_outbox(7), None
        assert first is not None and first.id is not None
        repo.outbox_update(first.id, status="sent", created_at=old)
        second = repo.next_outbox(7)
        assert second is not None and second.id is not None
        repo.outbox_update(second.id, created_at=old)  # old, but never sent
        assert repo.prune(now - timedelta(days=7)) == (1, 1)  # update 1 (done) and the sent row
        assert repo.inbox_counts() == {"new": 2}  # update 2 waits, old as it is; update 3 is recent
        assert repo.outbox_counts() == {"pending": 1}  # never sent: kept
        assert repo.is_processed(1) is False  # its id is forgotten too (Telegram keeps updates a day at most)
    finally:
        repo.close()


async def test_polling_after_a_webhook_takes_over_its_updates(server: FakeBotAPI, tmp_path: Path) -> None:
    """A deploy that switches from a webhook back to long polling: the webhook is removed first (else every
    getUpdates is refused), and an update queued in between is handled."""
    async with TelegramBot(server, tmp_path / "tutor.db", mini_course(), webhook=True) as bot:
        chat = Chat(server, bot, 66)
        assert "Course map" in texts(await chat.send("/start"))
    assert server.webhook_info["url"]
    waiting = server.learner(66).send("/help")  # while no bot runs
    async with TelegramBot(server, tmp_path / "tutor.db", mini_course()) as bot:
        await bot.settled(waiting)
        assert not server.webhook_info["url"]
        assert "What I understand" in server.texts(66)[-1]


async def test_the_webhook_takes_only_telegrams_calls(server: FakeBotAPI, run_bot: Callable[..., Any],
                                                      expect: Expect) -> None:
    """Without the secret header: 403 and nothing stored. A body that is no update: logged, answered 200
    (Telegram would only send it again), nothing stored. Telegram's own calls are answered after the commit."""
    import httpx

    expect.error_logs = 1
    bot = await run_bot(webhook=True)
    url = bot.settings.webhook_url
    assert url is not None and bot.repo is not None
    forged = {"update_id": 777, "message": {"message_id": 1, "date": 0, "chat": {"id": 67, "type": "private"},
                                            "from": {"id": 67, "is_bot": False, "first_name": "M"}, "text": "/reset"}}
    async with httpx.AsyncClient() as client:
        refused = await client.post(url, json=forged)
        wrong = await client.post(url, json=forged, headers={"X-Telegram-Bot-Api-Secret-Token": "guess"})
        junk = await client.post(url, content=b"{not json", headers={
            "X-Telegram-Bot-Api-Secret-Token": bot.settings.webhook_secret or ""})
    assert (refused.status_code, wrong.status_code, junk.status_code) == (403, 403, 200)
    assert bot.repo.inbox_row(777) is None and bot.repo.inbox_counts() == {}
    chat = Chat(server, bot, 68)
    assert "Course map" in texts(await chat.send("/start"))
    assert bot.repo.inbox_counts() == {"done": 1}


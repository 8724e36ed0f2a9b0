"""Benchmark: learners tapping through the course at the same time, on the real Telegram bot.

    .venv/bin/python bench/turns.py [--learners 20] [--part 1]
    TUTOR_ROOT=/path/to/another/checkout .venv/bin/python bench/turns.py   # that checkout's code under test

The bot is the real python-telegram-bot ``Application`` (``bot.telegram.app.build_application``, its
``AIORateLimiter``) in a separate process, run as ``python -m bot serve`` runs it (``run_bot``): the
durable runtime, ``asyncio.run(runtime_for(app, settings).serve())`` (our own long polling into the
inbox, lanes per chat, the outbox sender), but without the code sandbox (no evaluator: code tasks are
skipped through their hints and "Show solution"), on a SQLite file in a temporary directory and the real
course. Code from before the durable runtime (no ``runtime_for`` in ``bot.telegram.app``) is run the way
it was then, with PTB's ``app.run_polling``; the bot's log and the "bot:" line say which ran.

The code under test (``bot``, ``dialogs``, the course, the fake) is the checkout this file sits in, or
the one ``TUTOR_ROOT`` names: so this file can measure an older commit checked out elsewhere (``bench/
durability.py`` does). The bot talks over
loopback HTTP to the fake Bot API (``tests.support.fake_bot_api``) running in this process, where the
learners live: each starts with /start and plays the course from its beginning to the end of Part
``--part`` by tapping (Continue, the options, the true/false buttons, the multi-select toggles and
Submit; now and then a deliberate wrong answer first, then the right one on the same, re-opened
question) and by typing the answer where a
question has no buttons. Half of them are English, half Chinese. Like people, each waits for the
bot's reply to an action before the next one; nobody sleeps.

Figures, all over the measured run (a warm-up learner goes first and is not counted):

- turns/s: a turn is one learner action that got its reply (for a tap: the query answered *and* the
  reply on screen: the next message carrying a keyboard, or a question without buttons, or the edit of
  the tapped message for a toggle, a statement judged or a wrong answer);
- click -> answerCallbackQuery: from the moment the fake makes the tap's update available (right
  after ``Learner.click`` queued it) to the fake receiving answerCallbackQuery for that query id
  (``RecordedRequest.time``, taken when the request arrives);
- click -> next question: from the same moment to the fake receiving the request that put the reply
  on screen (the sendMessage of the next message carrying a keyboard, or the edit of the tapped
  message);
- chat API calls per turn: every request of the bot but getUpdates and the start-up calls (getMe,
  setMyCommands...), with the breakdown by method;
- bot CPU ms per turn: utime + stime of the bot process from ``/proc/<pid>/stat``, before and after;
- turns lost: actions with no reply within 30 s.

The last line, ``RESULT ...``, sums it up for scripts (``bench/durability.py`` parses it): ``; ``-separated
fields, each ``<name> <number>[ unit]``: turns/s, answer p50 and p99 (click -> answerCallbackQuery, ms),
next p50 and p99 (click -> next question, ms), calls/turn, bot CPU (ms/turn), lost.

A benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(os.environ.get("TUTOR_ROOT") or Path(__file__).resolve().parents[1]).resolve()  # the code under test
sys.path.insert(0, str(ROOT))

from bot.content import default_content_dir, load_course  # noqa: E402
from dialogs import markup  # noqa: E402
from dialogs.course import Choice, CodeTask, Course, Predict, Statements  # noqa: E402
from tests.support.fake_bot_api import FakeBotAPI, Learner, RecordedRequest, SentMessage  # noqa: E402

BOT_NAME = "AutogradTutorBot"
REPLY_TIMEOUT = 30.0  # seconds: an action without its reply by then is a lost turn
WRONG_RATE = 0.2  # share of single-answer questions a learner first answers wrong, on purpose
NOT_CHAT_CALLS = frozenset({  # start-up, polling and bot-settings calls: not part of a learner's turn
    "getupdates", "getme", "setmycommands", "getmycommands", "deletemycommands", "deletewebhook", "setwebhook",
    "getwebhookinfo", "close", "logout", "setmydescription", "setmyshortdescription", "setmyname",
    "setchatmenubutton",
})
SENDING = frozenset({"sendmessage", "sendphoto", "senddocument", "sendpoll"})
EDITING = frozenset({"editmessagetext", "editmessagereplymarkup", "editmessagecaption"})
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
IDLE_SECONDS = 3.0  # the bot's CPU with nobody talking to it (long polling), measured after the warm-up
RUNTIME = "the durable runtime: asyncio.run(runtime_for(app, settings).serve())"
POLLING = "PTB's app.run_polling (no runtime_for in bot.telegram.app: code from before the durable updates)"


# ------------------------------------------------------------------------------------------ the bot process


def serve_bot() -> int:
    """The child process: the bot as ``run_bot`` runs it, without the sandbox. Since the durable updates
    that is ``runtime_for(app, settings).serve()``; code from before them has no ``runtime_for`` and ran
    PTB's ``run_polling``, which is what it gets here."""
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    from telegram import Update

    import bot
    from bot.config import Settings
    from bot.storage import Repository
    from bot.telegram import app as telegram_app

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    for noisy in ("httpx", "httpcore", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    runtime_for = getattr(telegram_app, "runtime_for", None)
    logging.getLogger("bench").info(
        "serving %s with %s", Path(bot.__file__).resolve().parents[1],
        RUNTIME if runtime_for is not None else POLLING)
    course = load_course(settings.content_dir)
    repo = Repository(settings.db_url)
    app = telegram_app.build_application(settings, course, repo, None)
    try:
        if runtime_for is not None:
            asyncio.run(runtime_for(app, settings).serve())
        else:
            app.run_polling(allowed_updates=Update.ALL_TYPES, bootstrap_retries=3)
    finally:
        repo.close()
    return 0


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


# ------------------------------------------------------------------------------------------ learners


@dataclass
class Turn:
    learner: int
    kind: str  # "tap" or "type"
    action: str  # the button's action (go, pick, toggle, judge, submit, retry, hint, reveal) or "text"
    made: float  # time.time() when the fake made the update available
    seen: float | None = None  # when the learner had the whole reply (None: lost)
    query: str | None = None  # the callback query id of a tap
    reply: int | None = None  # the message that carried the reply
    edited: bool = False  # the reply is an edit of the tapped message


def first_line(text: str) -> str:
    for line in text.split("\n"):
        line = markup.plain(line).strip()
        if line and not line.startswith(("```", "|")):
            return line[:40]
    return ""


@dataclass
class Knowledge:
    """What a learner who knows the answers needs: the questions of the parts played, recognised on
    screen by fragments of their text (many prompts start alike: "True or false?")."""

    course: Course
    lang: str
    parts: int
    questions: list[tuple[tuple[str, ...], Any]] = field(default_factory=list)
    final: str = ""  # the end of the last section played
    done: str = ""  # the end of the course

    def __post_init__(self) -> None:
        for part in self.course.parts[: self.parts]:
            for section in part.sections:
                for step in section.steps:
                    if getattr(step, "prompt", None) is not None:
                        self.questions.append((self.fragments(step), step))
        last = self.course.parts[self.parts - 1].sections[-1]
        self.final = first_line(self.course.t(self.lang, "section_done", title=last.title.get(self.lang)))
        self.done = first_line(self.course.t(self.lang, "course_done", sections=len(self.course.section_ids)))

    def fragments(self, step: Any) -> tuple[str, ...]:
        lang = self.lang
        texts = [step.prompt.get(lang)]
        texts += [o.text.get(lang) for o in getattr(step, "options", ()) if not isinstance(o, str)]
        texts += [st.text.get(lang) for st in getattr(step, "statements", ())]
        found = [first_line(t) for t in texts]
        code = next((line.strip() for line in (getattr(step, "code", None) or "").split("\n") if line.strip()), "")
        return tuple(f for f in [*found, code[:40]] if f)

    def step_of(self, message: SentMessage) -> Any | None:
        text = (message.plain_text or "").lstrip()
        matches = [(len(frags), step) for frags, step in self.questions
                   if text.startswith(frags[0]) and all(f in text for f in frags)]
        if not matches:
            return None
        matches.sort(key=lambda m: -m[0])
        if len(matches) > 1 and matches[0][0] == matches[1][0] and matches[0][1].id != matches[1][1].id:
            raise RuntimeError(f"two questions look alike: {matches[0][1].id}, {matches[1][1].id}")
        return matches[0][1]

    def typed_only(self, step: Any) -> bool:
        return isinstance(step, CodeTask) or (isinstance(step, Predict) and not step.options)

    def actionable(self, message: SentMessage) -> bool:
        """A message the learner can act on: buttons, a question that wants typing, or the end."""
        if message.deleted:
            return False
        if message.callback_data:
            return True
        step = self.step_of(message)
        return (step is not None and self.typed_only(step)) or self.done in (message.plain_text or "")


def buttons(message: SentMessage) -> list[tuple[str, str, str, str]]:
    """(label, callback data, action, argument) of each button."""
    out = []
    for row in message.buttons:
        for b in row:
            data = b.get("callback_data", "")
            parts = data.split("|", 2)
            if len(parts) == 3:
                out.append((b.get("text", ""), data, parts[1], parts[2]))
    return out


class Player:
    """One learner: looks at the newest thing to act on, acts, waits for the bot's reply."""

    def __init__(self, server: FakeBotAPI, user_id: int, know: Knowledge, turns: list[Turn]) -> None:
        self.server = server
        self.learner: Learner = server.learner(user_id, language_code="zh-hans" if know.lang == "zh" else "en")
        self.id = user_id
        self.know = know
        self.turns = turns
        self.rng = random.Random(user_id)
        self.tried: set[str] = set()
        self.lost = False
        self.lost_note = ""

    async def play(self, *, limit: int = 2000) -> None:
        screen = await self.type("/start")
        for _ in range(limit):
            if screen is None or self.finished(screen):
                return
            screen = await self.act(screen)

    def finished(self, screen: SentMessage) -> bool:
        text = screen.plain_text or ""
        return self.know.final in text or self.know.done in text

    async def act(self, screen: SentMessage) -> SentMessage | None:
        shown = buttons(screen)
        actions = {action: (label, data, arg) for label, data, action, arg in shown}
        if "go" in actions:
            return await self.tap(screen, actions["go"][1], "go")
        step = self.know.step_of(screen)
        if step is None:  # a hint, or a message after a wrong answer: the buttons it offers
            for action in ("retry", "reveal", "hint"):
                if action in actions:
                    return await self.tap(screen, actions[action][1], action)
            raise RuntimeError(f"learner {self.id}: nothing to do with {screen.summary()}")
        if self.know.typed_only(step):
            return await self.type("hint" if isinstance(step, CodeTask) else step.answer)
        first_try = step.id not in self.tried
        self.tried.add(step.id)
        wrong = first_try and self.rng.random() < WRONG_RATE
        if isinstance(step, Choice) and step.multi:
            for label, data, action, arg in shown:
                if action == "toggle" and label.startswith("✅") != step.options[int(arg)].correct:
                    return await self.tap(screen, data, action, edit=True)
            return await self.tap(screen, actions["submit"][1], "submit")
        if isinstance(step, Statements):
            judged = {arg.split(":")[0] for label, _, action, arg in shown if action == "judge" and label.endswith("•")}
            todo = [i for i in range(len(step.statements)) if str(i) not in judged]
            i = todo[0]
            want = f"{i}:{int(step.statements[i].answer)}"
            data = next(d for _, d, action, arg in shown if action == "judge" and arg == want)
            return await self.tap(screen, data, "judge", edit=len(todo) > 1)
        if isinstance(step, Choice):
            right = next(i for i, o in enumerate(step.options) if o.correct)
        else:
            assert isinstance(step, Predict)
            right = step.options.index(step.answer)
        others = [i for i in range(len(step.options)) if i != right]
        pick = self.rng.choice(others) if wrong and others else right
        data = next(d for _, d, action, arg in shown if action == "pick" and arg == str(pick))
        # a wrong answer is shown on the question itself, which stays open for another answer
        return await self.tap(screen, data, "pick", edit=pick != right)

    async def tap(self, screen: SentMessage, data: str, action: str, *, edit: bool = False) -> SentMessage | None:
        mark = self.server.last_message_id(self.id)
        update = self.learner.click(data, message_id=screen.message_id)
        turn = Turn(self.id, "tap", action, time.time(), query=update["callback_query"]["id"])
        self.turns.append(turn)
        deadline = time.monotonic() + REPLY_TIMEOUT
        try:
            await self.server.wait_for_callback_answer(turn.query or "", timeout=REPLY_TIMEOUT)
            if edit:
                reply = await self.edit_of(screen, deadline)
            else:
                reply = await self.new_after(mark, deadline)
        except TimeoutError:
            return self.give_up(f"tap {data!r} on #{screen.message_id}")
        turn.seen, turn.reply, turn.edited = time.time(), reply.message_id, edit
        return reply

    async def type(self, text: str) -> SentMessage | None:
        update = self.learner.send(text)
        turn = Turn(self.id, "type", "text", time.time())
        self.turns.append(turn)
        try:
            reply = await self.new_after(update["message"]["message_id"], time.monotonic() + REPLY_TIMEOUT)
        except TimeoutError:
            return self.give_up(f"typed {text[:40]!r}")
        turn.seen, turn.reply = time.time(), reply.message_id
        return reply

    def give_up(self, what: str) -> None:
        """No reply in time: this learner stops (what it would do next depends on that reply)."""
        self.lost = True
        last = [m.summary()[:160] for m in self.server.messages(self.id)[-2:]]
        self.lost_note = f"learner {self.id}: no reply to {what}; the chat ends with {last}"

    async def new_after(self, mark: int, deadline: float) -> SentMessage:
        """The first new message of the bot the learner can act on."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            new = await self.learner.wait_for_messages(1, after=mark, timeout=remaining)
            for message in new:
                if self.know.actionable(message):
                    return message
            mark = max(m.message_id for m in new)

    async def edit_of(self, screen: SentMessage, deadline: float) -> SentMessage:
        """The tapped message once edited with a new keyboard (a toggle, a statement judged)."""
        before = screen.button_texts

        def edited() -> SentMessage | None:
            now = self.server.message(self.id, screen.message_id)
            changed = len(now.history) > len(screen.history) and now.button_texts != before
            return now if changed and now.buttons else None

        return await self.server.wait_for(edited, max(deadline - time.monotonic(), 0.001),
                                          what=f"an edit of message {screen.message_id}")


# ------------------------------------------------------------------------------------------ figures


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def spread(name: str, seconds: list[float]) -> str:
    if not seconds:
        return f"{name}: none"
    ms = [s * 1000 for s in seconds]
    return (f"{name}: n={len(ms)} p50 {percentile(ms, 50):.0f} ms, p99 {percentile(ms, 99):.0f} ms "
            f"(min {min(ms):.0f}, max {max(ms):.0f})")


def reply_times(requests: list[RecordedRequest]) -> tuple[dict[str, float], dict[tuple[int, int], float],
                                                           dict[tuple[int, int], list[float]]]:
    """When the fake received: each query's answer; each message's send; each message's edits."""
    answers: dict[str, float] = {}
    sent: dict[tuple[int, int], float] = {}
    edits: dict[tuple[int, int], list[float]] = {}
    for r in requests:
        method = r.method.lower()
        if method == "answercallbackquery" and r.ok:
            answers.setdefault(str(r.params.get("callback_query_id")), r.time)
        elif method in SENDING and r.ok and r.response:
            sent[(r.params["chat_id"], r.response["result"]["message_id"])] = r.time
        elif method in EDITING and r.ok and (r.params.get("reply_markup") or {}).get("inline_keyboard"):
            edits.setdefault((r.params["chat_id"], r.params["message_id"]), []).append(r.time)
    return answers, sent, edits


def busiest_second(requests: list[RecordedRequest]) -> int:
    times = sorted(r.time for r in requests if "chat_id" in r.params)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while times[lo] < t - 1.0:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


# ------------------------------------------------------------------------------------------ the run


class BotProcess:
    """The bot as a child process (``serve_bot``) of the code in ``root`` (default: ``ROOT``), its log in
    ``tmp/bot.log`` and its SQLite file ``tmp/tutor.db``."""

    def __init__(self, server: FakeBotAPI, tmp: Path, root: Path | None = None) -> None:
        root = (root or ROOT).resolve()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("TELEGRAM_", "WEBHOOK_", "DATABASE_", "SANDBOX_", "CONTENT_", "PUSH_"))}
        env.update(TELEGRAM_BOT_TOKEN=server.token, TELEGRAM_API_BASE_URL=server.base_url,
                   TELEGRAM_FILE_BASE_URL=server.base_file_url, DATABASE_URL=f"sqlite:///{tmp / 'tutor.db'}",
                   DATA_DIR=str(tmp), PTB_TIMEDELTA="true", PYTHONUNBUFFERED="1", TUTOR_ROOT=str(root),
                   PYTHONPATH=str(root))
        self.root = root
        self.db = tmp / "tutor.db"
        self.log_path = tmp / "bot.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve-bot"], cwd=tmp, env=env,
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def mode(self) -> str:
        """How the child runs the bot (``RUNTIME`` or ``POLLING``), from its log."""
        log = self.log_text()
        return RUNTIME if RUNTIME in log else POLLING if POLLING in log else "unknown (see the bot's log)"

    def log_text(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")

    async def ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while "running as @" not in self.log_text():
            if self.proc.poll() is not None:
                raise SystemExit(f"the bot exited ({self.proc.returncode}):\n{self.log_text()}")
            if time.monotonic() > deadline:
                raise SystemExit(f"the bot did not start within {timeout} s:\n{self.log_text()}")
            await asyncio.sleep(0.05)

    async def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                await asyncio.to_thread(self.proc.wait, 30)
            except Exception:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def answer_log(db: Path, learners: set[int]) -> str:
    """How the learners' answers were graded (from the bot's answer log), as a sanity check."""
    try:
        with contextlib.closing(sqlite3.connect(db)) as conn:
            rows = conn.execute("SELECT learner_id, verdict FROM answerlog").fetchall()
    except sqlite3.Error as exc:
        return f"unknown ({exc})"
    counts = Counter(verdict for learner, verdict in rows if learner in {f"tg:{i}" for i in learners})
    return ", ".join(f"{verdict} {n}" for verdict, n in counts.most_common()) or "none"


async def quiet(server: FakeBotAPI, seconds: float = 1.0, limit: float = 15.0) -> None:
    """Wait until the bot has made no call but getUpdates for ``seconds``."""
    started = time.monotonic()
    last = -1
    still_since = time.monotonic()
    while time.monotonic() - started < limit:
        count = sum(1 for r in server.requests if r.method.lower() != "getupdates")
        if count != last:
            last, still_since = count, time.monotonic()
        elif time.monotonic() - still_since >= seconds:
            return
        await asyncio.sleep(0.25)


async def run(learners: int, parts: int) -> None:
    course = load_course(default_content_dir())
    parts = max(1, min(parts, len(course.parts)))
    knows = {lang: Knowledge(course, lang, parts) for lang in ("en", "zh")}
    sections = sum(len(p.sections) for p in course.parts[:parts])
    steps = sum(len(s.steps) for p in course.parts[:parts] for s in p.sections)
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}; code under test: {ROOT}")
    print(f"course: from the start to the end of Part {parts} ({sections} sections, {steps} steps); "
          f"{learners} learner(s) at once (half en, half zh), each waiting for the bot's reply before acting again")
    with tempfile.TemporaryDirectory(prefix="bench-turns-") as name:
        tmp = Path(name)
        async with FakeBotAPI(bot_username=BOT_NAME) as server:
            bot = BotProcess(server, tmp)
            try:
                started = time.perf_counter()
                await bot.ready()
                print(f"bot: a separate process (pid {bot.pid}): build_application + {bot.mode}, no sandbox; long "
                      f"polling against the fake Bot API on loopback HTTP; SQLite file in a temp dir; up in "
                      f"{time.perf_counter() - started:.1f} s")
                warm: list[Turn] = []
                warmer = Player(server, 999_000, knows["en"], warm)
                screen = await warmer.type("/start")
                for _ in range(6):
                    if screen is not None:
                        screen = await warmer.act(screen)
                await quiet(server, 0.5)
                idle0 = cpu_seconds(bot.pid)
                await asyncio.sleep(IDLE_SECONDS)
                idle = (cpu_seconds(bot.pid) - idle0) / IDLE_SECONDS

                since = len(server.requests)
                turns: list[Turn] = []
                players = [Player(server, 1001 + i, knows["zh" if i % 2 else "en"], turns) for i in range(learners)]
                cpu0, own0, wall0 = cpu_seconds(bot.pid), time.process_time(), time.time()
                await asyncio.gather(*(p.play() for p in players))
                wall1 = max([t.seen for t in turns if t.seen is not None] or [time.time()])
                await quiet(server)
                cpu1, own1 = cpu_seconds(bot.pid), time.process_time()
            finally:
                code = await bot.stop()
            requests = server.requests[since:]
            unanswered = server.unanswered_callback_queries()
            fake_errors = len(server.server_errors)
        log = bot.log_text()
        verdicts = answer_log(tmp / "tutor.db", {p.id for p in players})

    done = [t for t in turns if t.seen is not None]
    taps = [t for t in done if t.kind == "tap"]
    elapsed = wall1 - wall0
    answers, sent, edits = reply_times(requests)
    to_answer = [answers[t.query] - t.made for t in taps if t.query in answers]
    to_next: list[float] = []
    typed_next: list[float] = []
    by_action: dict[str, list[tuple[float, float]]] = {}
    for t in done:
        assert t.reply is not None
        if t.edited:
            after = [x for x in edits.get((t.learner, t.reply), []) if x >= t.made]
            at = after[0] if after else None
        else:
            at = sent.get((t.learner, t.reply))
        if at is None:
            continue
        (to_next if t.kind == "tap" else typed_next).append(at - t.made)
        if t.kind == "tap" and t.query in answers:
            by_action.setdefault(t.action, []).append((answers[t.query] - t.made, at - t.made))
    calls = [r for r in requests if r.method.lower() not in NOT_CHAT_CALLS]
    methods = Counter(r.method for r in calls)
    refused = [r for r in calls if not r.ok]
    lost = len(turns) - len(done)

    print(f"turns: {len(done)} in {elapsed:.1f} s = {len(done) / elapsed:.1f} turns/s "
          f"({len(taps)} taps, {len(done) - len(taps)} typed; {sum(p.lost for p in players)} learners stopped early)")
    print(f"  answers graded: {verdicts} (the wrong ones on purpose, {WRONG_RATE:.0%} of first tries at "
          "single-answer questions; code tasks revealed after their hints)")
    print(spread("click -> answerCallbackQuery", to_answer))
    print(spread("click -> next question (next message with a keyboard, or the edit of the tapped one)", to_next))
    print(spread("typed -> next question", typed_next))
    print("  by button (p50 click -> answer / p50 click -> next question): " + ", ".join(
        f"{action} n={len(v)} {percentile([a for a, _ in v], 50) * 1000:.0f}/"
        f"{percentile([n for _, n in v], 50) * 1000:.0f} ms"
        for action, v in sorted(by_action.items(), key=lambda kv: -len(kv[1]))))
    per_turn = len(calls) / max(len(done), 1)
    answers_per_turn = methods.get("answerCallbackQuery", 0) / max(len(done), 1)
    print(f"chat API calls per turn: {per_turn:.2f}, {per_turn - answers_per_turn:.2f} without answerCallbackQuery "
          f"({len(calls)} calls for {len(done)} turns; getUpdates and start-up calls left out): " + ", ".join(
              f"{m} {n / max(len(done), 1):.2f}" for m, n in methods.most_common()))
    limited = sum("chat_id" in r.params for r in calls)
    print(f"  calls with a chat_id, which AIORateLimiter paces at 30/s overall: {limited / max(len(done), 1):.2f} per "
          f"turn, so at most {30 * len(done) / max(limited, 1):.1f} turns/s; measured {limited / elapsed:.1f}/s on "
          f"average, {busiest_second(calls)} in the busiest second; refused by the fake: {len(refused)}"
          + (f" ({Counter(f'{r.method} {r.status}' for r in refused).most_common(3)})" if refused else ""))
    cpu = cpu1 - cpu0
    print(f"bot CPU per turn: {cpu * 1000 / max(len(done), 1):.2f} ms ({cpu:.2f} s of utime+stime of the bot process, "
          f"/proc/{bot.pid}/stat before and after, over {elapsed:.1f} s of turns + the wait for the bot to go quiet: "
          f"{cpu / elapsed * 100:.0f}% of one core); this process (fake Bot API + learners): {own1 - own0:.2f} s CPU")
    polls = sum(1 for r in requests if r.method.lower() == "getupdates")
    print(f"  the bot idle (long polling, nobody talking): {idle * 1000:.0f} ms CPU per second; getUpdates during "
          f"the run: {polls} ({polls / max(len(done), 1):.2f} per turn)")
    print(f"turns lost (no reply within {REPLY_TIMEOUT:.0f} s): {lost}; taps never answered: {len(unanswered)}; "
          f"bugs inside the fake: {fake_errors}; bot log: {log.count(' WARNING ')} warnings, {log.count(' ERROR ')} "
          f"errors; bot exit code {code}")
    for note in [p.lost_note for p in players if p.lost_note][:3]:
        print(f"  {note}")
    for line in [x for x in log.splitlines() if " ERROR " in x or "Traceback" in x][:3]:
        print(f"  {line[:200]}")

    def ms(values: list[float], q: float) -> str:
        return f"{percentile(values, q) * 1000 if values else float('nan'):.0f} ms"

    print(f"RESULT {learners} learner(s), Part 1..{parts}: {len(done) / elapsed:.1f} turns/s; answer p50 "
          f"{ms(to_answer, 50)}; answer p99 {ms(to_answer, 99)}; next p50 {ms(to_next, 50)}; next p99 "
          f"{ms(to_next, 99)}; calls/turn {len(calls) / max(len(done), 1):.2f}; bot CPU "
          f"{cpu * 1000 / max(len(done), 1):.2f} ms/turn; lost {lost}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--learners", type=int, default=20, help="learners playing at the same time")
    parser.add_argument("--part", type=int, default=1, help="play from the start to the end of this part")
    parser.add_argument("--serve-bot", action="store_true", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.serve_bot:
        raise SystemExit(serve_bot())
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(args.learners, args.part))

if __name__ == "__main__":
    main()

"""Benchmark: what the durable updates cost, and the bot's memory under overload, before and after them.

    .venv/bin/python bench/durability.py [--learners 20] [--overload-seconds 120] [--before 269258f]

"Before" is the last commit before the durable updates (``--before``, 269258f: PTB's ``run_polling``,
replies sent by the handlers), checked out for the run in a temporary ``git worktree`` (removed at the
end); "now" is the checkout this file sits in, as it is on disk. Both run with the same python (this
one's venv), against the same fake Bot API, in the same run, one after the other:

1. The cost of durability: ``bench/turns.py --learners N`` of this checkout, once with the code of the
   "before" tree (``TUTOR_ROOT``, cwd and ``PYTHONPATH`` = the worktree, so its ``bot``, ``dialogs``,
   course and fake are imported; its bot runs with ``run_polling``), once with this tree's (the durable
   runtime), each in its own process; their ``RESULT`` lines side by side with the ratio now/before.
2. Overload: the bot as ``bench/turns.py`` runs it (a child process, the fake Bot API in this process on
   loopback, SQLite in a temp dir, no sandbox). Its capacity C (updates/s) is measured with a burst of
   300 updates from 100 chats; then, for ``--overload-seconds``, updates are queued at 3 x C of the
   current bot (the same offered load for both trees) from 1000 chats ("/start", "go", then "/help" and
   "/start" in turn: each gets exactly one message back), nobody waiting for a reply. Every 5 s: the
   bot's RSS (``/proc/<pid>/status`` VmRSS), the updates not answered yet, those still waiting at the
   fake (not fetched by getUpdates) and, now, the inbox backlog (rows ``new`` in the ``inbox`` table, from
   a read-only SQLite connection). Then the feeding stops and the drain is timed: until every chat has as
   many messages as it sent updates and (now) no inbox row is ``new`` and no outbox row ``pending``, or
   nothing comes for a minute. Lost replies: per chat, updates sent - messages received; now, also the
   inbox and outbox rows by status. The bots' logs are kept (the path is printed), their warnings and
   errors summed up by phase.

Duration: the drain of a backlog fed at 3 x C takes about twice the overload, so each overload run takes
about 3 x ``--overload-seconds`` + 30 s; with the defaults the whole run takes 16-18 minutes on 2 cores
(``--overload-seconds 60`` makes it about 10).

A benchmark, not a test: it prints figures (ratios measured in one run) and asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]  # "now": this checkout
os.environ.pop("TUTOR_ROOT", None)  # bench/turns.py, imported below, must test this checkout
sys.path.insert(0, str(HERE))

from bench import turns  # noqa: E402
from tests.support.fake_bot_api import FakeBotAPI, Learner, RecordedRequest  # noqa: E402

TURNS = HERE / "bench" / "turns.py"
BEFORE = "269258f"  # the last commit before "Durable updates" (7b2e313)
SAMPLE_SECONDS = 5.0
BURST_CHATS, BURST_PER_CHAT = 100, 3  # the capacity burst: 300 updates at once
OVERLOAD_CHATS = 1000
LOAD_FACTOR = 3.0
STALL_SECONDS = 60.0  # the drain gives up after this long without a single new reply
OPENING = ("/start", "go")  # a chat's first updates (the welcome; the first step of the course), then
CYCLE = ("/help", "/start")  # ... these, in turn: each of them gets exactly one message back
RESULT_FIELDS = {  # name in the table: (pattern in the RESULT line, unit)
    "turns/s": (r"([\d.]+) turns/s", ""),
    "answer p50": (r"answer p50 ([\d.]+|nan) ms", "ms"),
    "answer p99": (r"answer p99 ([\d.]+|nan) ms", "ms"),
    "next question p50": (r"next p50 ([\d.]+|nan) ms", "ms"),
    "next question p99": (r"next p99 ([\d.]+|nan) ms", "ms"),
    "API calls per turn": (r"calls/turn ([\d.]+)", ""),
    "bot CPU per turn": (r"bot CPU ([\d.]+) ms/turn", "ms"),
    "lost turns": (r"lost (\d+)", ""),
}


def say(text: str = "") -> None:
    print(text, flush=True)


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(HERE), *args], check=True, capture_output=True, text=True).stdout.strip()


# ------------------------------------------------------------------------------------------ the machine


def machine() -> list[str]:
    model = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    mem = "?"
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        kb = next((int(line.split()[1]) for line in f if line.startswith("MemTotal:")), 0)
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        import telegram
        ptb = telegram.__version__
    except Exception:  # pragma: no cover - only informative
        ptb = "?"
    return [f"machine: {os.cpu_count()} cores ({usable} usable), {model}; {mem} RAM; {platform.system()} "
            f"{platform.release()}",
            f"python {sys.version.split()[0]} ({sys.executable}); python-telegram-bot {ptb}"]


def code_state(before: str) -> list[str]:
    head = git("rev-parse", "--short", "HEAD")
    dirty = git("status", "--porcelain", "--", "bot", "dialogs", "content", "tests/support")
    changed = len(dirty.splitlines())
    now = (f"now: {HERE} at {head} ({git('log', '-1', '--format=%s', 'HEAD')[:70]}...)"
           + (f" + {changed} uncommitted file(s) in bot/ dialogs/ content/ tests/support/ (measured as on disk)"
              if changed else ", no uncommitted change in bot/ dialogs/ content/ tests/support/"))
    return [now, f"before: {before} ({git('log', '-1', '--format=%s', before)[:70]}...), in a temporary git "
                 "worktree"]


# ------------------------------------------------------------------------------------------ 1. bench/turns.py


@dataclass
class TurnsRun:
    label: str
    figures: dict[str, float] = field(default_factory=dict)
    output: str = ""
    seconds: float = 0.0
    error: str = ""


def run_turns(label: str, root: Path, learners: int) -> TurnsRun:
    """This tree's bench/turns.py with the code of ``root``, in its own process."""
    run = TurnsRun(label)
    env = {**os.environ, "TUTOR_ROOT": str(root), "PYTHONPATH": str(root)}
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, str(TURNS), "--learners", str(learners)], cwd=root, env=env,
                              capture_output=True, text=True, timeout=1800)
        run.output = done.stdout + (f"\n[stderr]\n{done.stderr}" if done.stderr.strip() else "")
        if done.returncode:
            run.error = f"exit code {done.returncode}"
    except subprocess.TimeoutExpired as exc:
        run.output = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
        run.error = "no result within 30 min"
    run.seconds = time.monotonic() - started
    line = next((x for x in run.output.splitlines() if x.startswith("RESULT ")), "")
    if not line:
        run.error = run.error or "no RESULT line"
    for name, (pattern, _) in RESULT_FIELDS.items():
        found = re.search(pattern, line)
        if found:
            run.figures[name] = float(found.group(1))
    return run


def turns_table(before: TurnsRun, now: TurnsRun) -> list[str]:
    rows = [f"  {'':<22}{'before':>12}{'now':>12}{'now/before':>12}"]
    for name, (_, unit) in RESULT_FIELDS.items():
        a, b = before.figures.get(name), now.figures.get(name)

        def shown(x: float | None, unit: str = unit) -> str:
            if x is None:
                return "-"
            return f"{x:.0f} {unit}".strip() if unit == "ms" else f"{x:g}"

        ratio = f"{b / a:.2f}x" if a and b is not None and a == a and b == b else "-"
        rows.append(f"  {name:<22}{shown(a):>12}{shown(b):>12}{ratio:>12}")
    return rows


# ------------------------------------------------------------------------------------------ 2. overload


def rss_mb(pid: int) -> float | None:
    """VmRSS of a process, in MB (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def hwm_mb(pid: int) -> float | None:
    """VmHWM (the peak RSS the kernel saw) of a process, in MB."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def table_counts(db: Path, table: str) -> dict[str, int] | None:
    """Rows by status of the bot's ``inbox``/``outbox`` table, read-only (None: no such table)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
            rows = conn.execute(f"SELECT status, count(*) FROM {table} GROUP BY status").fetchall()
    except sqlite3.Error:
        return None
    return {str(status): int(n) for status, n in rows}


class Feed:
    """Updates from a set of chats, round robin: each chat's first are ``OPENING``, then ``CYCLE``."""

    def __init__(self, server: FakeBotAPI, first_chat: int, chats: int) -> None:
        self.server = server
        self.chats = list(range(first_chat, first_chat + chats))
        self.sent: Counter[int] = Counter()
        self.learners: dict[int, Learner] = {}
        self.total = 0

    def send(self) -> None:
        chat = self.chats[self.total % len(self.chats)]
        learner = self.learners.get(chat)
        if learner is None:
            learner = self.server.learner(chat, language_code="zh-hans" if chat % 2 else "en")
            self.learners[chat] = learner
        n = self.sent[chat]
        learner.send(OPENING[n] if n < len(OPENING) else CYCLE[(n - len(OPENING)) % len(CYCLE)])
        self.sent[chat] += 1
        self.total += 1


def unfetched(server: FakeBotAPI) -> int:
    """Updates queued at the fake that no getUpdates has handed out yet."""
    with server._lock:  # read only
        return sum(not p.delivered for p in server._pending)


class Replies:
    """The bot's messages per chat, counted from the fake's request log as it grows (read in place under
    the fake's lock: ``server.requests`` would copy the whole log every time). A request is logged when it
    arrives and counted once answered."""

    def __init__(self, server: FakeBotAPI) -> None:
        self.server = server
        self.seen = 0  # requests looked at
        self.open: list[RecordedRequest] = []  # sends looked at before they were answered
        self.per_chat: Counter[int] = Counter()
        self.last = 0.0  # when the fake received the newest one
        self.refused = 0

    def update(self) -> None:
        with self.server._lock:  # read only
            log = self.server._requests
            new = log[self.seen:]
            self.seen = len(log)
            sends = self.open + [r for r in new if r.method.lower() in turns.SENDING]
            self.open = [r for r in sends if not r.status]
            done = [(r.ok, int(r.params.get("chat_id", 0)), r.time) for r in sends if r.status]
        for ok, chat, at in done:
            if ok:
                self.per_chat[chat] += 1
                self.last = max(self.last, at)
            else:
                self.refused += 1

    def missing(self, feed: Feed) -> int:
        """Updates of ``feed`` without their reply yet: per chat, updates sent - messages received."""
        return sum(max(feed.sent[c] - self.per_chat[c], 0) for c in feed.chats)


@dataclass
class Sample:
    t: float  # seconds since the overload began
    rss: float | None
    unanswered: int  # overload updates queued without their reply yet
    not_fetched: int  # still at the fake (getUpdates has not taken them)
    inbox_new: int | None  # rows "new" in the inbox (None: no inbox)
    outbox_pending: int | None  # rows "pending" in the outbox (None: no outbox)


@dataclass
class Overload:
    label: str
    root: Path
    mode: str = ""
    capacity: float = 0.0
    rate: float = 0.0
    sent: int = 0
    feed_seconds: float = 0.0
    rss_start: float | None = None
    rss_end: float | None = None
    hwm: float | None = None
    samples: list[Sample] = field(default_factory=list)
    drain: float | None = None  # seconds from the end of feeding to the last reply (None: not drained)
    drain_note: str = ""
    lost: int = 0
    lost_chats: int = 0
    extra: int = 0
    refused: int = 0
    inbox: dict[str, int] | None = None
    outbox: dict[str, int] | None = None
    outbox_kinds: dict[str, int] = field(default_factory=dict)
    received: int = 0
    cpu: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # time.time() when each phase began
    log: Path | None = None
    exit_code: int | None = None
    log_notes: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def peak(self) -> float | None:
        values = [s.rss for s in self.samples if s.rss is not None] + ([self.rss_start] if self.rss_start else [])
        return max(values) if values else None


async def wait_replied(replies: Replies, feed: Feed, bot: turns.BotProcess, limit: float) -> str:
    """Wait until every chat of ``feed`` has as many messages as it sent updates and, when the bot has an
    inbox and an outbox, none of their rows is ``new`` or ``pending`` (""); or say why not: the bot died,
    nothing came for ``STALL_SECONDS``, ``limit`` seconds passed."""
    deadline = time.monotonic() + limit
    last_count, last_change = -1, time.monotonic()
    while True:
        replies.update()
        missing = replies.missing(feed)
        if missing == 0:
            inbox, outbox = await asyncio.to_thread(lambda: (table_counts(bot.db, "inbox"),
                                                             table_counts(bot.db, "outbox")))
            if not (inbox or {}).get("new") and not (outbox or {}).get("pending"):
                return ""
        if missing != last_count:
            last_count, last_change = missing, time.monotonic()
        if bot.proc.poll() is not None:
            return f"the bot died (exit code {bot.proc.returncode}) with {missing} unanswered"
        if time.monotonic() - last_change > STALL_SECONDS:
            return f"no new reply for {STALL_SECONDS:.0f} s, {missing} unanswered"
        if time.monotonic() > deadline:
            return f"not drained within {limit:.0f} s, {missing} unanswered"
        await asyncio.sleep(0.25)


def outbox_kinds(db: Path) -> dict[str, int]:
    """Outbox rows by (kind, status) that are not ``sent``."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
            rows = conn.execute("SELECT kind, status, count(*) FROM outbox WHERE status != 'sent' "
                                "GROUP BY kind, status").fetchall()
    except sqlite3.Error:
        return {}
    return {f"{kind} {status}": int(n) for kind, status, n in rows}


async def overload(label: str, root: Path, seconds: float, rate: float | None, keep: Path) -> Overload:
    """Start the bot of ``root``, measure its capacity, overload it at ``rate`` (3 x its capacity when
    None) for ``seconds``, time the drain, count what was lost."""
    out = Overload(label, root)
    with tempfile.TemporaryDirectory(prefix="bench-overload-") as name:
        tmp = Path(name)
        async with FakeBotAPI(bot_username=turns.BOT_NAME) as server:
            bot = turns.BotProcess(server, tmp, root)
            replies = Replies(server)
            try:
                await bot.ready()
                out.mode = bot.mode
                pid = bot.pid
                warm = server.learner(990_001)
                await warm.ask("/start", timeout=60)
                await turns.quiet(server, 0.5)

                # capacity: a burst of updates from many chats at once
                burst = Feed(server, 5_000_000, BURST_CHATS)
                began = time.time()
                for _ in range(BURST_CHATS * BURST_PER_CHAT):
                    burst.send()
                why = await wait_replied(replies, burst, bot, 300)
                if why:
                    raise RuntimeError(f"the capacity burst did not drain: {why}")
                out.capacity = burst.total / max(replies.last - began, 1e-3)
                out.rate = rate or LOAD_FACTOR * out.capacity
                await turns.quiet(server, 0.5)
                out.rss_start = rss_mb(pid)

                # overload: feed at out.rate for ``seconds``, sampling every 5 s until drained
                feed = Feed(server, 6_000_000, OVERLOAD_CHATS)
                cpu0 = turns.cpu_seconds(pid)
                t0 = time.monotonic()
                out.phases["overload"] = time.time()
                stop_sampling = asyncio.Event()

                async def sample() -> None:
                    while True:
                        replies.update()
                        unanswered = replies.missing(feed)
                        inbox, outbox = await asyncio.to_thread(lambda: (table_counts(bot.db, "inbox"),
                                                                         table_counts(bot.db, "outbox")))
                        out.samples.append(Sample(time.monotonic() - t0, rss_mb(pid), unanswered,
                                                  unfetched(server),
                                                  None if inbox is None else inbox.get("new", 0),
                                                  None if outbox is None else outbox.get("pending", 0)))
                        if stop_sampling.is_set():  # the last sample: drained (or given up)
                            return
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop_sampling.wait(), SAMPLE_SECONDS - (
                                (time.monotonic() - t0) % SAMPLE_SECONDS))

                sampler = asyncio.create_task(sample())
                while (elapsed := time.monotonic() - t0) < seconds and bot.proc.poll() is None:
                    for _ in range(int(out.rate * elapsed) - feed.total):
                        feed.send()
                    await asyncio.sleep(0.01)
                fed = time.time()
                out.phases["feeding stopped"] = fed
                out.feed_seconds = time.monotonic() - t0
                out.sent = feed.total
                replies.update()
                left = replies.missing(feed)
                limit = 3 * left / max(out.capacity, 1.0) + 120
                out.drain_note = await wait_replied(replies, feed, bot, limit)
                out.phases["drained" if not out.drain_note else "given up"] = time.time()
                if not out.drain_note:
                    out.drain = max(replies.last - fed, 0.0)
                stop_sampling.set()
                await sampler
                out.rss_end = rss_mb(pid)
                out.hwm = hwm_mb(pid)
                await turns.quiet(server, 1.0, 30)
                with contextlib.suppress(OSError):
                    out.cpu = turns.cpu_seconds(pid) - cpu0
                replies.update()
                for chat in feed.chats:
                    gap = feed.sent[chat] - replies.per_chat[chat]
                    out.lost += max(gap, 0)
                    out.lost_chats += gap > 0
                    out.extra += max(-gap, 0)
                out.refused = replies.refused
                out.received = sum(replies.per_chat[c] for c in feed.chats)
                out.inbox = table_counts(bot.db, "inbox")
                out.outbox = table_counts(bot.db, "outbox")
                out.outbox_kinds = outbox_kinds(bot.db)
            except (Exception, SystemExit) as exc:  # report it, do not fake figures
                out.error = f"{type(exc).__name__}: {exc}"
            finally:
                out.phases["SIGINT"] = time.time()
                out.exit_code = await bot.stop()
            log = bot.log_text()
        out.log = keep / f"bot-{'now' if root == HERE else 'before'}.log"
        out.log.write_text(log)
        out.log_notes = log_summary(log, out.phases)
    return out


STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (WARNING|ERROR|CRITICAL) (.*)$")


def log_summary(log: str, phases: dict[str, float]) -> list[str]:
    """The bot's warnings and errors by phase of the run (start-up, overload, feeding stopped, drained,
    SIGINT), each phase's commonest messages (digits as #), and its tracebacks' last lines."""
    marks = sorted(phases.items(), key=lambda kv: kv[1])
    by_phase: dict[str, Counter[str]] = {}
    last_phase = "start-up"
    lines = log.splitlines()
    for i, line in enumerate(lines):
        found = STAMP.match(line)
        if found:
            at = datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            last_phase = next((name for name, t in reversed(marks) if at >= t), "start-up")
            text = re.sub(r"\d+", "#", f"{found.group(2)} {found.group(3)}")[:170]
            by_phase.setdefault(last_phase, Counter())[text] += 1
        elif line.startswith("Traceback"):
            end = next((x for x in lines[i + 1:] if x and not x.startswith((" ", "Traceback", "The above",
                                                                               "During handling"))), "?")
            by_phase.setdefault(last_phase, Counter())["  traceback ending " + re.sub(r"\d+", "#", end)[:150]] += 1
    total = sum(sum(c.values()) for c in by_phase.values())
    out = [f"{total} warning/error records and tracebacks" + ("" if total else " (none)")]
    for name in ["start-up", *[n for n, _ in marks]]:
        counts = by_phase.get(name)
        if counts:
            out.append(f"after '{name}': {sum(counts.values())}, commonest:")
            out += [f"  {n} x {text}" for text, n in counts.most_common(4)]
    return out


def mb(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f} MB"


def overload_report(runs: list[Overload], seconds: float) -> list[str]:
    lines = []
    width = 34
    head = f"  {'':<34}" + "".join(f"{r.label:>{width}}" for r in runs)
    lines.append(head)

    def row(name: str, values: list[str]) -> None:
        lines.append(f"  {name:<34}" + "".join(f"{v:>{width}}" for v in values))

    row("capacity C (burst of 300 updates)", [f"{r.capacity:.1f} updates/s" for r in runs])
    row("offered load (updates/s x s = n)", [f"{r.rate:.1f} x {r.feed_seconds:.0f} = {r.sent}" for r in runs])
    row("offered load / own C", [f"{r.rate / r.capacity:.2f}" if r.capacity else "-" for r in runs])
    row("RSS at start", [mb(r.rss_start) for r in runs])
    row("RSS peak (of 5-s samples)", [mb(r.peak) for r in runs])
    row("RSS peak (VmHWM, whole life)", [mb(r.hwm) for r in runs])
    row("RSS at the end (drained)", [mb(r.rss_end) for r in runs])
    row("most updates unanswered", [str(max((s.unanswered for s in r.samples), default=0)) for r in runs])
    row("most waiting at the fake (unfetched)", [str(max((s.not_fetched for s in r.samples), default=0)) for r in runs])
    row("most 'pending' in the outbox", [str(max(v)) if (v := [s.outbox_pending for s in r.samples
                                                                if s.outbox_pending is not None]) else "no outbox"
                                         for r in runs])
    row("most 'new' in the inbox", [str(max(v)) if (v := [s.inbox_new for s in r.samples if s.inbox_new is not None])
                                    else "no inbox" for r in runs])
    row("drain (end of feeding -> last reply)", [f"{r.drain:.1f} s" if r.drain is not None else r.drain_note or "-"
                                                 for r in runs])
    row("replies received / updates sent", [f"{r.received} / {r.sent}" for r in runs])
    row("replies lost (per chat: sent - recv.)", [f"{r.lost} in {r.lost_chats} chats" for r in runs])
    row("extra replies / refused by the fake", [f"{r.extra} / {r.refused}" for r in runs])
    row("inbox rows by status", [", ".join(f"{k} {v}" for k, v in sorted(r.inbox.items())) if r.inbox is not None
                                 else "no inbox" for r in runs])
    row("outbox rows by status", [", ".join(f"{k} {v}" for k, v in sorted(r.outbox.items())) if r.outbox is not None
                                  else "no outbox" for r in runs])
    row("outbox rows not sent, by kind", [", ".join(f"{k} {v}" for k, v in sorted(r.outbox_kinds.items())) or "-"
                                          for r in runs])
    row("bot CPU, overload + drain", [f"{r.cpu:.0f} s ({r.cpu * 1000 / max(r.sent, 1):.1f} ms/update)" for r in runs])
    row("bot exit code after SIGINT", [str(r.exit_code) for r in runs])
    lines.append("")
    lines.append(f"  every {SAMPLE_SECONDS * 3:.0f} s from the start of the overload (feeding stops at "
                 f"{seconds:.0f} s): RSS MB / unanswered / unfetched (at the fake) / inbox 'new' / outbox 'pending'")
    longest = max((len(r.samples) for r in runs), default=0)
    lines.append(f"  {'t':>6}" + "".join(f"{r.label:>{width}}" for r in runs))
    def cell(sample: Sample, at: bool = False) -> str:
        inbox = "-" if sample.inbox_new is None else str(sample.inbox_new)
        outbox = "-" if sample.outbox_pending is None else str(sample.outbox_pending)
        rss = "-" if sample.rss is None else f"{sample.rss:.0f}"
        return ((f"t={sample.t:.0f}s: " if at else "")
                + f"{rss} / {sample.unanswered} / {sample.not_fetched} / {inbox} / {outbox}")

    for i in range(0, longest, 3):
        cells = [cell(r.samples[i]) if i < len(r.samples) else "" for r in runs]
        lines.append(f"  {i * SAMPLE_SECONDS:>5.0f}s" + "".join(f"{c:>{width}}" for c in cells))
    lines.append(f"  {'last':>6}" + "".join(f"{cell(r.samples[-1], True) if r.samples else '':>{width}}"
                                           for r in runs))
    for r in runs:
        lines.append("")
        if r.error:
            lines.append(f"  {r.label}: the run failed: {r.error}")
        marks = ", ".join(f"{name} +{t - r.phases.get('overload', t):.0f} s" for name, t in
                          sorted(r.phases.items(), key=lambda kv: kv[1]) if name != "overload")
        lines.append(f"  {r.label}: bot log {r.log} (kept); phases from the overload's start: {marks}")
        lines.append(f"    {r.log_notes[0]}")
        for note in r.log_notes[1:]:
            lines.append(f"    {note}")
    return lines


# ------------------------------------------------------------------------------------------ the run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--learners", type=int, default=20, help="learners of bench/turns.py")
    parser.add_argument("--overload-seconds", type=float, default=120, help="how long updates are fed at 3 x C")
    parser.add_argument("--before", default=BEFORE, help="the commit to compare with (default %(default)s)")
    parser.add_argument("--skip-turns", action="store_true", help="only the overload part")
    args = parser.parse_args()
    started = time.monotonic()
    before_sha = git("rev-parse", "--short", args.before)

    for line in machine() + code_state(before_sha):
        say(line)
    say(f"measured: (1) bench/turns.py --learners {args.learners} (this tree's file) against before, then now; "
        f"(2) capacity C with a burst of {BURST_CHATS * BURST_PER_CHAT} updates from {BURST_CHATS} chats, then "
        f"{args.overload_seconds:.0f} s of updates at {LOAD_FACTOR:g} x C(now) from {OVERLOAD_CHATS} chats "
        f"(nobody waits for replies), the drain, lost replies: now, then before. Each bot: its own process, no "
        f"sandbox, SQLite in a temp dir, the fake Bot API on loopback in this process. One run: ratios, not "
        f"absolute truths.")
    say()

    with tempfile.TemporaryDirectory(prefix="bench-durability-") as name:
        tree = Path(name) / "before"
        git("worktree", "add", "--detach", str(tree), before_sha)
        try:
            if not args.skip_turns:
                say(f"== 1. the cost of durability: bench/turns.py --learners {args.learners}")
                runs = []
                for label, root in (("before", tree), ("now", HERE)):
                    say(f"-- {label}: {root}")
                    run = run_turns(label, root, args.learners)
                    for line in run.output.rstrip().splitlines():
                        say(f"   {line}")
                    if run.error:
                        say(f"   !! {run.error}")
                    say(f"   ({run.seconds:.0f} s)")
                    runs.append(run)
                say()
                say(f"  bench/turns.py --learners {args.learners}, before ({before_sha}, run_polling) vs now "
                    "(durable runtime):")
                for line in turns_table(*runs):
                    say(line)
                say()

            say(f"== 2. overload: {LOAD_FACTOR:g} x capacity for {args.overload_seconds:.0f} s, then the drain")
            results: list[Overload] = []
            rate = None
            keep = Path(tempfile.mkdtemp(prefix="bench-durability-logs-"))
            for label, root in (("now", HERE), (f"before ({before_sha})", tree)):
                say(f"-- {label}: running ...")
                result = asyncio.run(overload(label, root, args.overload_seconds, rate, keep))
                say(f"   {result.mode}; C {result.capacity:.1f}/s; fed {result.sent} at {result.rate:.1f}/s; "
                    f"drain {result.drain if result.drain is None else round(result.drain, 1)} s"
                    + (f"; FAILED: {result.error}" if result.error else ""))
                if rate is None and result.capacity:
                    rate = LOAD_FACTOR * result.capacity  # the same offered load for the other tree
                results.append(result)
            say()
            for line in overload_report(results, args.overload_seconds):
                say(line)
        finally:
            with contextlib.suppress(subprocess.CalledProcessError):
                git("worktree", "remove", "--force", str(tree))
    say()
    say(f"total {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()

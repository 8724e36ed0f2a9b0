"""A tighter net (issue 11): behaviour a learner or an operator would notice, that hand-made mutations of
the code changed without any test noticing. Driven through the public entry points only (the engine's
``step``, the tutor service, the sandbox, the bubblewrap command line), so that these survive a redesign
of the core.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.content import load_course
from bot.sandbox import Sandbox, SandboxConfig
from bot.sandbox.launch import bwrap_command, bwrap_launch
from bot.service import Tutor
from bot.storage import Repository
from dialogs import cards
from dialogs.course import Course
from dialogs.messages import Command, Event, LogAnswer, Press, Say, Start, Text
from tests.support.driver import FIXTURES, NOW, Driver, Inbox, mini_course

# ------------------------------------------------------------------------------------------- helpers


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    r = Repository(f"sqlite:///{tmp_path / 'tutor.db'}")
    yield r
    r.close()


def course_predicting(tmp_path: Path, answer: str) -> Course:
    """The mini course, with its "what does this print?" step printing ``answer``."""
    root = tmp_path / "course"
    shutil.copytree(FIXTURES / "mini", root)
    section = root / "sections" / "one.yaml"
    text = section.read_text(encoding="utf-8")
    old = 'answer: "tensor([4.])"'
    assert text.count(old) == 1, "the mini course's predict step changed: update this helper"
    section.write_text(text.replace(old, f"answer: {json.dumps(answer)}"), encoding="utf-8")
    return load_course(root)


def predict(course: Course, typed: str) -> tuple[Driver, LogAnswer]:
    """Type ``typed`` for the course's "what does this print?" step; the driver and the answer logged."""
    d = Driver(course)
    d.go_to("m1.one.predict")
    assert d.state.phase == "question"
    d.send(typed)
    logged = d.effects(LogAnswer)
    assert len(logged) == 1, f"{typed!r} was not graded: {d.text()}"
    return d, logged[0]  # type: ignore[return-value]


def step_at(d: Driver, when: datetime, event: Event) -> None:
    turn = d.engine.step(d.state, event, when)
    d.state = turn.state
    d.turns.append(turn)


def assert_graded(d: Driver, log: LogAnswer, typed: str, right: bool) -> None:
    assert log.correct is right, f"{typed!r} graded {log.verdict}"
    if right:
        assert log.verdict == "right"
        assert d.state.phase == "section_end", "a right answer moves on"
    else:
        assert log.verdict == "wrong"
        assert d.state.step == "m1.one.predict" and d.state.phase == "retry", "a wrong answer stays for a retry"
        assert "Think about accumulation." in d.text()  # the step's nudge, not the praise


# ---------------------------------------------------------------- 1. number tolerance for predictions


@pytest.mark.parametrize(("typed", "right"),
                         [("6.05", False), ("5.95", False), ("6", True), ("6.0", True), ("tensor([6.0])", True),
                          ("tensor([6.])", True)])
def test_predicted_number_must_be_the_printed_one(tmp_path: Path, typed: str, right: bool) -> None:
    course = course_predicting(tmp_path, "tensor([6.])")
    d, log = predict(course, typed)
    assert_graded(d, log, typed, right)


# ---------------------------------------------------------------- 2. an extra wrong option is wrong


def test_multi_choice_with_an_extra_wrong_option_is_not_right() -> None:
    d = Driver(mini_course())
    d.go_to("m1.one.multi")  # right answers: A and C
    d.send("abc")
    [log] = d.effects(LogAnswer)
    assert not log.correct and log.verdict != "right"  # type: ignore[attr-defined]
    assert d.state.step == "m1.one.multi" and d.state.phase == "retry"
    assert "doesn't belong" in d.text()
    assert "❌ **B.** A result of an op." in d.text()


def test_multi_choice_buttons_with_an_extra_wrong_option_are_not_right() -> None:
    d = Driver(mini_course())
    d.go_to("m1.one.multi")
    for i in ("0", "1", "2"):
        d.press("toggle", i)
    d.press("submit")
    [log] = d.effects(LogAnswer)
    assert not log.correct  # type: ignore[attr-defined]
    assert d.state.step == "m1.one.multi" and d.state.phase == "retry"


# ------------------------------------------------- 3. a keyboard one version old is stale, the current one is not


async def test_keyboard_one_version_old_is_stale_and_the_current_one_is_graded(repo: Repository) -> None:
    t, inbox = Tutor(mini_course(), repo, None, clock=lambda: NOW), Inbox()
    for text in ("hi", "go", "go"):
        await t.handle("u1", Text(text), inbox)
    first = repo.load("u1")
    assert first is not None and first.step == "m1.one.single" and first.phase == "question"
    await t.handle("u1", Start(), inbox)  # "welcome back": the question is sent again, with a new keyboard
    current = repo.load("u1")
    assert current is not None and current.step == "m1.one.single"
    old_seq = first.seq
    assert current.seq == old_seq + 1, "precondition: the old keyboard is exactly one version old"
    asked = [r for r in inbox.replies if isinstance(r, Say) and r.buttons]
    assert asked[-1].seq == current.seq

    inbox.replies.clear()
    await t.handle("u1", Press("pick", "1", old_seq), inbox)  # B, the right answer, on the old keyboard
    assert "behind us" in inbox.text()
    assert repo.load("u1") == current
    assert repo.answers("u1") == []

    inbox.replies.clear()
    await t.handle("u1", Press("pick", "1", current.seq), inbox)
    assert "behind us" not in inbox.text() and "2x at 3 is 6." in inbox.text()
    assert [(a.step, a.answer, a.correct) for a in repo.answers("u1")] == [("m1.one.single", "B", True)]
    assert repo.load("u1").step == "m1.one.multi"  # type: ignore[union-attr]


# ------------------------------------------------------- 4. new cards are due at the learner's local midnight


def test_new_cards_are_due_at_the_learners_local_midnight() -> None:
    d = Driver(mini_course())
    d.start()
    d.command("settings", "tz Asia/Shanghai")
    d.go_to("m1.one.predict")
    d.send("4")  # NOW is 12:00 UTC, 20:00 in Shanghai: the section is finished
    assert d.state.phase == "section_end"
    midnight = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)  # 2026-11-26 00:00 in Shanghai
    assert cards.next_due(d.state.deck) == midnight
    assert cards.due_cards(d.state.deck, midnight - timedelta(minutes=1)) == []

    step_at(d, midnight - timedelta(minutes=1), Command("cards"))
    assert "Nothing due right now" in d.text() and "2026-11-26 00:00 (Asia/Shanghai)" in d.text()
    step_at(d, midnight, Command("cards"))
    assert "2 to review now" in d.text() and "Where does the gradient go?" in d.text()
    assert d.state.mode == "cards"


# ------------------------------------------------------------------ 5. a push up to an hour late is sent


async def test_push_59_minutes_late_is_sent_61_minutes_late_is_skipped(repo: Repository) -> None:
    clock = Clock(NOW)  # 12:00 UTC
    t = Tutor(mini_course(), repo, None, clock=clock)
    inboxes = {1: Inbox(), 2: Inbox()}
    for chat, inbox in inboxes.items():
        await t.handle(f"tg:{chat}", Text("hi"), inbox, chat_id=chat)
    await t.handle("tg:2", Command("settings", "time 18:58"), inboxes[2], chat_id=2)
    assert repo.learner("tg:1").push_due == datetime(2026, 11, 25, 19, 0, tzinfo=UTC)  # type: ignore[union-attr]
    assert repo.learner("tg:2").push_due == datetime(2026, 11, 25, 18, 58, tzinfo=UTC)  # type: ignore[union-attr]
    before = {chat: len(inbox.replies) for chat, inbox in inboxes.items()}

    clock.now = datetime(2026, 11, 25, 19, 59, tzinfo=UTC)  # tg:1 is 59 minutes late, tg:2 61 minutes
    await t.push(lambda chat: inboxes[chat])
    assert "Today's teaser" in inboxes[1].text()
    assert len(inboxes[2].replies) == before[2], "a push more than an hour late is skipped, not sent late"
    assert repo.learner("tg:1").push_due == datetime(2026, 11, 26, 19, 0, tzinfo=UTC)  # type: ignore[union-attr]
    assert repo.learner("tg:2").push_due == datetime(2026, 11, 26, 18, 58, tzinfo=UTC)  # type: ignore[union-attr]


# ------------------------------------------------------------ 6. printing too much is the output-limit verdict


@pytest.mark.slow
@pytest.mark.parametrize("program", ["print('x' * 100_000)\n",
                                     "for i in range(2000):\n    print('y' * 49)\n"],
                         ids=["one-print", "many-prints"])
async def test_printing_100_kb_is_the_output_limit_not_ok(program: str) -> None:
    config = SandboxConfig(workers=1, wall_seconds=5.0)
    assert config.output_bytes == 64 * 1024  # the default budget
    async with Sandbox(config) as sandbox:
        outcome = await sandbox.evaluate(program, [])
    assert outcome.status == "output_limit", outcome.status
    assert not outcome.passed
    assert len(outcome.stdout.encode()) <= config.output_bytes + 100


# ------------------------------------------------------------------ 7. /reset keeps every setting


def test_reset_keeps_the_learners_settings() -> None:
    d = Driver(mini_course())
    d.go_to("m1.one.multi")
    d.command("settings", "tz Asia/Shanghai")
    d.command("settings", "time 08:30")
    d.command("settings", "max 30")
    d.command("settings", "pause")
    d.command("lang", "zh")
    kept = (d.state.tz, d.state.push_time, d.state.paused, d.state.daily_max, d.state.lang)
    assert kept == ("Asia/Shanghai", "08:30", True, 30, "zh")
    assert d.state.push_due is None

    d.command("reset")
    d.press("reset", "yes")
    assert d.state.phase == "map" and d.state.step is None  # the course starts over
    assert "课程地图" in d.text()  # still in Chinese
    assert (d.state.tz, d.state.push_time, d.state.paused, d.state.daily_max, d.state.lang) == kept
    assert d.state.lang_chosen
    assert d.state.push_due is None  # still paused: no push planned

    d.command("settings")
    text = d.text()
    assert "08:30" in text and "Asia/Shanghai" in text and "已暂停" in text and "30" in text


# --------------------------------------------------- 8. a prediction without requires_grad/grad_fn matches


@pytest.mark.parametrize("printed",
                         ["tensor([2., 4.], requires_grad=True)", "tensor([2., 4.], grad_fn=<MulBackward0>)"])
@pytest.mark.parametrize(("typed", "right"), [("tensor([2., 4.])", True), ("tensor([2., 5.])", False)])
def test_prediction_ignores_requires_grad_and_grad_fn(tmp_path: Path, printed: str, typed: str, right: bool) -> None:
    course = course_predicting(tmp_path, printed)
    d, log = predict(course, typed)
    assert_graded(d, log, typed, right)


# ------------------------------------------------------- 9. the sandbox's environment is built from scratch

FAKE_TOKEN = "123456789:AAFakeTokenForTheNetTest_do_not_leak"


def _setenv_pairs(argv: Sequence[str]) -> list[tuple[str, str]]:
    return [(argv[i + 1], argv[i + 2]) for i, arg in enumerate(argv) if arg == "--setenv"]


def test_bwrap_command_clears_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    clean, _ = bwrap_command("/usr/bin/bwrap", 64)

    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", FAKE_TOKEN)
    monkeypatch.setenv("DATABASE_URL", "sqlite:////secret/tutor.db")
    monkeypatch.setenv("HOME", "/home/bot-owner")
    monkeypatch.setenv("PATH", "/opt/bot/bin:/usr/bin")
    args, _ = bwrap_command("/usr/bin/bwrap", 64)

    assert args[-1] == "--"
    assert "--clearenv" in args
    settings = [i for i, arg in enumerate(args) if arg == "--setenv"]
    assert args.index("--clearenv") < min(settings, default=len(args)), "cleared before anything is set"
    pairs = _setenv_pairs(args)
    assert "TELEGRAM_BOT_TOKEN" not in {k for k, _ in pairs}
    assert not any(FAKE_TOKEN in arg or "/secret/" in arg for arg in args)
    assert pairs == _setenv_pairs(clean), "the sandbox's variables do not depend on the bot's environment"
    assert ("HOME", "/home/bot-owner") not in pairs and ("PATH", "/opt/bot/bin:/usr/bin") not in pairs

    launch = bwrap_launch("/usr/bin/bwrap", 64, uid=12345)
    assert "--clearenv" in launch.argv[: launch.argv.index("--")]
    assert not any(FAKE_TOKEN in arg for arg in launch.argv)
    assert "TELEGRAM_BOT_TOKEN" not in launch.env and FAKE_TOKEN not in launch.env.values()

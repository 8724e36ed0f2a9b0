"""The tutor service over a real database, SQLite and PostgreSQL (``db_url``): atomic turns, idempotent
updates, code evaluation flow."""

import asyncio
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from bot.service import Tutor
from bot.storage import Repository
from dialogs.evaluation import CheckResult, CheckSpec, EvalOutcome
from dialogs.messages import Command, Start, Text
from dialogs.state import LearnerState
from tests.support.driver import NOW, Inbox, mini_course


class ScriptedEvaluator:
    """Answers every submission with the next scripted outcome (the real sandbox has its own tests)."""

    def __init__(self, *outcomes: EvalOutcome, delay: float = 0.0) -> None:
        self.outcomes = list(outcomes)
        self.seen: list[tuple[str, tuple[CheckSpec, ...]]] = []
        self.delay = delay

    async def evaluate(self, code: str, checks: Sequence[CheckSpec]) -> EvalOutcome:
        self.seen.append((code, tuple(checks)))
        await asyncio.sleep(self.delay)
        return self.outcomes.pop(0)

    def is_saturated(self) -> bool:
        return False


@pytest.fixture
def repo(db_url: str) -> Iterator[Repository]:
    r = Repository(db_url)
    yield r
    r.close()


def tutor(repo: Repository, evaluator: ScriptedEvaluator | None = None) -> Tutor:
    return Tutor(mini_course(), repo, evaluator, clock=lambda: NOW)


async def test_state_and_answer_log_persist(repo: Repository) -> None:
    t, inbox = tutor(repo), Inbox()
    for text in ("hi", "go", "go", "a", "b"):
        await t.handle("u1", Text(text), inbox)
    state = repo.load("u1")
    assert state is not None and state.step == "m1.one.multi"
    log = repo.answers("u1")
    assert [(a.step, a.answer, a.verdict, a.correct) for a in log] == [
        ("m1.one.single", "A", "wrong", False), ("m1.one.single", "B", "right", True)]
    assert log[0].tags == "backward" and log[0].section == "m1.one"
    # a new service (a restart) continues from the database
    inbox2 = Inbox()
    await tutor(repo).handle("u1", Start(), inbox2)
    assert "Welcome back" in inbox2.text() and "Which are leaves?" in inbox2.text()


async def test_redelivered_update_is_applied_once(repo: Repository) -> None:
    t, inbox = tutor(repo), Inbox()
    await t.handle("u1", Text("hi"), inbox, update_id=1)
    await t.handle("u1", Text("go"), inbox, update_id=2)
    seq = repo.load("u1").seq  # type: ignore[union-attr]
    n = len(inbox.replies)
    await tutor(repo).handle("u1", Text("go"), inbox, update_id=2)
    assert repo.load("u1").seq == seq  # type: ignore[union-attr]
    assert len(inbox.replies) == n


async def test_language_hint_applies_to_new_learners_only(repo: Repository) -> None:
    t, inbox = tutor(repo), Inbox()
    await t.handle("zh-user", Start(), inbox, lang_hint="zh")
    assert "课程地图" in inbox.text()
    await t.handle("zh-user", Command("lang", "en"), inbox)
    await t.handle("zh-user", Text("go"), inbox, lang_hint="zh")
    assert repo.load("zh-user").lang == "en"  # type: ignore[union-attr]


async def _to_code_step(t: Tutor, inbox: Inbox) -> None:
    for text in ("hi", "go", "go", "b", "ac", "T F T", "4", "go"):
        await t.handle("u1", Text(text), inbox)
    assert t.expects_code("u1")


async def test_code_submission_is_evaluated_and_fed_back(repo: Repository) -> None:
    ev = ScriptedEvaluator(EvalOutcome("ok", (CheckResult("value", False, "square(3) is 6, expected 9"),)),
                           EvalOutcome("ok", (CheckResult("value", True),)))
    t, inbox = tutor(repo, ev), Inbox()
    await _to_code_step(t, inbox)
    await t.handle("u1", Text("def square(t):\n    return t + t"), inbox)
    assert ev.seen[0][0] == "def square(t):\n    return t + t"
    assert "square(3) is 6, expected 9" in inbox.text()
    assert repo.load("u1").phase == "retry"  # type: ignore[union-attr]
    await t.handle("u1", Text("def square(t):\n    return t * t"), inbox)
    assert "Squared!" in inbox.text()
    assert repo.load("u1").step == "m1.two.end"  # type: ignore[union-attr]
    assert [a.verdict for a in repo.answers("u1")][-2:] == ["wrong", "right"]


async def test_no_sandbox_is_answered_kindly(repo: Repository) -> None:
    t, inbox = tutor(repo, None), Inbox()
    await _to_code_step(t, inbox)
    await t.handle("u1", Text("x = 1"), inbox)
    assert "our fault" in inbox.text()
    assert repo.load("u1").phase == "question"  # type: ignore[union-attr]


async def test_learner_can_talk_while_code_runs(repo: Repository) -> None:
    gate = asyncio.Event()

    class Held(ScriptedEvaluator):
        async def evaluate(self, code: str, checks: Sequence[CheckSpec]) -> EvalOutcome:
            self.seen.append((code, tuple(checks)))
            await gate.wait()  # the run is held until /help has been answered: no timing involved
            return self.outcomes.pop(0)

    ev = Held(EvalOutcome("ok", (CheckResult("value", True),)))
    t, inbox = tutor(repo, ev), Inbox()
    await _to_code_step(t, inbox)
    running = asyncio.create_task(t.handle("u1", Text("def square(t): return t*t"), inbox))
    while not ev.seen:
        await asyncio.sleep(0.005)
    await t.handle("u1", Command("help"), inbox)
    assert "What I understand" in inbox.text() and not running.done()
    gate.set()
    await running
    assert "Squared!" in inbox.text()


async def test_evaluation_lost_in_a_restart_is_recovered(repo: Repository) -> None:
    t, inbox = tutor(repo), Inbox()
    await _to_code_step(t, inbox)
    state = repo.load("u1")
    assert state is not None
    stuck = state.but(phase="evaluating", pending="m1.two.square#1", evals=1)
    repo.save_turn("u1", stuck, (), NOW)
    inbox2 = Inbox()
    await tutor(repo).handle("u1", Text("hello?"), inbox2)  # a fresh process: nothing in flight
    assert "send your code again" in inbox2.text()
    assert repo.load("u1").phase == "question"  # type: ignore[union-attr]


async def test_one_learner_is_served_in_order(repo: Repository) -> None:
    t, inbox = tutor(repo), Inbox()
    await asyncio.gather(*(t.handle("u1", Text(x), inbox) for x in ("hi", "go", "go", "b")))
    assert repo.load("u1").step == "m1.one.multi"  # type: ignore[union-attr]


async def test_outbox_anchors_polls_and_repository_active(repo: Repository) -> None:
    from bot.telegram.outbox import Outbox

    repo.save_turn("u9", LearnerState(), (), NOW, chat_id=9)
    outbox = Outbox(repo)
    await outbox.remember_anchor("u9", "q:x", 41)
    await outbox.remember_anchor("u9", "q:x", 42)
    assert await outbox.anchor("u9", "q:x") == 42 and await outbox.anchor("u9", "q:y") is None
    await outbox.remember_poll("p1", "u9", 9, 3)
    ref = await Outbox(repo).poll("p1")
    assert ref is not None and (ref.learner_id, ref.chat_id, ref.seq) == ("u9", 9, 3)
    assert await outbox.poll("p2") is None
    repo.set_active("u9", False)
    assert repo.learner("u9").active is False  # type: ignore[union-attr]
    repo.save_turn("u9", LearnerState(), (), NOW, chat_id=9)
    assert repo.learner("u9").active is True  # type: ignore[union-attr]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def test_daily_push_goes_to_due_learners_only(repo: Repository) -> None:
    clock = Clock(NOW)  # 12:00 UTC
    t = Tutor(mini_course(), repo, None, clock=clock)
    inboxes: dict[int, Inbox] = {1: Inbox(), 2: Inbox(), 3: Inbox()}
    for chat in inboxes:
        await t.handle(f"tg:{chat}", Text("hi"), inboxes[chat], chat_id=chat)
        await t.handle(f"tg:{chat}", Text("go"), inboxes[chat], chat_id=chat)
    await t.handle("tg:2", Command("settings", "time 21:00"), inboxes[2], chat_id=2)
    await t.handle("tg:3", Command("settings", "pause"), inboxes[3], chat_id=3)
    await t.handle("console:local", Text("hi"), Inbox())  # no chat: never pushed

    def sender(chat: int):
        return inboxes[chat]

    clock.now = NOW.replace(hour=18, minute=59)
    assert await t.push(sender) == 0
    clock.now = NOW.replace(hour=19, minute=0)
    before = {c: len(i.replies) for c, i in inboxes.items()}
    assert await t.push(sender) == 1
    assert "Today's teaser" in inboxes[1].text()
    assert len(inboxes[2].replies) == before[2] and len(inboxes[3].replies) == before[3]
    assert await t.push(sender) == 0  # not twice the same day
    clock.now = NOW.replace(hour=21, minute=0)
    assert await t.push(sender) == 1 and "Today's teaser" in inboxes[2].text()
    assert await t.push(sender, force=True, chats=[3]) == 1  # an operator may force one


async def test_push_missed_while_down_is_skipped_not_sent(repo: Repository) -> None:
    clock = Clock(NOW)
    t, inbox = Tutor(mini_course(), repo, None, clock=clock), Inbox()
    await t.handle("tg:7", Text("hi"), inbox, chat_id=7)
    n = len(inbox.replies)
    clock.now = NOW + timedelta(hours=11)  # 23:00: the 19:00 push was missed by 4 hours
    assert await t.push(lambda chat: inbox) == 1
    assert len(inbox.replies) == n
    assert repo.learner("tg:7").push_due == datetime(2026, 11, 26, 19, 0, tzinfo=UTC)  # type: ignore[union-attr]

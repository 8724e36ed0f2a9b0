"""Fairness in the sandbox: one run per learner, a bounded queue, and nobody else waits on a hog.

The service tests use an evaluator held shut by an event (no timing: a reply that arrives while the
gate is closed proves it did not wait for the run); the last test uses the real sandbox.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from bot.sandbox import Sandbox, SandboxConfig
from bot.service import Tutor
from bot.storage import Repository
from dialogs.evaluation import CheckResult, CheckSpec, EvalOutcome
from dialogs.messages import Command, Text
from tests.support.driver import NOW, Inbox, mini_course

GRAPH = {"root": {"name": "y", "shape": [1], "dtype": "float32", "requires_grad": True},
         "nodes": [{"id": 0, "kind": "backward", "name": "MulBackward0", "saved": []}],
         "edges": [], "truncated": False, "total": 1}


class GatedEvaluator:
    """Every run waits until ``gate`` is set; counts what is running."""

    def __init__(self, saturated: bool = False) -> None:
        self.gate = asyncio.Event()
        self.running = 0
        self.started = 0
        self.saturated = saturated

    async def _run(self) -> None:
        self.running += 1
        self.started += 1
        try:
            await self.gate.wait()
        finally:
            self.running -= 1

    async def evaluate(self, code: str, checks: Sequence[CheckSpec]) -> EvalOutcome:
        await self._run()
        return EvalOutcome("ok", tuple(CheckResult(c.id, True) for c in checks))

    async def graph(self, code: str, target: str | None = None) -> EvalOutcome:
        await self._run()
        return EvalOutcome("ok", extra={"graph": GRAPH})

    def is_saturated(self) -> bool:
        return self.saturated


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    r = Repository(f"sqlite:///{tmp_path / 'tutor.db'}")
    yield r
    r.close()


async def until(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    for _ in range(12000):  # a minute at most, however slow the machine
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never happened: {what}")


BUSY_LEARNER = "One run at a time"


async def test_one_run_per_learner_and_others_are_not_held_up(repo: Repository) -> None:
    ev = GatedEvaluator()
    t = Tutor(mini_course(), repo, ev, clock=lambda: NOW)
    hog, other = Inbox(), Inbox()
    await t.handle("u1", Text("hi"), hog)
    first = asyncio.create_task(t.handle("u1", Command("graph", "y = torch.ones(1, requires_grad=True) * 2"), hog))
    await until(lambda: ev.running == 1, "the first graph runs")
    # eleven more from the same learner, all at once: refused at once, none reaches the sandbox
    await asyncio.gather(*(t.handle("u1", Command("graph", f"y = torch.ones({i}) * 2"), hog) for i in range(11)))
    assert ev.started == 1
    assert hog.text().count(BUSY_LEARNER) == 11
    # another learner's graph runs beside it, and their /help is answered while both runs are held
    second = asyncio.create_task(t.handle("u2", Command("graph", "y = torch.ones(1) * 3"), other))
    await until(lambda: ev.running == 2, "the other learner's graph runs too")
    await t.handle("u2", Command("help"), other)
    await t.handle("u1", Command("help"), hog)
    assert "What I understand" in other.text() and "What I understand" in hog.text()
    assert not first.done() and not second.done()
    ev.gate.set()
    await asyncio.gather(first, second)
    assert hog.graphs() == 1 and other.graphs() == 1
    # once the run is over, the learner may run again
    again = Inbox()
    await t.handle("u1", Command("graph", "y = torch.ones(1) * 4"), again)
    assert again.graphs() == 1 and BUSY_LEARNER not in again.text()


async def _to_code_step(t: Tutor, inbox: Inbox) -> None:
    for text in ("hi", "go", "go", "b", "ac", "T F T", "4", "go"):
        await t.handle("u1", Text(text), inbox)
    assert t.expects_code("u1")


async def test_code_sent_while_a_graph_runs_is_refused_without_costing_an_attempt(repo: Repository) -> None:
    ev = GatedEvaluator()
    t, inbox = Tutor(mini_course(), repo, ev, clock=lambda: NOW), Inbox()
    await _to_code_step(t, inbox)
    answers_before = len(repo.answers("u1"))
    graph = asyncio.create_task(t.handle("u1", Command("graph", "y = torch.ones(1) * 2"), inbox))
    await until(lambda: ev.running == 1, "the graph runs")
    await t.handle("u1", Text("def square(t):\n    return t * t"), inbox)
    assert BUSY_LEARNER in inbox.text()
    state = repo.load("u1")
    assert state is not None and state.phase == "question" and state.attempts == 0 and state.pending is None
    assert len(repo.answers("u1")) == answers_before  # not graded, not logged
    ev.gate.set()
    await graph
    await t.handle("u1", Text("def square(t):\n    return t * t"), inbox)
    assert "Squared!" in inbox.text()


async def test_a_queued_run_is_announced_for_graphs_too(repo: Repository) -> None:
    ev = GatedEvaluator(saturated=True)
    ev.gate.set()
    t, inbox = Tutor(mini_course(), repo, ev, clock=lambda: NOW), Inbox()
    await t.handle("u1", Text("hi"), inbox)
    await t.handle("u1", Command("graph", "y = torch.ones(1) * 2"), inbox)
    assert "queued" in inbox.text()
    assert inbox.graphs() == 1


async def test_a_full_sandbox_queue_is_answered_busy_in_both_languages(repo: Repository) -> None:
    class Full(GatedEvaluator):
        async def graph(self, code: str, target: str | None = None) -> EvalOutcome:
            return EvalOutcome("busy", error="10 submissions are already waiting", extra={"busy": "queue"})

    t = Tutor(mini_course(), repo, Full(), clock=lambda: NOW)
    en, zh = Inbox(), Inbox()
    await t.handle("u1", Text("hi"), en)
    await t.handle("u1", Command("graph", "y = torch.ones(1) * 2"), en)
    assert "swamped" in en.text()
    await t.handle("u2", Text("hi"), zh, lang_hint="zh")
    await t.handle("u2", Command("graph", "y = torch.ones(1) * 2"), zh)
    assert "太忙" in zh.text()


@pytest.mark.slow
async def test_a_learners_runaway_graphs_do_not_stall_another_learner(repo: Repository) -> None:
    """The real sandbox: twelve endless /graph from one learner, and another learner's /graph is drawn
    while the first learner's one run is still going."""
    async with Sandbox(SandboxConfig(workers=2, wall_seconds=3.0)) as sandbox:
        t = Tutor(mini_course(), repo, sandbox, clock=lambda: NOW)
        hog, other = Inbox(), Inbox()
        await t.handle("u1", Text("hi"), hog)
        await t.handle("u2", Text("hi"), other)
        runaway = [asyncio.create_task(t.handle("u1", Command("graph", "while True:\n    pass"), hog))
                   for _ in range(12)]
        await until(lambda: hog.text().count(BUSY_LEARNER) == 11, "eleven of the twelve are refused")
        await t.handle("u2", Command("graph", "x = torch.ones(3, requires_grad=True)\ny = (x * 2).sum()"), other)
        assert other.graphs() == 1
        assert not all(task.done() for task in runaway)  # the one runaway run was still going meanwhile
        await asyncio.gather(*runaway)
        assert "ran for more than" in hog.text() or "ran out of time" in hog.text()

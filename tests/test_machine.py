"""The learner's state machine: the moves a turn may make, declared in dialogs/machine.py."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dialogs.engine import Engine
from dialogs.machine import InvalidTransition, allowed, check
from dialogs.messages import Command, Text
from dialogs.state import LearnerState
from tests.support.driver import mini_course

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(("before", "after"), [
    (("course", "new"), ("course", "map")),
    (("course", "map"), ("course", "explain")),
    (("course", "explain"), ("course", "question")),
    (("course", "question"), ("course", "retry")),
    (("course", "question"), ("course", "evaluating")),
    (("course", "evaluating"), ("course", "retry")),
    (("course", "retry"), ("course", "section_end")),
    (("course", "section_end"), ("course", "done")),
    (("course", "done"), ("course", "map")),  # /reset
    (("course", "explain"), ("quiz", "question")),
    (("quiz", "retry"), ("course", "explain")),  # the quiz ends: back to the lesson
    (("course", "retry"), ("cards", "retry")),
    (("course", "done"), ("course", "explain")),  # /goto, /redo, /back: a finished course can be revisited
    (("course", "new"), ("course", "question")),  # "/goto 3A" as the first message: greeted, then there
])
def test_moves_the_tutor_makes_are_allowed(before: tuple[str, str], after: tuple[str, str]) -> None:
    assert allowed(before, after)


@pytest.mark.parametrize(("before", "after"), [
    (("course", "explain"), ("course", "done")),  # the course ends only from the map or a section's end
    (("course", "map"), ("course", "new")),
    (("course", "explain"), ("quiz", "explain")),  # a quiz shows questions only
    (("course", "question"), ("cards", "explain")),  # a review keeps the course's phase aside
    (("course", "map"), ("course", "lost")),
])
def test_moves_the_machine_refuses(before: tuple[str, str], after: tuple[str, str]) -> None:
    assert not allowed(before, after)


def test_a_phase_needs_what_it_shows() -> None:
    with pytest.raises(InvalidTransition, match="without a step"):
        check(LearnerState(phase="map"), LearnerState(phase="explain"))
    with pytest.raises(InvalidTransition, match="pending"):
        check(LearnerState(phase="question", section="s", step="q"),
              LearnerState(phase="evaluating", section="s", step="q"))


def test_the_engine_checks_every_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    """A handler that makes an illegal move is stopped before its state could be stored."""
    from dialogs import engine as engine_module

    engine = Engine(mini_course())
    state = engine.step(LearnerState(), Text("hi"), NOW).state
    assert state.phase == "map"
    monkeypatch.setitem(engine_module.COMMANDS, "help", lambda self, s, args, out: s.moved(phase="new"))
    with pytest.raises(InvalidTransition, match="map -> course/new"):
        engine.step(state, Command("help"), NOW)
    monkeypatch.undo()
    assert engine.step(state, Command("help"), NOW).state.phase == "map"

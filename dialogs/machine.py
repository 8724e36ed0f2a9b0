"""The learner's states and the moves between them, declared in one place and checked after every turn.

A learner is in a *mode* (the course, a flashcard review, a quiz) and, within it, a *phase*. Each turn
may move them; ``check(before, after)`` refuses a move this table does not allow (a bug of ours: the
shell logs it and apologises, the learner's state is not saved).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dialogs.state import LearnerState

PHASES = ("new", "map", "explain", "question", "retry", "evaluating", "section_end", "done")
MODES = ("course", "cards", "quiz")

#: Where a step is on screen: the phases in which the learner is at a step of a section.
AT_A_STEP = frozenset({"explain", "question", "retry", "evaluating"})
#: What a step may lead to: the next step of any kind, the section's end.
NEXT = AT_A_STEP | {"section_end"}

#: In the course: phase -> the phases one turn may lead to (besides staying, and besides "map":
#: ``/reset`` starts over from anywhere).
COURSE: dict[str, frozenset[str]] = {
    "new": NEXT | {"map"},  # greeted, then (in the same turn) /goto, /redo or "take me there"
    "map": NEXT | {"done"},
    "explain": NEXT,
    "question": NEXT,  # right -> the next step; wrong -> retry; code -> evaluating
    "retry": NEXT,
    "evaluating": NEXT,  # the result: passed -> next; failed -> retry; not run -> question
    "section_end": NEXT | {"done"},
    "done": NEXT,  # /goto, /redo, /back: a finished course can be revisited
}
#: In a quiz: one question after another.
QUIZ: dict[str, frozenset[str]] = {"question": frozenset({"retry"}), "retry": frozenset({"question"})}


class InvalidTransition(ValueError):
    """A turn moved a learner in a way the machine does not allow."""


def allowed(before: tuple[str, str], after: tuple[str, str]) -> bool:
    """May one turn move a learner from (mode, phase) ``before`` to ``after``?"""
    (mode0, phase0), (mode1, phase1) = before, after
    if mode0 not in MODES or mode1 not in MODES or phase0 not in PHASES or phase1 not in PHASES:
        return False
    if phase1 == "map" and mode1 == "course":
        return True  # /reset (and the map itself)
    if mode1 == "course" and mode0 != "course":
        return True  # a review ends: back to wherever the course was (its saved phase)
    if mode1 == "quiz":
        return phase1 in ("question", "retry")  # a quiz shows questions only
    if mode1 == "cards":
        return phase1 == phase0 or mode0 == "quiz"  # a review keeps the course's phase aside
    if phase1 == phase0:
        return True
    return phase1 in COURSE[phase0]


def check(before: LearnerState, after: LearnerState) -> None:
    """Raise ``InvalidTransition`` when a turn made a move the machine does not allow."""
    if (before.mode, before.phase) == (after.mode, after.phase):
        return
    if not allowed((before.mode, before.phase), (after.mode, after.phase)):
        raise InvalidTransition(f"{before.mode}/{before.phase} -> {after.mode}/{after.phase} is not a move of the "
                                f"learner's state machine (dialogs/machine.py)")
    # what the state must hold in the phase it moved into
    if after.phase in AT_A_STEP and (after.section is None or after.step is None):
        raise InvalidTransition(f"{after.phase} without a step")
    if after.mode == "cards" and after.card is None:
        raise InvalidTransition("a flashcard review without a card")
    if after.phase == "evaluating" and after.pending is None:
        raise InvalidTransition("evaluating without a pending request")

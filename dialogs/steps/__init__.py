"""Step kinds as types: each kind (explanation, think-then-see, single/multiple choice, true/false batch, "what does
this print?", code task) is one small class with its own text, buttons, grading and reveal. The engine
finds a step's kind with :func:`kind_of` and never asks ``isinstance`` itself."""

from __future__ import annotations

from typing import Any

from dialogs.course import Choice, CodeTask, Explain, Ponder, Predict, Statements
from dialogs.steps.base import Question, StepKind
from dialogs.steps.choice import ChoiceKind
from dialogs.steps.code import CodeKind
from dialogs.steps.explain import ExplainKind
from dialogs.steps.ponder import PonderKind
from dialogs.steps.predict import PredictKind
from dialogs.steps.statements import StatementsKind

KINDS: dict[type, StepKind] = {
    Explain: ExplainKind(),
    Ponder: PonderKind(),
    Choice: ChoiceKind(),
    Statements: StatementsKind(),
    Predict: PredictKind(),
    CodeTask: CodeKind(),
}


def kind_of(step: Any) -> StepKind:
    """The kind of a course step (a ``KeyError`` for a type no kind handles: the loader prevents it)."""
    return KINDS[type(step)]


def question_of(step: Any) -> Question:
    """The kind of a step that asks something (explanations ask nothing)."""
    kind = kind_of(step)
    assert isinstance(kind, Question), f"{step.id} asks nothing"
    return kind


__all__ = ["KINDS", "Question", "StepKind", "kind_of", "question_of"]

"""Every question has a hint (issue 14): ``hint`` on a choice, a statements or a predict question never
answers "no hints".

The first hint points to the idea: "think back to" the point of the nearest explanation before the
question in its section (with none, the question of the section's first flashcard), never a text that
holds the answer. The hint written for the question (``hint:`` in the content), if any, comes second;
after the last one the tutor says so and offers the answer. Every question of the course, in every part
and the bonus, has a written hint: a guiding question.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.content import default_content_dir, load_course
from dialogs.actions import Action
from dialogs.course import Choice, Course, Predict, Statements, build_course
from dialogs.engine import Engine
from dialogs.state import LearnerState
from dialogs.steps.base import hints
from tests.support.driver import Driver

ROOT = Path(__file__).resolve().parents[1]
UI = {lang: yaml.safe_load((ROOT / "content" / "ui" / f"{lang}.yaml").read_text(encoding="utf-8"))
      for lang in ("en", "zh")}
NO_HINTS = ("no hints", "没有提示")


@pytest.fixture(scope="module")
def course() -> Course:
    return load_course(default_content_dir())


def at(course: Course, step_id: str, lang: str) -> Driver:
    d = Driver(course, LearnerState(lang=lang, lang_chosen=True))
    d.go_to(step_id)
    assert d.state.phase == "question"
    return d


def right_answers(step: Any, lang: str) -> list[str]:
    """What would give the answer away: the text of a right option, the printed answer."""
    if isinstance(step, Choice):
        return [o.text.get(lang) for o in step.options if o.correct]
    if isinstance(step, Predict):
        return [step.answer, *step.accept]
    return []


def questions(course: Course) -> list[tuple[str, Any]]:
    return [(section.id, step) for section in course.sections() for step in section.steps
            if isinstance(step, Choice | Statements | Predict)]


# ------------------------------------------------------------------------------- in the real course

@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("step_id", ["p1.why.q-where", "p1.why.q-true-false", "p1.why.predict"])
def test_hint_on_a_choice_a_statements_and_a_predict_question(course: Course, step_id: str, lang: str) -> None:
    d = at(course, step_id, lang)
    step = course.step("p1.why", step_id)
    d.send("hint" if lang == "en" else "提示")
    first = d.text()
    assert not any(no in first for no in NO_HINTS)
    assert course.t(lang, "hint_label", i=1, n=2) in first
    assert first.startswith(course.t(lang, "hint_label", i=1, n=2) + "\n🔙 ")  # think back to...
    assert not any(a.casefold() in first.casefold() for a in right_answers(step, lang))
    assert [b.action for b in d.buttons()] == [Action.HINT]  # there is another one
    assert d.state.phase == "question" and d.state.step == step_id

    d.press(Action.HINT)  # the button, as in Telegram
    second = d.text()
    assert course.t(lang, "hint_label", i=2, n=2) in second and step.hint.get(lang) in second
    assert not any(a.casefold() in second.casefold() for a in right_answers(step, lang))
    assert d.buttons() == []  # not tried yet: no "show answer" offered on its own

    d.send("hint")
    assert d.text() == course.t(lang, "question_hints_done")
    assert [b.action for b in d.buttons()] == [Action.REVEAL]
    assert d.state.phase == "question" and d.state.attempts == 0  # a hint is no attempt


def test_the_pointer_is_the_point_of_the_explanation_before_the_question(course: Course) -> None:
    d = at(course, "p1.why.q-where", "en")
    d.send("hint")
    intro = course.step("p1.why", "p1.why.intro")
    assert course.t("en", "hint_pointer", point=intro.point.en) in d.text()


def test_after_a_wrong_answer_the_last_hint_offers_the_answer(course: Course) -> None:
    d = at(course, "p1.why.predict", "en")
    d.send("tensor(0.6931)")
    assert d.state.phase == "retry"
    d.send("hint")
    d.send("hint")
    assert [b.action for b in d.buttons()] == [Action.REVEAL]
    d.press(Action.REVEAL)
    assert d.state.phase not in ("question", "retry") and "tensor(1.)" in d.text()


def test_hints_start_again_at_the_next_question(course: Course) -> None:
    d = at(course, "p1.why.q-true-false", "en")
    d.send("hint")
    d.send("hint")
    assert d.state.hints == 2
    d.go_to("p1.why.predict")
    assert d.state.hints == 0
    d.send("hint")
    assert course.t("en", "hint_label", i=1, n=2) in d.text()


def test_a_hint_in_a_quiz(course: Course) -> None:
    d = Driver(course)
    d.go_to("p1.backward.predict")
    d.send("hint")
    d.send("hint")  # hints counted in the lesson...
    d.command("quiz")
    assert d.state.mode == "quiz" and d.state.hints == 0  # ...start again in the quiz
    d.send("hint")
    assert course.t("en", "hint_label", i=1, n=2) in d.text()
    assert not any(no in d.text() for no in NO_HINTS)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_question_has_a_hint_that_gives_nothing_away(course: Course, lang: str) -> None:
    engine = Engine(course)
    found = questions(course)
    assert len(found) > 100
    leaks = []
    for section_id, step in found:
        ladder = hints(engine, LearnerState(lang=lang, section=section_id, step=step.id), step)
        assert ladder and all(h.strip() for h in ladder), step.id
        text = "\n".join(ladder).casefold()
        leaks += [f"{step.id}: {a!r}" for a in right_answers(step, lang) if a.strip().casefold() in text]
    assert leaks == []


def test_every_question_has_a_written_hint_that_asks(course: Course) -> None:
    asked = [step for _, step in questions(course)]
    assert len(asked) > 100
    assert {part.id for part in course.parts} <= {step.id.split(".")[0] for step in asked}  # every part asks
    missing = [step.id for step in asked if step.hint is None]
    assert missing == []
    not_questions = [step.id for step in asked if "?" not in step.hint.en or "？" not in step.hint.zh]
    assert not_questions == []


# -------------------------------------------------------------------- the fallbacks, on a small course

def t(en: str, zh: str) -> dict[str, str]:
    return {"en": en, "zh": zh}


def explain(sid: str, point: str) -> dict[str, Any]:
    return {"id": sid, "kind": "explain", "point": t(point, point + "（中）"), "text": t("Words.", "一些话。")}


def choice(sid: str, right: str = "6") -> dict[str, Any]:
    return {"id": sid, "kind": "choice", "point": t("2x", "2x"), "prompt": t("x.grad at 3?", "x=3 时 x.grad？"),
            "options": [{"text": t("3", "3"), "feedback": t("That is x.", "那是 x。")},
                        {"text": t(right, right), "correct": True, "feedback": t("2x.", "2x。")}]}


def small(*steps: dict[str, Any]) -> Course:
    section = {"id": "h1.one", "title": t("Hints", "提示"), "steps": list(steps),
               "cards": [{"id": "h1.one.c-slope", "q": t("What is d/dx x²?", "x² 的导数？"), "a": t("2x", "2x")},
                         {"id": "h1.one.c-other", "q": t("Other?", "其它？"), "a": t("b", "b")}],
               "mnemonic": t("m", "记")}
    meta = {"title": t("Hints", "提示"), "recap_every": 20,
            "parts": [{"id": "h1", "title": t("Part", "部分"), "sections": ["h1.one"]}]}
    ui = {lang: (f"ui/{lang}.yaml", UI[lang]) for lang in UI}
    return build_course(("course.yaml", meta), [("one.yaml", section)], ui, str(ROOT), lambda name: False)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_with_no_explanation_before_it_the_pointer_is_the_first_cards_question(lang: str) -> None:
    c = small(choice("h1.one.q1"), explain("h1.one.after", "The slope of x² is 2x."))
    d = at(c, "h1.one.q1", lang)
    d.send("hint")
    first_card = c.section("h1.one").cards[0]
    assert d.text() == (c.t(lang, "hint_label", i=1, n=1) + "\n"
                        + c.t(lang, "hint_card", question=first_card.q.get(lang)))
    assert first_card.a.get(lang) not in d.text() and "2x" not in d.text()  # the question, never its answer
    assert d.buttons() == []  # the only hint, before any attempt
    d.send("hint")
    assert d.text() == c.t(lang, "question_hints_done")


def test_a_point_that_holds_the_answer_is_passed_over() -> None:
    c = small(explain("h1.one.far", "Slopes multiply along the chain."),
              explain("h1.one.near", "At x = 3 the slope of x² is the number 6 exactly."),
              choice("h1.one.q1", right="the number 6 exactly"))
    d = at(c, "h1.one.q1", "en")
    d.send("hint")
    assert "Slopes multiply along the chain." in d.text() and "the number 6" not in d.text()


def test_a_written_hint_comes_after_the_pointer_in_both_languages() -> None:
    q = {**choice("h1.one.q1"), "hint": t("What is d/dx of x², at x = 3?", "x² 在 x = 3 处的导数是多少？")}
    c = small(explain("h1.one.intro", "Slopes multiply."), q)
    for lang in ("en", "zh"):
        d = at(c, "h1.one.q1", lang)
        d.send("hint")
        d.send("hint")
        assert d.text() == c.t(lang, "hint_label", i=2, n=2) + "\n" + c.step("h1.one", "h1.one.q1").hint.get(lang)

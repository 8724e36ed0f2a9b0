"""Think, then see (``kind: ponder``): where a lesson asks, the learner answers first. The question comes
alone; a guess (quoted back literally), ``go``, Enter or the button brings the explanation; nothing is graded."""

from __future__ import annotations

import pytest

from bot.content import default_content_dir, load_course
from dialogs.course import Course, Ponder
from dialogs.messages import Edit, LogAnswer
from tests.support.driver import Driver


@pytest.fixture(scope="module")
def course() -> Course:
    return load_course(default_content_dir())


def at_by_hand(course: Course, lang: str = "en") -> Driver:
    d = Driver(course)
    d.command("lang", lang)
    d.go_to("p1.why.by-hand")
    return d


def test_the_question_comes_before_its_answer(course: Course) -> None:
    d = at_by_hand(course)
    text = d.text()
    assert "What is **dy/dx**?" in text
    assert "2x / (x² + 1)" not in text and "tensor([0.0000, 1.0000" not in text  # not told yet
    assert [b.action for b in d.buttons()] == ["reveal"]
    assert d.state.phase == "question"


def test_a_guess_is_quoted_literally_then_the_explanation_follows(course: Course) -> None:
    d = at_by_hand(course)
    d.send("**2x** / (x^2+1) `maybe`?")
    (edit,) = d.replies(Edit)
    assert not edit.buttons and "Your guess" in edit.note and "`maybe`" in edit.note
    text = d.text()
    assert "**dy/dx = 2x / (x² + 1)**" in text and "tensor([0.0000, 1.0000, 0.8000, 0.6000])" in text
    assert [b.action for b in d.buttons()] == ["go"]
    assert d.state.phase == "explain" and not d.effects(LogAnswer)  # nothing graded, nothing logged
    d.send("go")
    assert d.state.step == "p1.why.q-scale"


@pytest.mark.parametrize("how", ["go", "", "button", "继续"])
def test_go_enter_or_the_button_show_it_without_a_guess(course: Course, how: str) -> None:
    d = at_by_hand(course)
    if how == "button":
        d.press("reveal")
    else:
        d.send(how)
    assert "Your guess" not in d.text() and "2x / (x² + 1)" in d.text()
    assert d.state.phase == "explain"


def test_hint_and_a_question_mark_are_not_graded(course: Course) -> None:
    d = at_by_hand(course)
    d.send("hint")
    assert "No wrong answers here" in d.text() and d.state.phase == "question"
    d.send("is it 2x/(x^2+1)?")  # a guess with a question mark is still a guess
    assert "Your guess" in d.text() and d.state.phase == "explain"


def test_in_chinese(course: Course) -> None:
    d = at_by_hand(course, "zh")
    assert "dy/dx** 等于多少" in d.text() and "想好了" in d.buttons()[0].label
    d.send("我猜 2x")
    assert "你的猜测" in d.text() and "链式法则" in d.text()


def test_the_course_uses_it_where_a_lesson_asked_and_answered_at_once(course: Course) -> None:
    ponders = [st.id for sec in course.sections() for st in sec.steps if isinstance(st, Ponder)]
    assert {"p1.why.by-hand", "p1.leaf.where-grad-lands"} <= set(ponders)
    # issue 14, "Socratic order": explanations that asked a question and answered it in the same message
    assert {
        "p2.grad-fn.saved", "p3.ctx.intro", "p3.multi-io.inputs", "p4.retain-graph.sum", "p5.optimizer.accum",
        "p5.manual-sgd.loop", "p5.manual-sgd.vs-optim", "p7.anomaly.silent",
    } <= set(ponders)
    for sec in course.sections():
        for st in sec.steps:
            if isinstance(st, Ponder):  # the explanation does not open by asking its own question again
                first = st.text.en.strip().split("\n")[0]
                assert not first.rstrip(" *`").endswith("?"), st.id

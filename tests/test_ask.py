"""Free questions, answered from the course's own passages: in every phase, in both languages, pasted torch
errors included; a question at a question step is answered, not graded (and not logged as an answer)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.content import default_content_dir, load_course
from dialogs.actions import encode
from dialogs.ask import AskIndex, index_for, reads_as_question, relevant
from dialogs.course import Course
from dialogs.messages import LogAnswer
from tests.support.driver import Driver

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "questions.yaml"


@pytest.fixture(scope="module")
def course() -> Course:
    return load_course(default_content_dir())


@pytest.fixture
def d(course: Course) -> Driver:
    return Driver(course)


def zh(course: Course) -> Driver:
    driver = Driver(course)
    driver.command("lang", "zh")
    return driver


# -- retrieval quality: the benchmark's rate may not fall ------------------------------------------------


def test_the_course_answers_the_benchmark_questions(course: Course) -> None:
    """bench/ask.py's figure, held as a floor: top-3 >= 85 % over tests/fixtures/questions.yaml, and at
    least 75 % in each language (a change that helps one language and breaks the other shows here)."""
    entries: list[dict[str, Any]] = yaml.safe_load(FIXTURE.read_text(encoding="utf-8"))
    index = AskIndex(course)
    hit = {"en": [0, 0], "zh": [0, 0]}
    for e in entries:
        ids = {h.passage.id for h in index.search(e["q"], e["lang"], k=3)}
        hit[e["lang"]][1] += 1
        hit[e["lang"]][0] += bool(ids & set(e["answers"]))
    total = (hit["en"][0] + hit["zh"][0]) / (hit["en"][1] + hit["zh"][1])
    assert total >= 0.85, hit
    assert all(right / n >= 0.75 for right, n in hit.values()), hit


def test_off_topic_questions_are_not_dressed_up_as_answers(course: Course) -> None:
    index = index_for(course)
    for q, lang in [("how do i bake sourdough bread", "en"), ("what is the capital of france?", "en"),
                    ("今天天气怎么样", "zh"), ("谁是美国总统", "zh")]:
        hits = index.search(q, lang, k=1)
        assert not hits or not relevant(hits[0], q), q


def test_every_passage_fits_in_a_button(course: Course) -> None:
    """'Take me there' carries a step or card id in Telegram's 64-byte callback data."""
    from dialogs.actions import Action, button

    for passage in index_for(course).passages:
        encode(9_999_999, button("x", Action.GOTO, passage.id))


# -- in the chat -----------------------------------------------------------------------------------------


def test_a_question_during_a_lesson_gets_the_course_passages_and_a_way_there(d: Driver) -> None:
    d.go_to("p1.why.intro")
    d.send("what does retain_graph do")
    text = d.text()
    assert "4D" in text and "retain_graph" in text  # 4D · retain_graph
    go = [b for b in d.buttons() if b.action == "goto"]
    assert go and any(b.arg.startswith("p4.retain-graph") for b in go)
    assert any(b.action == "resume" for b in d.buttons())
    assert d.state.step == "p1.why.intro" and d.state.phase == "explain"  # nothing moved
    # "take me there", then back
    d.press("goto", go[0].arg)
    assert d.state.section == "p4.retain-graph"
    d.command("back")
    assert (d.state.section, d.state.step) == ("p1.why", "p1.why.intro")


def test_the_terminal_goes_there_by_number(d: Driver) -> None:
    d.go_to("p1.why.intro")
    d.send("why do i need zero_grad?")
    first = d.state.ask_hits[0]
    assert "/goto 1" in d.text()
    d.command("goto", "1")
    assert d.state.section == first.rsplit(".", 1)[0] or d.state.step == first


def test_a_question_at_a_choice_step_is_answered_not_graded(d: Driver) -> None:
    d.go_to("p1.why.q-where")
    before = d.state
    d.send("why is grad None?")
    assert not d.effects(LogAnswer), "a question is not an answer"
    assert d.state.attempts == before.attempts and d.state.phase == "question"
    assert "Why is my .grad None" in d.text() or "4A" in d.text()
    # and an answer is still graded
    d.send("b")
    assert d.effects(LogAnswer)


@pytest.mark.parametrize("answer", ["BC", "b, c", "1 2", "b?", "B"])
def test_answers_that_look_odd_are_still_answers(d: Driver, answer: str) -> None:
    d.go_to("p1.why.q-where")
    d.send(answer)
    assert d.effects(LogAnswer) or "letters a to" in d.text()  # graded, or asked for the letters
    assert "From the course" not in d.text() and "course says" not in d.text()


def test_statements_answers_in_chinese_are_graded_not_answered(course: Course) -> None:
    d = zh(course)
    d.go_to("p1.why.q-true-false")
    d.send("错 对 对")  # three of its four statements: taken, the fourth asked for
    assert "第 4 句" in d.text()
    d.send("对")
    assert d.effects(LogAnswer)


def test_a_pasted_torch_error_is_recognised_whatever_its_shapes(d: Driver) -> None:
    d.go_to("p1.why.intro")
    for shapes in ("[3, 4]", "[128, 7, 7]"):
        d.send(f"RuntimeError: one of the variables needed for gradient computation has been modified by an "
               f"inplace operation: [torch.FloatTensor {shapes}], which is output 0 of ReluBackward0, is at "
               f"version 1; expected version 0 instead.")
        assert any(b.arg.startswith("p3.inplace") for b in d.buttons() if b.action == "goto"), d.text()


def test_a_chinese_question_is_answered_in_chinese(course: Course) -> None:
    d = zh(course)
    d.go_to("p1.why.intro")
    d.send("叶子节点是什么？")  # the learner's word; the course writes leaf (content/glossary.yaml)
    text = d.text()
    assert "课程里" in text or "课本" in text or "来自课程" in text
    assert "leaf 张量" in text and "没找到" not in text
    assert any(b.action == "goto" for b in d.buttons())


def test_nothing_relevant_is_said_honestly_with_the_nearest_topics(d: Driver) -> None:
    d.go_to("p1.why.q-where")
    d.send("how do i bake sourdough bread?")
    text = d.text()
    assert "couldn't find" in text and "nearest topics" in text
    assert "Answer with an option letter" in text  # and what to do now
    assert not d.effects(LogAnswer)


def test_slash_ask_works_anywhere_and_alone_explains_itself(d: Driver) -> None:
    d.start()
    d.command("ask")
    assert "/ask why is grad None?" in d.text()
    d.command("ask", "what is a leaf tensor")
    assert "1D" in d.text()
    assert d.state.phase == "map"


def test_a_long_message_is_answered_quickly_and_safely(d: Driver) -> None:
    d.go_to("p1.why.intro")
    d.send("why " + "grad <b>none</b> " * 2000 + "?")
    assert "<b>" not in d.text() or "&lt;b&gt;" not in d.text()  # nothing of it is echoed as markup
    assert d.state.step == "p1.why.intro"


@pytest.mark.parametrize("text", ["why is grad None?", "为什么不能自动广播？", "retain_graph 有啥用",
                                  "what does retain_graph do",
                                  "RuntimeError: element 0 of tensors does not require grad",
                                  "y.backward() 会报错吗"])
def test_reads_as_a_question(text: str) -> None:
    assert reads_as_question(text)


@pytest.mark.parametrize("text", ["2?", "None?", "BC", "b, c", "错 对 对", "1 2 3", "tensor([2.])", "go", "对",
                                  "def f(x):\n    return x"])
def test_reads_as_an_answer(text: str) -> None:
    assert not reads_as_question(text)


def test_a_hesitant_guess_at_a_print_question_is_graded(d: Driver) -> None:
    d.go_to("p1.why.predict")
    d.send("i think it is 0.8?")
    assert d.effects(LogAnswer)


def test_a_why_at_a_print_question_is_answered(d: Driver) -> None:
    d.go_to("p1.why.predict")
    d.send("why would the derivative of log be 2x over x squared plus 1?")
    assert not d.effects(LogAnswer)
    assert d.state.phase == "question"


def test_an_option_typed_out_at_a_print_question_is_graded(d: Driver) -> None:
    d.go_to("p5.meta.forgot")
    d.send("RuntimeError")
    assert d.effects(LogAnswer)


def test_code_that_raises_an_error_is_code_and_a_pasted_traceback_is_a_question(d: Driver) -> None:
    from dialogs.messages import Evaluate

    d.go_to("p3.contract.relu")
    d.send("class MyReLU(torch.autograd.Function):\n    @staticmethod\n    def forward(ctx, x):\n"
           "        raise ValueError('not yet')")
    assert d.effects(Evaluate)
    d.state = d.state.but(phase="question", pending=None)
    d.send("Traceback (most recent call last):\n  File \"<learner>\", line 9, in backward\n"
           "    return grad_output * mask\nNameError: name 'mask' is not defined")
    assert not d.effects(Evaluate)


@pytest.mark.parametrize("word", ["go", "", "继续"])
def test_go_at_a_print_question_asks_for_an_answer_instead_of_grading_it(d: Driver, word: str) -> None:
    d.go_to("p3.contract.name")
    d.send(word)
    assert not d.effects(LogAnswer) and d.state.attempts == 0
    assert "waits for your answer" in d.text()


def test_c_at_a_choice_question_is_still_option_c(d: Driver) -> None:
    d.go_to("p1.why.q-scale")
    d.send("c")
    assert d.effects(LogAnswer)


def test_a_question_during_a_flashcard_review_is_answered_and_the_review_goes_on(d: Driver) -> None:
    d.go_to("p1.requires-grad.intro")  # 1A done: its cards are in the deck
    d.state = d.state.but(deck={cid: {**rec, "due": "2026-01-01T00:00:00+00:00"} for cid, rec in d.state.deck.items()})
    d.command("cards")
    assert d.state.mode == "cards"
    card = d.state.card
    d.send("why do we need autograd at all?")
    assert d.state.mode == "cards" and d.state.card == card
    assert any(b.action == "goto" for b in d.buttons())
    d.send("is it None?")  # an attempt at the answer: compared with the card's
    assert d.state.card_shown


def test_at_a_code_task_a_free_answer_does_not_give_the_task_away(d: Driver, course: Course) -> None:
    """The section's flashcards and later steps sum up what the task asks for: not shown while it is open."""
    d.go_to("p3.multi-io.fxw")
    d.send("what is df/dx and df/dw for f = x*w + w^2?")  # the card with the answer is its best match
    shown = set(d.state.ask_hits)
    section = course.section("p3.multi-io")
    assert not shown & {c.id for c in section.cards}
    assert "p3.multi-io.fxw" not in shown

"""The whole real course, played through the pure engine in both languages, right answers only.

Every section is reachable and ends; every message it produces is valid Telegram HTML under the
length limit once rendered (checked with the fake Bot API's port of Telegram's own HTML parser), and
every button's callback data fits in 64 bytes. Code steps get a passing sandbox verdict here (the
real runs of the exercises are in test_truth.py).
"""

from __future__ import annotations

from functools import cache

import pytest

from bot.content import load_course
from bot.telegram.render import to_html
from dialogs.actions import encode
from dialogs.course import Choice, CodeTask, Course, Ponder, Predict, Statements
from dialogs.evaluation import CheckResult, EvalOutcome
from dialogs.messages import Edit, EvalResult, Evaluate, Say
from tests.support.driver import Driver
from tests.support.fake_bot_api import MAX_TEXT_LENGTH, parse_html, utf16_len
from tests.support.truth import ROOT

LETTERS = "abcdefgh"


@cache
def course() -> Course:
    return load_course(ROOT / "content")


def right_answer(step: object, lang: str) -> str:
    if isinstance(step, Choice):
        return "".join(LETTERS[i] for i, o in enumerate(step.options) if o.correct)
    if isinstance(step, Statements):
        return " ".join(("对" if s.answer else "错") if lang == "zh" else ("T" if s.answer else "F")
                        for s in step.statements)
    if isinstance(step, Predict):
        return step.answer
    if isinstance(step, Ponder):  # think, then see: any guess
        return "我猜一下" if lang == "zh" else "my guess"
    raise AssertionError(step)


def check_rendering(d: Driver) -> int:
    """Every Say/Edit of the last turn renders to valid Telegram HTML; returns the message count."""
    n = 0
    for reply in d.last.replies:
        if not isinstance(reply, Say | Edit):
            continue
        for chunk in to_html(reply.text):
            plain, _ = parse_html(chunk, strict_ampersand=True)  # raises like Telegram would
            assert 0 < utf16_len(plain.strip()) <= MAX_TEXT_LENGTH
            n += 1
        for row in reply.buttons:
            for button in row:
                encode(reply.seq + 10**6, button)  # raises over 64 bytes (with a 7-digit version)
    return n


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_whole_course_plays_to_the_end(lang: str) -> None:
    d = Driver(course())
    d.command("lang", lang)
    d.start()
    messages = check_rendering(d)
    questions = 0
    for _ in range(5000):
        s = d.state
        if s.phase == "done":
            break
        if s.phase in ("map", "explain", "section_end"):
            d.send("go" if lang == "en" else "继续")
        elif s.phase == "question":
            step = d.course.step(s.section, s.step)  # type: ignore[arg-type]
            questions += 1
            if isinstance(step, CodeTask):
                d.send(step.solution)
                request = d.effects(Evaluate)[0]
                passed = tuple(CheckResult(c.id, True) for c in step.checks)
                d.event(EvalResult(request.request, EvalOutcome("ok", passed)))
            else:
                d.send(right_answer(step, lang))
            assert d.state.phase != "question" or d.state.step != step.id, f"stuck at {step.id}"
        else:
            raise AssertionError(f"unexpected phase {s.phase} at {s.step}")
        messages += check_rendering(d)
    assert d.state.phase == "done"
    assert d.state.done_sections == course().section_ids
    assert questions == sum(1 for sec in course().sections() for st in sec.steps if st.kind != "explain")
    # (a think-then-see step asks too: its question comes first, its explanation on the guess)
    assert len(d.state.deck) == sum(len(sec.cards) for sec in course().sections())
    assert messages > 400


def test_predict_with_numeric_options_reads_digits_as_the_output() -> None:
    d = Driver(course())
    d.go_to("p2.next-functions.count")
    step = d.course.step("p2.next-functions", "p2.next-functions.count")
    assert step.answer == "2 2" and step.options == ("1 1", "1 2", "2 1", "2 2")
    d.send("1 2")  # the output "1 2" (wrong), not "option a"
    assert d.state.phase == "retry"
    d.send("d")  # a letter picks an option
    assert d.state.step != "p2.next-functions.count" or d.state.phase != "retry"

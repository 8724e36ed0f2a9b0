"""The tutor's stock lines after an answer fit what happened and vary (issue 13, rough edges).

Praise never comes twice in a row in the same words; a wrong prediction is told how it differs (a
number, a count of values, an error, words with no number at all); code that does not parse is told
so, with its line, not "Close!"; statements never say "True — True", and several traps are plural, in
English and in Chinese.
"""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import yaml

from dialogs.course import Course, build_course
from dialogs.evaluation import CheckResult, EvalOutcome
from dialogs.messages import EvalResult, Evaluate
from dialogs.state import LearnerState
from tests.support.driver import Driver, mini_course

ROOT = Path(__file__).resolve().parents[1]
UI = {lang: yaml.safe_load((ROOT / "content" / "ui" / f"{lang}.yaml").read_text(encoding="utf-8"))
      for lang in ("en", "zh")}


def pool(key: str, lang: str = "en", **values: Any) -> list[str]:
    """The variants of a UI string, as the learner would read them."""
    return [v.strip() for v in UI[lang][key].format(**values).split("||")]


def said(text: str, key: str, lang: str = "en", **values: Any) -> str:
    """Which variant of ``key`` the text holds (exactly one must be there)."""
    found = [v for v in pool(key, lang, **values) if v in text]
    assert len(found) == 1, f"expected one line of {key!r} in:\n{text}"
    return found[0]


def t(en: str, zh: str) -> dict[str, str]:
    return {"en": en, "zh": zh}


def explain(sid: str) -> dict[str, Any]:
    return {"id": sid, "kind": "explain", "point": t("A point", "要点"), "text": t("Some words.", "一些话。")}


def choice(sid: str) -> dict[str, Any]:
    return {"id": sid, "kind": "choice", "point": t("2x", "2x"), "prompt": t("x.grad at 3?", "x=3 时 x.grad？"),
            "options": [{"text": t("3", "3"), "feedback": t("That is x.", "那是 x。")},
                        {"text": t("6", "6"), "correct": True, "feedback": t("2x is 6.", "2x 是 6。")},
                        {"text": t("9", "9"), "feedback": t("That is x*x.", "那是 x*x。")}]}


def predict(sid: str, answer: str = "tensor([4.])", match: str = "numbers") -> dict[str, Any]:
    return {"id": sid, "kind": "predict", "point": t("Accumulate", "累加"), "prompt": t("Prints?", "打印什么？"),
            "code": "print(x.grad)\n", "answer": answer, "match": match,
            "right": t("Two backwards add up.", "两次累加。"), "wrong": t("Think again.", "再想想。")}


def statements(sid: str, items: list[tuple[bool, str, str]]) -> dict[str, Any]:
    return {"id": sid, "kind": "statements", "point": t("Leaves", "叶子"), "prompt": t("True or false?", "对还是错？"),
            "statements": [{"text": t(f"Claim {i + 1}", f"说法 {i + 1}"), "answer": answer, "feedback": t(en, zh)}
                           for i, (answer, en, zh) in enumerate(items)]}


def code(sid: str) -> dict[str, Any]:
    checks = [{"id": f"c{i}", "code": "pass\n", "says": t(f"check {i}", f"检查 {i}"), "fail": t("fix", "改")}
              for i in (1, 2, 3)]
    return {"id": sid, "kind": "code", "point": t("Code", "代码"), "prompt": t("Define square.", "定义 square。"),
            "checks": checks, "hints": [t("t times what?", "t 乘什么？"), t("t * t", "t * t")],
            "solution": "def square(t):\n    return t * t\n", "right": t("Squared!", "平方了！")}


def course(*steps: dict[str, Any]) -> Course:
    section = {"id": "f1.one", "title": t("Feedback", "反馈"), "steps": list(steps),
               "cards": [{"id": "f1.one.c-lines", "q": t("q?", "问？"), "a": t("a", "答")}], "mnemonic": t("m", "记")}
    meta = {"title": t("Lines", "台词"), "recap_every": 20,
            "parts": [{"id": "f1", "title": t("Part", "部分"), "sections": ["f1.one"]}]}
    ui = {lang: (f"ui/{lang}.yaml", UI[lang]) for lang in UI}
    return build_course(("course.yaml", meta), [("one.yaml", section)], ui, str(ROOT), lambda name: False)


class Learner(Driver):
    """A driver whose state goes through JSON between turns, as the shells store it."""

    def event(self, event: Any) -> Any:
        turn = super().event(event)
        self.state = LearnerState.from_dict(json.loads(json.dumps(self.state.to_dict())))
        return turn


def at(c: Course, step_id: str, lang: str = "en") -> Learner:
    d = Learner(c, LearnerState(lang=lang, lang_chosen=True))
    d.go_to(step_id)
    return d


# ------------------------------------------------------------------------------------------- praise

#: A section as lessons go: explanations between questions of every kind that can be answered in one go.
LESSON = (explain("f1.one.intro"), choice("f1.one.q1"), explain("f1.one.e1"), choice("f1.one.q2"),
          explain("f1.one.e2"), predict("f1.one.q3"), choice("f1.one.q4"), explain("f1.one.e3"),
          explain("f1.one.e4"), choice("f1.one.q5"), predict("f1.one.q6"), explain("f1.one.e5"),
          choice("f1.one.q7"), explain("f1.one.end"))
RIGHT = {"choice": "b", "predict": "tensor([4.])"}
WRONG = {"choice": "a", "predict": "tensor([5.])"}


def praises(misses: list[int], lang: str = "en") -> list[str]:
    """The praise lines a learner reads going through LESSON, missing question i ``misses[i]`` times first."""
    c = course(*LESSON)
    d = at(c, "f1.one.q1", lang)
    heads: list[str] = []
    questions = [s for s in LESSON if s["kind"] != "explain"]
    for step, n in zip(questions, misses, strict=True):
        d.go_to(step["id"])
        for _ in range(n):
            d.send(WRONG[step["kind"]])
            assert d.state.phase == "retry"
        d.send(RIGHT[step["kind"]])
        key = "praise" if n == 0 else "praise_retry" if n == 1 else "praise_persist"
        heads.append(said(d.text(), key, lang, tries=n + 1))
    return heads


@pytest.mark.parametrize("misses", [[0] * 7, [1] * 7, [2] * 7, [1, 0, 1, 1, 0, 2, 1]])
def test_praise_never_the_same_twice_in_a_row(misses: list[int]) -> None:
    heads = praises(misses)
    repeats = [(i, a) for i, (a, b) in enumerate(pairwise(heads)) if a == b]
    assert repeats == [], heads


def test_praise_never_the_same_twice_in_a_row_in_chinese() -> None:
    heads = praises([1] * 7, "zh")
    assert all(a != b for a, b in pairwise(heads)), heads


def test_praise_says_how_it_went_first_try_second_try_after_several() -> None:
    c = course(explain("f1.one.intro"), choice("f1.one.q1"), choice("f1.one.q2"), choice("f1.one.q3"),
               explain("f1.one.end"))
    d = at(c, "f1.one.q1")
    d.send("b")
    said(d.text(), "praise")
    d.send("a")
    d.send("b")
    said(d.text(), "praise_retry")
    d.send("a")
    d.send("c")
    d.send("b")
    line = said(d.text(), "praise_persist", tries=3)
    assert "second try" not in line.lower()


# ---------------------------------------------------------------------------------------- predict

@pytest.mark.parametrize(("typed", "key"), [
    ("I think the gradient doubles", "predict_no_numbers"),
    ("tensor", "predict_no_numbers"),
    ("tensor([5.])", "predict_other_values"),
    ("tensor([2., 2.])", "predict_too_many"),
    ("None", "predict_not_none"),
])
def test_a_wrong_prediction_is_told_how_it_differs(typed: str, key: str) -> None:
    d = at(mini_course(), "m1.one.predict")
    d.send(typed)
    text = d.text()
    assert d.state.phase == "retry"
    assert "Close, but no tensor" not in text
    assert not any(line in text for line in pool("wrong"))  # not the line for any miss
    said(text, key)


def test_an_error_picked_for_code_that_prints_values() -> None:
    step = {**predict("f1.one.p"), "options": ["tensor([2.])", "tensor([4.])", "None", "RuntimeError"]}
    d = at(course(explain("f1.one.intro"), step, explain("f1.one.end")), "f1.one.p")
    d.press("pick", "3")
    text = d.text()
    assert not any(line in text for line in pool("wrong"))
    said(text, "predict_no_error")
    d.press("pick", "2")
    said(d.text(), "predict_not_none")


def test_a_prediction_of_too_few_values() -> None:
    d = at(course(explain("f1.one.intro"), predict("f1.one.p", "tensor([12.]) tensor([36.])"),
                  explain("f1.one.end")), "f1.one.p")
    d.send("12")
    said(d.text(), "predict_too_few")


def test_a_wrong_prediction_in_chinese_is_told_in_chinese() -> None:
    d = at(mini_course(), "m1.one.predict", "zh")
    d.send("我觉得梯度翻倍了")
    assert not any(line in d.text() for line in pool("wrong", "zh"))
    said(d.text(), "predict_no_numbers", "zh")
    d.send("tensor([8.])")
    said(d.text(), "predict_other_values", "zh")


def test_words_for_an_output_of_booleans_claim_no_missing_numbers() -> None:
    """``False True`` has no digits: "the real output has numbers in it" would not be true."""
    d = at(course(explain("f1.one.intro"), predict("f1.one.p", "False True"), explain("f1.one.end")), "f1.one.p")
    d.send("no idea")
    text = d.text()
    said(text, "wrong")
    assert not any(line in text for line in pool("predict_no_numbers"))


def test_a_name_compared_exactly_gets_a_plain_not_yet_then_another() -> None:
    d = at(course(explain("f1.one.intro"), predict("f1.one.p", "PowBackward1", "exact"), explain("f1.one.end")),
           "f1.one.p")
    d.send("PowBackward0")
    said(d.text(), "wrong")
    d.send("MulBackward0")
    said(d.text(), "wrong_again")


def test_the_same_miss_twice_reads_differently() -> None:
    d = at(mini_course(), "m1.one.predict")
    d.send("tensor([5.])")
    first = said(d.text(), "predict_other_values")
    d.send("tensor([3.])")
    assert said(d.text(), "predict_other_values") != first


def test_a_second_wrong_choice_is_not_a_first_one() -> None:
    d = at(course(explain("f1.one.intro"), choice("f1.one.q"), explain("f1.one.end")), "f1.one.q")
    d.send("a")
    said(d.text(), "wrong")
    d.send("c")
    assert not any(line in d.text() for line in pool("wrong"))
    said(d.text(), "wrong_again")


# -------------------------------------------------------------------------------------------- code

SYNTAX = "  File \"<your code>\", line 2\n    def square(t)\n                 ^\nSyntaxError: expected ':'"


def run(d: Driver, outcome: EvalOutcome) -> str:
    d.send("def square(t):\n    return t * t")
    [evaluate] = d.effects(Evaluate)
    d.event(EvalResult(evaluate.request, outcome))
    return d.text()


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_code_that_does_not_parse_is_told_so_with_its_line(lang: str) -> None:
    d = at(mini_course(), "m1.two.square", lang)
    text = run(d, EvalOutcome("error", error=SYNTAX))
    head = text.split("\n\n")[0]
    assert "2" in head and head not in pool("code_failed", lang)  # the line, in the first words
    assert "Close!" not in text and "接近了" not in text
    assert head == said(text, "code_syntax", lang, line=2)
    assert "raised an exception" not in text and "抛出了异常" not in text  # it never ran
    assert "SyntaxError: expected ':'" in text  # Python's own words, literally
    assert d.state.phase == "retry"


def test_an_indentation_error_is_a_parse_error_too() -> None:
    d = at(mini_course(), "m1.two.square")
    error = ("  File \"<your code>\", line 3\n    return t\n    ^^^^^^\n"
             "IndentationError: expected an indented block after function definition on line 2")
    said(run(d, EvalOutcome("error", error=error)), "code_syntax", line=3)


def test_a_syntax_error_raised_while_running_is_no_parse_error() -> None:
    """``raise SyntaxError`` (or ``compile`` of a bad string) happens after the code parsed and ran."""
    d = at(mini_course(), "m1.two.square")
    error = ("Traceback (most recent call last):\n  File \"<your code>\", line 4, in <module>\n"
             "    compile('x = (', 'f', 'exec')\n  File \"f\", line 1\n    x = (\n        ^\n"
             "SyntaxError: '(' was never closed")
    text = run(d, EvalOutcome("error", error=error))
    said(text, "code_failed")
    assert not any(line in text for line in pool("code_syntax", line=1))


def test_code_passing_some_checks_is_told_how_many() -> None:
    d = at(course(explain("f1.one.intro"), code("f1.one.code"), explain("f1.one.end")), "f1.one.code")
    checks = (CheckResult("c1", True), CheckResult("c2", False, "no"), CheckResult("c3", True))
    text = run(d, EvalOutcome("ok", checks=checks))
    head = text.split("\n\n")[0]
    assert "2" in head and "3" in head
    said(text, "code_partial", passed=2, total=3)


# -------------------------------------------------------------------------------------- statements

TRAPS = statements("f1.one.s", [
    (True, "True, and that's the trap!", "对，而这正是陷阱！"),
    (False, "False: it returns None.", "错：它返回 None。"),
    (False, "True in math class, not in the graph.", "数学课上成立，图里不成立。"),
    (True, "Trueness aside, it holds.", "对于叶子，它成立。"),
])


def statements_at(lang: str = "en") -> Learner:
    return at(course(explain("f1.one.intro"), TRAPS, explain("f1.one.end")), "f1.one.s", lang)


def test_statements_never_say_true_true() -> None:
    d = statements_at()
    d.send("T F F T")
    text = d.text()
    assert "True — True" not in text and "False — False" not in text
    assert "✅ **1. True**, and that's the trap!" in text
    assert "✅ **2. False**: it returns None." in text
    assert "✅ **3. False** — True in math class, not in the graph." in text  # another word: kept as it is
    assert "✅ **4. True** — Trueness aside, it holds." in text


def test_statements_never_say_true_true_in_chinese_nor_when_wrong() -> None:
    d = statements_at("zh")
    d.send("错 对 错 对")
    text = d.text()
    assert "对 — 对" not in text and "错 — 错" not in text
    assert "❌ **1. 对**，而这正是陷阱！（你答的是错）" in text
    assert "❌ **2. 错**：它返回 None。（你答的是对）" in text
    assert "✅ **4. 对** — 对于叶子，它成立。" in text  # 对于 is another word


def test_the_revealed_statements_never_say_true_true() -> None:
    d = statements_at()
    d.send("answer")
    text = d.text()
    assert "True — True" not in text and "False — False" not in text
    assert "**1. True**, and that's the trap!" in text


@pytest.mark.parametrize(("typed", "lang", "head"), [
    ("T T F T", "en", "3 of 4 — statement 2 is the trap"),
    ("F T F T", "en", "2 of 4 — statements 1 and 2 are the traps"),
    ("F T T T", "en", "1 of 4 — statements 1, 2 and 3 are the traps"),
    ("对 对 错 对", "zh", "对了 3/4 —— 第 2 句是陷阱"),
    ("错 对 错 对", "zh", "对了 2/4 —— 第 1、2 句是陷阱"),
    ("错 对 对 对", "zh", "对了 1/4 —— 第 1、2、3 句是陷阱"),
])
def test_traps_are_counted_with_the_right_grammar(typed: str, lang: str, head: str) -> None:
    d = statements_at(lang)
    d.send(typed)
    assert head in d.text()
    assert "2, 3" not in d.text()

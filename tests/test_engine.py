"""The pure engine, driven like a learner: every step kind, answers, recaps, commands, code tasks."""

import json
from datetime import datetime

import pytest

from dialogs.evaluation import CheckResult, EvalOutcome
from dialogs.messages import Edit, EvalResult, Evaluate, LogAnswer, Quit, SectionDone, Unsupported
from dialogs.state import LearnerState
from tests.support.driver import NOW, Driver, mini_course


@pytest.fixture
def d() -> Driver:
    return Driver(mini_course())


def test_start_shows_hello_then_map_then_go(d: Driver) -> None:
    d.start()
    text = d.text()
    assert "Hi!" in text
    assert "Course map" in text and "A. First steps" in text and "B. Write code" in text
    assert text.index("Hi!") < text.index("Course map")
    assert [b.action for b in d.buttons()] == ["go"]
    assert d.state.phase == "map"


def test_any_first_message_greets(d: Driver) -> None:
    d.send("hello there")
    assert "Course map" in d.text()


def test_explain_shows_code_output_and_quote(d: Driver) -> None:
    d.start()
    d.send("go")
    text = d.text()
    assert "1A · First steps" in text
    assert "print(x.grad)" in text and "tensor([6.])" in text
    assert "Autograd records operations." in text
    assert d.state.phase == "explain"


@pytest.mark.parametrize("word", ["", "go", "ok", "next", "继续", "好"])
def test_continue_words_advance(d: Driver, word: str) -> None:
    d.go_to("m1.one.intro")
    d.send(word)
    assert d.state.step == "m1.one.single"


def test_explain_rejects_chatter_kindly(d: Driver) -> None:
    d.go_to("m1.one.intro")
    d.send("what is a tensor?")
    assert d.state.step == "m1.one.intro"
    assert "`go`" in d.text()


def test_single_choice_right_first_time(d: Driver) -> None:
    d.go_to("m1.one.single")
    d.send("B")
    text = d.text()
    assert "✅ **B.** 2x at 3 is 6." in text  # the chosen option's feedback, one verdict mark only
    assert "That is x itself." in text and "That is x*x." in text  # and the others
    log = d.effects(LogAnswer)
    assert log == [LogAnswer("m1.one.single", "B", "right", True, ("backward",), "m1.one")]
    assert d.state.step == "m1.one.multi"
    edits = d.replies(Edit)
    assert edits and edits[0].anchor == "q:m1.one.single" and edits[0].buttons == ()
    assert "Your answer: B" in edits[0].text


def test_wrong_then_retry_then_right(d: Driver) -> None:
    d.go_to("m1.one.single")
    d.send("c")
    assert "That is x*x." in d.text() and "2x at 3 is 6." not in d.text()
    assert d.state.phase == "retry"
    # the question stays open in place: its options, and a button to see the answer
    assert {b.action for b in d.buttons()} == {"pick", "reveal"}
    d.send("2")
    assert "2x at 3 is 6." in d.text()
    assert d.state.step == "m1.one.multi"


def test_single_choice_needs_exactly_one(d: Driver) -> None:
    d.go_to("m1.one.single")
    d.send("ab")
    assert d.state.step == "m1.one.single" and d.state.phase == "question"
    assert "`b`" in d.text()
    d.send("z")
    assert "a to c" in d.text()


def test_reveal_explains_every_option(d: Driver) -> None:
    d.go_to("m1.one.single")
    d.send("a")
    d.press("reveal")
    text = d.text()
    for fb in ("That is x itself.", "2x at 3 is 6.", "That is x*x."):
        assert fb in text
    assert d.effects(LogAnswer)[0].verdict == "revealed"
    assert d.state.step == "m1.one.multi"


@pytest.mark.parametrize("typed", ["ac", "AC", "a c", "a, c", "1 3", "1,3", "C A"])
def test_multi_choice_formats(d: Driver, typed: str) -> None:
    d.go_to("m1.one.multi")
    d.send(typed)
    assert d.effects(LogAnswer)[0].correct, typed


def test_multi_choice_partly_right(d: Driver) -> None:
    d.go_to("m1.one.multi")
    d.send("a")
    text = d.text()
    assert "1 of 2" in text and "still missing" in text
    assert d.effects(LogAnswer)[0].verdict == "partial"
    assert d.state.phase == "retry"


def test_multi_choice_toggle_buttons_and_submit(d: Driver) -> None:
    d.go_to("m1.one.multi")
    d.press("submit")
    assert "Pick at least one" in d.text()
    d.press("toggle", "0")
    edit = d.replies(Edit)[0]
    assert "✅ A" in [b.label for row in edit.buttons for b in row]
    d.press("toggle", "2")
    d.press("toggle", "1")
    d.press("toggle", "1")  # un-toggle
    d.press("submit")
    assert d.effects(LogAnswer)[0].correct


@pytest.mark.parametrize("typed", ["对 错 对", "T F T", "true false true", "v x v", "✓ ✗ ✓", "yes no yes",
                                   "1 0 1", "对错对", "TFT"])
def test_statements_batch(d: Driver, typed: str) -> None:
    d.go_to("m1.one.tf")
    d.send(typed)
    assert d.effects(LogAnswer)[0].correct, typed
    assert d.state.step == "m1.one.predict"


def test_statements_partly_right_names_the_trap(d: Driver) -> None:
    d.go_to("m1.one.tf")
    d.send("T T T")
    assert "2 of 3" in d.text() and "statement 2 is the trap" in d.text()
    assert "Only with retain_grad." in d.text()
    assert "❌ **2. False** (you said True) — Only with retain_grad." in d.text()
    assert d.effects(LogAnswer)[0].verdict == "partial"


def test_statements_one_by_one(d: Driver) -> None:
    d.go_to("m1.one.tf")
    d.send("对")
    assert "statement 2" in d.text()
    d.send("错")
    d.send("对")
    assert d.effects(LogAnswer)[0].correct


def test_statements_by_buttons(d: Driver) -> None:
    d.go_to("m1.one.tf")
    d.press("judge", "0:1")
    assert d.replies(Edit)  # the keyboard shows the verdict so far
    d.press("judge", "1:1")
    d.press("judge", "1:0")  # changed mind
    d.press("judge", "2:1")
    assert d.effects(LogAnswer)[0].correct


def test_statements_garbage(d: Driver) -> None:
    d.go_to("m1.one.tf")
    d.send("maybe?")
    assert "`T F T`" in d.text() and d.state.step == "m1.one.tf"


@pytest.mark.parametrize("typed", ["tensor([4.])", "tensor([4.0])", "4", "4."])
def test_predict_typed(d: Driver, typed: str) -> None:
    d.go_to("m1.one.predict")
    d.send(typed)
    assert d.effects(LogAnswer)[0].correct


def test_predict_wrong_gives_nudge_not_answer(d: Driver) -> None:
    d.go_to("m1.one.predict")
    d.send("tensor([2.])")
    assert "Think about accumulation." in d.text()
    assert "tensor([4.])" not in d.text()


def test_recap_every_three_steps(d: Driver) -> None:
    d.go_to("m1.one.multi")
    d.send("ac")
    text = d.text()
    assert "Quick recap" in text
    assert "Gradients land in .grad" in text and "Leaves are made by you" in text
    assert d.state.recent == ()


def test_section_end_cards_mnemonic_and_next(d: Driver) -> None:
    d.go_to("m1.one.predict")
    d.send("4")
    text = d.text()
    assert "Section done: First steps" in text
    assert "| Where does the gradient go? | Into `.grad` of leaves |" in text
    assert "Leaves keep, nodes sweep" in text
    assert "Next up: **1B · Write code**" in text
    assert d.effects(SectionDone) == [SectionDone("m1.one")]
    assert d.state.done_sections == ("m1.one",)


def _to_code(d: Driver) -> None:
    d.go_to("m1.two.square")
    assert d.state.phase == "question"


def test_code_step_runs_in_sandbox_and_passes(d: Driver) -> None:
    _to_code(d)
    assert "square(3) is 9" in d.text() and "def square(t):" in d.text()
    d.send("```python\ndef square(t):\n    return t * t\n```")
    ev = d.effects(Evaluate)[0]
    assert ev.code == "def square(t):\n    return t * t" and ev.checks[0].id == "value"
    assert d.state.phase == "evaluating"
    d.send("hello?")
    assert "Still running" in d.text()
    d.event(EvalResult(ev.request, EvalOutcome("ok", (CheckResult("value", True),), stdout="hi\n")))
    text = d.text()
    assert "✅ square(3) is 9" in text and "Squared!" in text and "hi" in text
    assert d.state.step == "m1.two.end"


def test_code_failure_then_hint_ladder_then_solution(d: Driver) -> None:
    _to_code(d)
    d.send("def square(t):\n    return t + t")
    ev = d.effects(Evaluate)[0]
    d.event(EvalResult(ev.request, EvalOutcome("ok", (CheckResult("value", False, "square(3) is 6, expected 9"),))))
    text = d.text()
    assert "❌ square(3) is 9 — multiply t by itself" in text and "square(3) is 6, expected 9" in text
    assert [b.action for b in d.buttons()] == ["hint"]
    d.press("hint")
    assert "Hint 1/2" in d.text() and "What is t times t?" in d.text()
    d.send("hint")
    assert "Hint 2/2" in d.text() and "return t * t" in d.text()
    assert [b.action for b in d.buttons()] == ["reveal"]
    d.press("reveal")
    assert "Reference solution" in d.text() and "return t * t" in d.text()
    assert d.state.step == "m1.two.end"


def test_code_answer_asks_hints_first(d: Driver) -> None:
    _to_code(d)
    d.send("answer")
    assert "Hint 1/2" in d.text()
    assert d.state.step == "m1.two.square"


@pytest.mark.parametrize(
    ("status", "words"),
    [("timeout", "out of time"), ("memory", "more memory"), ("crashed", "died"),
     ("output_limit", "printed more"), ("error", "raised")],
)
def test_code_failure_kinds_are_explained(d: Driver, status: str, words: str) -> None:
    _to_code(d)
    d.send("while True: pass")
    ev = d.effects(Evaluate)[0]
    d.event(EvalResult(ev.request, EvalOutcome(status, error="Traceback: line 1")))  # type: ignore[arg-type]
    assert words in d.text()
    assert d.state.phase == "retry"


def test_sandbox_unavailable_is_our_fault_and_keeps_attempts(d: Driver) -> None:
    _to_code(d)
    d.send("x = 1")
    ev = d.effects(Evaluate)[0]
    d.event(EvalResult(ev.request, EvalOutcome("unavailable", error="down")))
    assert "our fault" in d.text()
    assert d.state.phase == "question" and d.state.attempts == 0


def test_stale_eval_result_is_ignored(d: Driver) -> None:
    _to_code(d)
    d.send("x = 1")
    d.event(EvalResult("m1.two.square#99", EvalOutcome("ok")))
    assert d.last.replies == () and d.state.phase == "evaluating"


def test_course_end(d: Driver) -> None:
    d.go_to("m1.two.end")
    d.send("go")
    assert "Section done: Write code" in d.text() and "last section" in d.text()
    d.send("go")
    assert "You finished the course" in d.text()
    assert d.state.phase == "done"
    d.send("go")
    assert "finished" in d.text()


def test_stale_button_changes_nothing(d: Driver) -> None:
    d.go_to("m1.one.single")
    old = d.state.seq
    d.send("b")
    before = d.state
    d.press("pick", "0", seq=old)
    assert "behind us" in d.text()
    assert d.state == before
    assert not d.effects(LogAnswer)


def test_garbage_button_data_is_stale(d: Driver) -> None:
    d.go_to("m1.one.single")
    d.press("pick", "not-a-number")
    assert "behind us" in d.text()
    d.press("pick", "7")
    assert "behind us" in d.text()


def test_commands(d: Driver) -> None:
    d.go_to("m1.one.single")
    d.command("map")
    assert "👉 A. First steps" in d.text()
    d.command("progress")
    assert "0/2 sections" in d.text() and "1A · First steps" in d.text()
    d.command("recap")
    assert "Gradients land in .grad" in d.text()
    d.command("help")
    assert "/recap" in d.text()
    d.command("frobnicate")
    assert "/frobnicate" in d.text() and "/help" in d.text()
    d.command("quit")
    assert d.effects(Quit)
    assert d.state.step == "m1.one.single"


def test_lang_switch_resends_current_step(d: Driver) -> None:
    d.go_to("m1.one.single")
    d.command("lang", "zh")
    assert "语言：简体中文" in d.text() and "x.grad 是多少？" in d.text()
    d.send("b")
    assert "2x 在 3 处是 6。" in d.text()
    d.command("lang")
    assert {b.arg for b in d.buttons()} == {"en", "zh"}
    d.press("lang", "en")
    assert d.state.lang == "en" and d.state.lang_chosen


def test_reset_asks_first(d: Driver) -> None:
    d.go_to("m1.one.multi")
    d.command("reset")
    d.send("no")
    assert "Nothing reset" in d.text() and d.state.step == "m1.one.multi"
    d.command("reset")
    d.send("yes")
    assert "Fresh start" in d.text() and d.state.phase == "map" and d.state.step is None


def test_reset_by_button(d: Driver) -> None:
    d.go_to("m1.one.multi")
    d.command("reset")
    d.press("reset", "yes")
    assert d.state.phase == "map"
    d.press("reset", "yes")
    assert "behind us" in d.text()


def test_unsupported_messages_are_answered(d: Driver) -> None:
    d.go_to("m1.one.single")
    d.event(Unsupported("sticker"))
    assert "sticker" in d.text() and "option letter" in d.text()
    assert d.state.step == "m1.one.single"


def test_huge_message_is_handled(d: Driver) -> None:
    d.go_to("m1.one.predict")
    d.send("1" * 10_000)
    assert "long" in d.text()
    d.go_to("m1.two.square")
    d.send("x = 1\n" * 5000)
    assert "characters" in d.text() and not d.effects(Evaluate)


def test_chinese_learner_sees_chinese(d: Driver) -> None:
    d.state = LearnerState(lang="zh")
    d.start()
    assert "课程地图" in d.text()
    d.send("好")
    assert "认识 **autograd**" in d.text()


def test_state_round_trips_through_json(d: Driver) -> None:
    d.go_to("m1.one.tf")
    d.send("对")
    data = json.loads(json.dumps(d.state.to_dict()))
    assert LearnerState.from_dict(data) == d.state


def test_state_from_the_future_is_refused() -> None:
    with pytest.raises(ValueError, match="newer"):
        LearnerState.from_dict({"version": 99})


def test_naive_time_is_refused(d: Driver) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        d.engine.step(d.state, Unsupported("x"), datetime(2026, 1, 1))


def test_engine_is_deterministic() -> None:
    a, b = Driver(mini_course()), Driver(mini_course())
    for drv in (a, b):
        drv.go_to("m1.one.predict")
        drv.send("3")
    assert a.turns == b.turns
    assert NOW.tzinfo is not None


def test_lang_alone_says_what_to_type() -> None:
    """The terminal has no buttons: `/lang` alone names the two choices as commands, in both languages."""
    for lang in ("en", "zh"):
        driver = Driver(mini_course())
        driver.state = driver.state.but(lang=lang)
        driver.command("lang")
        assert "/lang en" in driver.text() and "/lang zh" in driver.text()

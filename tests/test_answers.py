"""Typed answers: every format a learner may use, and garbage."""

import pytest

from dialogs.answers import extract_code, is_continue, parse_choice, parse_judgements, predict_matches


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("b", (1,)), ("B", (1,)), ("bc", (1, 2)), ("B C", (1, 2)), ("b, c", (1, 2)), ("2 3", (1, 2)),
        ("2,3", (1, 2)), ("23", (1, 2)), ("(b)", (1,)), ("Ｂ", (1,)), ("b，c", (1, 2)), ("b、c", (1, 2)),
        ("B和C", (1, 2)), ("b and c", (1, 2)), ("cb", (1, 2)), ("  a  ", (0,)), ("我选 b", (1,)),
        ("answer: d", (3,)), ("b.", (1,)),
    ],
)
def test_choice_formats(text: str, expected: tuple[int, ...]) -> None:
    assert parse_choice(text, 4) == expected


@pytest.mark.parametrize("text", ["e", "5", "0", "hello", "bz", "", "   ", "x" * 10_000, "🍕", "2.5e"])
def test_choice_garbage_is_not_understood(text: str) -> None:
    assert parse_choice(text, 4) is None


@pytest.mark.parametrize(
    "text",
    ["错 对 对", "F T T", "false true true", "x v v", "✗ ✓ ✓", "no yes yes", "0 1 1", "错对对", "FTT", "011",
     "f,t,t", "❌ ✅ ✅", "1. F 2. T 3. T", "1 F 2 T 3 T", "错误 正确 正确", "  f   t  t "],
)
def test_judgement_batches(text: str) -> None:
    assert parse_judgements(text, 3) == (False, True, True)


def test_judgement_one_by_one_and_garbage() -> None:
    assert parse_judgements("对", 3) == (True,)
    assert parse_judgements("F T", 3) == (False, True)
    assert parse_judgements("T F T F", 3) is None
    assert parse_judgements("maybe", 3) is None
    assert parse_judgements("", 3) is None
    assert parse_judgements("对" * 5000, 3) is None


@pytest.mark.parametrize("typed", ["tensor([6.])", "tensor([6.0])", "6", "6.", "6.0", " tensor( [ 6. ] ) ", "[6.]"])
def test_predict_number_formats(typed: str) -> None:
    assert predict_matches(typed, "tensor([6.])", "numbers")


def test_predict_rejects_wrong_values_and_counts() -> None:
    assert not predict_matches("7", "tensor([6.])", "numbers")
    assert not predict_matches("6 6", "tensor([6.])", "numbers")
    assert not predict_matches("None", "tensor([6.])", "numbers")
    assert predict_matches("none", "None", "numbers")
    printed = "tensor([2., 4.], grad_fn=<MulBackward0>)"
    assert predict_matches(printed, printed, "exact")
    assert predict_matches("2 4", "tensor([2., 4.], grad_fn=<MulBackward0>)", "numbers")
    assert not predict_matches("MulBackward", "MulBackward0", "exact")
    assert predict_matches("mulbackward0", "MulBackward0", "exact")
    assert predict_matches("True", "True", "numbers")
    assert not predict_matches("False", "True", "numbers")


def test_continue_words() -> None:
    for word in ["", "go", "OK", "next", "继续", "好", "Go!", "好的"]:
        assert is_continue(word), word
    for word in ["b", "what?", "no idea"]:
        assert not is_continue(word), word


def test_code_extraction() -> None:
    assert extract_code("```python\nx = 1\nprint(x)\n```") == "x = 1\nprint(x)"
    assert extract_code("here:\n```py\ny = 2\n```\nthanks") == "y = 2\n"
    assert extract_code("x = 1") == "x = 1"

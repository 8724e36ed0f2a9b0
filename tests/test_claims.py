"""Claims of the course that were true only in the common case stay fixed, and no learner-facing text
speaks of "the proof" (issue 14).

Each claim test finds its step in the loaded course, checks that the over-general wording is gone, then
runs with real torch the fact the new wording states. The word test reads every learner-facing string
of the course (every ``Text``, both languages, quotes, the UI strings): the learner never sees the
proofs' code, so "the proof counts..." / "证明代码里..." talks about something that is not there.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from pydantic import BaseModel

from bot.content import default_content_dir, load_course
from dialogs.course import Card, Course, Quote, Text


@pytest.fixture(scope="module")
def course() -> Course:
    return load_course(default_content_dir())


def find_step(course: Course, step_id: str) -> Any:
    section_id = step_id.rsplit(".", 1)[0]
    return course.step(section_id, step_id)


def find_card(course: Course, card_id: str) -> Card:
    return course.card(card_id)


# -- 1. a cut wire is not always a copy: detach() and .data share x's memory (p4.grad-none.cut) ---------

def test_a_cut_wire_is_not_called_a_copy(course: Course) -> None:
    text = find_step(course, "p4.grad-none.cut").text
    assert "copy of x's value" not in text.en and "值的副本" not in text.zh
    assert "memory" in text.en and "内存" in text.zh  # the new wording: some cuts share x's memory


def test_detach_and_data_share_x_memory_yet_cut_the_graph() -> None:
    for cut in ("detach", "data"):
        x = torch.tensor([2.0, 3.0], requires_grad=True)
        w = torch.tensor([1.0, 1.0], requires_grad=True)
        c = x.detach() if cut == "detach" else x.data
        assert c.data_ptr() == x.data_ptr()  # the same memory, not a copy
        c[0] = 5.0
        assert x[0].item() == 5.0  # an edit through the cut shows in x
        (c * w).sum().backward()
        assert x.grad is None and w.grad is not None  # no wire back to x


# -- 2. sharing storage is not sharing the version counter: .data has its own (p3.inplace.version) ------

def test_storage_sharing_is_not_said_to_imply_a_shared_counter(course: Course) -> None:
    text = find_step(course, "p3.inplace.version").text
    assert "share storage, so they share the counter" not in text.en
    assert "共享存储，所以也共享这个计数器" not in text.zh
    assert "`t.data`" in text.en and "`t.data`" in text.zh  # the exception is named


def test_detach_and_views_share_the_counter_data_does_not() -> None:
    x = torch.ones(3, requires_grad=True)
    x.data.add_(1)
    assert x._version == 0  # .data: same storage, its own counter
    x.detach().add_(1)
    assert x._version == 1  # detach(): the counter is shared
    t = torch.zeros(3)
    t[:2].add_(1)
    assert t._version == 1  # a view: shared too


def test_an_edit_through_data_goes_unnoticed_at_backward() -> None:
    x = torch.ones(2, requires_grad=True)
    y = (x * x).sum()  # saves x
    x.data.mul_(2)
    y.backward()  # no "modified by an inplace operation" error
    assert x.grad.tolist() == [4.0, 4.0]  # computed from the edited x: autograd never heard of it


def test_an_edit_through_detach_is_caught() -> None:
    x = torch.ones(2, requires_grad=True)
    y = (x * x).sum()
    x.detach().mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()


# -- 3. a second backward fails only when the graph saved tensors (p5.interview.tf) ---------------------

def second_backward_statement(course: Course) -> Any:
    step = find_step(course, "p5.interview.tf")
    (statement,) = [st for st in step.statements if "second `backward()`" in st.text.en]
    return statement


def test_the_second_backward_claim_names_graphs_that_saved_tensors(course: Course) -> None:
    statement = second_backward_statement(course)
    assert "through the same graph fails" not in statement.text.en
    assert "对同一张图再 `backward()` 一次会失败" not in statement.text.zh
    assert statement.answer is True
    assert "`(x * x).sin()`" in statement.text.en and "`(x * x).sin()`" in statement.text.zh
    assert "`x + 1`" in statement.feedback.en and "`x + 1`" in statement.feedback.zh


def test_a_graph_that_saved_tensors_fails_a_second_time() -> None:
    x = torch.tensor(2.0, requires_grad=True)
    y = (x * x).sin()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()


def test_a_graph_that_saved_nothing_runs_twice() -> None:
    x = torch.tensor(2.0, requires_grad=True)
    y = x + 1
    y.backward()
    y.backward()
    assert x.grad.item() == 2.0


# -- 4. only generated built-in nodes end in a digit (p2.function card, p2.derivatives mnemonic) ---------

def test_only_generated_built_ins_are_said_to_carry_a_digit(course: Course) -> None:
    card = find_card(course, "p2.function.c-node-name").a
    assert "built-in nodes have one" not in card.en and "内置节点有，" not in card.zh
    assert "generated built-in" in card.en and "生成的内置节点" in card.zh
    mnemonic = course.section("p2.derivatives").mnemonic
    assert "; built-ins carry a digit" not in mnemonic.en and "；内置带数字" not in mnemonic.zh
    assert "generated built-ins carry a digit" in mnemonic.en and "生成的内置节点带数字" in mnemonic.zh


def test_generated_nodes_end_in_a_digit_hand_written_and_custom_ones_do_not() -> None:
    x = torch.ones(3, requires_grad=True)
    y = x * 2
    assert y.grad_fn.name() == "MulBackward0" and x.log().grad_fn.name() == "LogBackward0"
    copied = torch.zeros(3)
    copied.copy_(y)
    sliced = torch.zeros(3)
    sliced[:2] = y[:2]

    class Square(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, t: torch.Tensor) -> torch.Tensor:
            return t * t

        @staticmethod
        def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
            return g

    names = [copied.grad_fn.name(), sliced.grad_fn.name(), y.grad_fn.next_functions[0][0].name(),
             type(Square.apply(x).grad_fn).__name__]
    assert names == ["torch::autograd::CopyBackwards", "torch::autograd::CopySlices",
                     "torch::autograd::AccumulateGrad", "SquareBackward"]
    assert not any(name[-1].isdigit() for name in names)


# -- the word "proof" (证明) in what a learner reads -------------------------------------------------------

PROOF = re.compile(r"\bproofs?\b|证明", re.I)
ALLOWED: frozenset[str] = frozenset()  # "<where> <lang>" of a use that truly must stay (none so far)


def texts(node: Any, where: str) -> Iterator[tuple[str, str, str]]:
    """Every learner-facing string under ``node``: (where, language, text)."""
    if isinstance(node, Text):
        for lang in ("en", "zh"):
            yield where, lang, node.get(lang)
    elif isinstance(node, Quote):
        yield where, "en", node.text
        if node.translation:
            yield where, "zh", node.translation
    elif isinstance(node, BaseModel):
        for name in type(node).model_fields:
            yield from texts(getattr(node, name), f"{where}.{name}")
    elif isinstance(node, tuple | list):
        for i, item in enumerate(node):
            yield from texts(item, f"{where}[{i}]")


def learner_strings(course: Course) -> list[tuple[str, str, str]]:
    found = [*texts(course.title, "title")]
    for part in course.parts:
        found += texts(part.title, f"{part.id}.title")
    for section in course.sections():
        found += texts(section, section.id)
    for lang, strings in course.ui.items():
        found += [(f"ui.{key}", lang, value) for key, value in strings.items()]
    return found


def test_the_scan_reads_every_kind_of_learner_text(course: Course) -> None:
    found = learner_strings(course)
    assert len(found) > 3000
    wheres = " ".join(w for w, _, _ in found)
    for field in (".feedback", ".prompt", ".right", ".wrong", ".text", ".point", ".q", ".a", ".mnemonic",
                  ".hint", ".quote", "ui.welcome"):
        assert field in wheres, field
    assert {lang for _, lang, _ in found} == {"en", "zh"}


def test_the_word_would_be_found() -> None:
    for old in ("The proof counts the saved tensors", "In the proof, `x = 3`", "证明代码里", "Proof: your update"):
        assert PROOF.search(old)
    for fine in ("proofread", "foolproof", "waterproof"):
        assert not PROOF.search(fine)


def test_no_learner_facing_text_speaks_of_the_proof(course: Course) -> None:
    hits = [f"{where} {lang}: {text[:120]!r}" for where, lang, text in learner_strings(course)
            if PROOF.search(text) and f"{where} {lang}" not in ALLOWED]
    assert hits == []

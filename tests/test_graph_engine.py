"""/graph and lesson graphs in the pure engine, and the text rendering of graphs (no torch, no I/O)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from bot.content import load_course
from dialogs import graph as graphs
from dialogs.course import Course
from dialogs.evaluation import EvalOutcome
from dialogs.messages import EvalResult, Evaluate, GraphView, Say
from tests.support.driver import FIXTURES, Driver, mini_course

# The graph of y = (x**2 + z).sin() as the sandbox returns it (checked against torch in test_graph_sandbox).
SIN_GRAPH: dict[str, Any] = {
    "root": {"name": "y", "shape": [3], "dtype": "float32", "requires_grad": True},
    "nodes": [
        {"id": 0, "kind": "backward", "name": "SinBackward0", "saved": [{"name": "_saved_self", "shape": [3]}]},
        {"id": 1, "kind": "backward", "name": "AddBackward0", "saved": [{"name": "_saved_alpha", "value": "1"}]},
        {"id": 2, "kind": "backward", "name": "PowBackward0",
         "saved": [{"name": "_saved_exponent", "value": "2"}, {"name": "_saved_self", "shape": [3]}]},
        {"id": 3, "kind": "leaf", "name": "AccumulateGrad",
         "tensor": {"name": "z", "shape": [3], "dtype": "float32", "requires_grad": True}},
        {"id": 4, "kind": "leaf", "name": "AccumulateGrad",
         "tensor": {"name": "x", "shape": [3], "dtype": "float32", "requires_grad": True}},
    ],
    "edges": [{"src": 0, "dst": 1, "input_nr": 0, "slot": 0}, {"src": 1, "dst": 2, "input_nr": 0, "slot": 0},
              {"src": 1, "dst": 3, "input_nr": 0, "slot": 1}, {"src": 2, "dst": 4, "input_nr": 0, "slot": 0}],
    "truncated": False,
    "total": 5,
}
# y = x * x + 1: x reached twice, a (None, 0) constant for the 1.
SQUARE_GRAPH: dict[str, Any] = {
    "root": {"name": "y", "shape": [2], "dtype": "float32", "requires_grad": True},
    "nodes": [
        {"id": 0, "kind": "backward", "name": "AddBackward0", "saved": [{"name": "_saved_alpha", "value": "1"}]},
        {"id": 1, "kind": "backward", "name": "MulBackward0",
         "saved": [{"name": "_saved_other", "shape": [2]}, {"name": "_saved_self", "shape": [2]}]},
        {"id": 2, "kind": "leaf", "name": "AccumulateGrad",
         "tensor": {"name": "x", "shape": [2], "dtype": "float32", "requires_grad": True}},
        {"id": 3, "kind": "const", "name": "None"},
    ],
    "edges": [{"src": 0, "dst": 1, "input_nr": 0, "slot": 0}, {"src": 0, "dst": 3, "input_nr": 0, "slot": 1},
              {"src": 1, "dst": 2, "input_nr": 0, "slot": 0}, {"src": 1, "dst": 2, "input_nr": 0, "slot": 1}],
    "truncated": False,
    "total": 3,
}

SIN_CODE = ("import torch\nx = torch.rand(3, requires_grad=True)\nz = torch.rand(3, requires_grad=True)\n"
            "y = (x**2 + z).sin()")


def graph_course(tmp_path: Path) -> Course:
    """The mini course with a graph on its last explain step."""
    root = tmp_path / "mini"
    shutil.copytree(FIXTURES / "mini", root)
    path = root / "sections" / "two.yaml"
    text = path.read_text()
    old = "    text: {en: That's all., zh: 就这些。}\n"
    assert old in text
    added = "    code: |\n      import torch\n      x = torch.ones(2, requires_grad=True)\n      y = (x * 3).sum()\n"
    path.write_text(text.replace(old, old + added + "    graph: y\n"))
    return load_course(root)


# ------------------------------------------------------------------------------------------- text


def test_the_text_tree_of_sin() -> None:
    assert graphs.tree(SIN_GRAPH) == (
        "y (3,) requires_grad\n"
        "└─ SinBackward0 · saved: self (3,)\n"
        "   └─ AddBackward0 · saved: alpha=1\n"
        "      ├─ PowBackward0 · saved: exponent=2, self (3,)\n"
        "      │  └─ AccumulateGrad → x (3,) requires_grad\n"
        "      └─ AccumulateGrad → z (3,) requires_grad"
    )


def test_a_node_reached_twice_and_a_constant() -> None:
    text = graphs.tree(SQUARE_GRAPH)
    assert text.splitlines()[1:] == [
        "└─ AddBackward0 · saved: alpha=1",
        "   ├─ MulBackward0 · saved: other (2,), self (2,)",
        "   │  ├─ #3 AccumulateGrad → x (2,) requires_grad",
        "   │  └─ ↑ #3 AccumulateGrad",
        "   └─ None (no gradient: a constant)",
    ]


def test_a_truncated_graph_says_so_and_long_trees_are_cut() -> None:
    chain = {"root": {"name": "y", "shape": [1], "requires_grad": True},
             "nodes": [{"id": i, "kind": "backward", "name": "MulBackward0", "saved": []} for i in range(150)],
             "edges": [{"src": i, "dst": i + 1, "input_nr": 0} for i in range(149)], "truncated": True, "total": 10000}
    text = graphs.tree(chain)
    assert len(text.splitlines()) <= graphs.MAX_TREE_LINES + 2
    assert text.endswith("(10000 nodes in all; the first 150 are shown)")


@pytest.mark.parametrize(("args", "target", "code"), [
    ("y: x = 1; y = x", "y", "x = 1; y = x"),
    ("x = torch.ones(2)", None, "x = torch.ones(2)"),
    ("try: pass", None, "try: pass"),
    ("y:\nx = 1\ny = x * 2", "y", "x = 1\ny = x * 2"),
    ("x: torch.Tensor = torch.ones(2)", "x", "torch.Tensor = torch.ones(2)"),
])
def test_split_target(args: str, target: str | None, code: str) -> None:
    assert graphs.split_target(args) == (target, code)


# ----------------------------------------------------------------------------------------- engine


def test_graph_command_asks_for_a_graph_and_keeps_the_position() -> None:
    d = Driver(mini_course())
    d.start()
    d.send("go")
    before = d.state
    d.command("graph", SIN_CODE)
    (effect,) = d.effects(Evaluate)
    assert effect.graph == "" and effect.code == SIN_CODE and effect.checks == () and not effect.cacheable
    assert effect.request.startswith("graph:")
    assert d.state == before and d.last.replies == ()
    d.event(EvalResult(effect.request, EvalOutcome("ok", extra={"graph": SIN_GRAPH})))
    (view,) = d.replies(GraphView)
    assert view.graph == SIN_GRAPH and view.tree == graphs.tree(SIN_GRAPH)
    assert "`y`" in view.caption and "5 nodes" in view.caption and "x, z" in view.caption and len(view.caption) < 1024
    assert "Graphviz" in view.no_picture and "{path}" in view.saved_as
    assert d.state == before


def test_graph_of_a_named_variable_in_a_code_fence_and_mid_evaluation() -> None:
    d = Driver(mini_course())
    d.start()
    d.state = d.state.but(phase="evaluating", pending="x#1")
    before = d.state
    d.command("graph", "y:\n```python\nimport torch\ny = torch.ones(2, requires_grad=True) * 2\n```")
    (effect,) = d.effects(Evaluate)
    assert effect.graph == "y" and effect.code.startswith("import torch")
    d.event(EvalResult(effect.request, EvalOutcome("ok", extra={"graph": SQUARE_GRAPH})))
    assert d.replies(GraphView) and d.state == before


def test_bare_graph_explains_itself_in_both_languages() -> None:
    d = Driver(mini_course())
    d.command("graph")
    assert "/graph" in d.text() and not d.effects(Evaluate) and d.state.phase == "new"
    d.command("lang", "zh")
    d.command("graph", "   ")
    assert "计算图" in d.text()


@pytest.mark.parametrize(("outcome", "says"), [
    (EvalOutcome("ok", extra={"graph_problem": {"reason": "no_tensor", "name": ""}}), "no tensor"),
    (EvalOutcome("ok", extra={"graph_problem": {"reason": "no_grad", "name": "y"}}), "`y` has no graph"),
    (EvalOutcome("ok", extra={"graph_problem": {"reason": "leaf", "name": "x"}}), "`x` is a leaf tensor"),
    (EvalOutcome("ok", extra={"graph_problem": {"reason": "not_found", "name": "q"}}), "no variable `q`"),
    (EvalOutcome("ok", extra={"graph_problem": {"reason": "not_tensor", "name": "n", "type": "int"}}), "`int`"),
    (EvalOutcome("ok", extra={"graph_problem": {"reason": "invalid", "name": ""}}), "our fault"),
    (EvalOutcome("ok"), "our fault"),
    (EvalOutcome("error", error="ZeroDivisionError: division by zero"), "ZeroDivisionError"),
    (EvalOutcome("timeout", error="ran for more than 5 s"), "ran out of time"),
    (EvalOutcome("unavailable", error="down"), "unavailable right now"),
])
def test_no_graph_is_answered_kindly(outcome: EvalOutcome, says: str) -> None:
    d = Driver(mini_course())
    d.start()
    before = d.state
    d.event(EvalResult("graph:1:10", outcome))
    assert not d.replies(GraphView)
    assert says in d.text()
    assert d.state == before


def test_a_big_graph_caption_mentions_the_cap() -> None:
    d = Driver(mini_course())
    big = dict(SQUARE_GRAPH, truncated=True, total=10000)
    d.event(EvalResult("graph:1:10", EvalOutcome("ok", extra={"graph": big})))
    (view,) = d.replies(GraphView)
    assert "10000 nodes in all" in view.caption


def test_a_lesson_step_with_graph_requests_its_picture(tmp_path: Path) -> None:
    course = graph_course(tmp_path)
    d = Driver(course)
    step = course.section("m1.two").steps[-1]
    d.go_to(step.id)
    (effect,) = [e for e in d.last.effects if isinstance(e, Evaluate)]
    assert effect.graph == "y" and effect.cacheable and effect.code == step.code
    assert effect.request == f"graph:lesson:{step.id}"
    before = d.state
    d.event(EvalResult(effect.request, EvalOutcome("ok", extra={"graph": SQUARE_GRAPH})))
    assert d.replies(GraphView) and d.state == before
    # "Continue" comes under the picture, not above it (the text asked for it has no button)
    assert not [b for r in d.turns[-2].replies if isinstance(r, Say) for row in r.buttons for b in row]
    kinds = [type(r).__name__ for r in d.last.replies]
    assert kinds == ["GraphView", "Say"] and d.buttons()[0].action == "go"
    # a picture that comes after the learner moved on brings no second "Continue"
    d.send("go")
    d.event(EvalResult(effect.request, EvalOutcome("ok", extra={"graph": SQUARE_GRAPH})))
    assert not [r for r in d.last.replies if isinstance(r, Say)]


def test_a_lesson_graph_that_cannot_be_drawn_still_brings_continue(tmp_path: Path) -> None:
    course = graph_course(tmp_path)
    d = Driver(course)
    step = course.section("m1.two").steps[-1]
    d.go_to(step.id)
    d.event(EvalResult(f"graph:lesson:{step.id}", EvalOutcome("unavailable")))
    assert d.buttons() and d.buttons()[-1].action == "go"


def test_graph_needs_code_in_the_schema(tmp_path: Path) -> None:
    from dialogs.course import Explain

    with pytest.raises(ValueError, match="'graph' needs 'code'"):
        Explain.model_validate({"kind": "explain", "id": "s1", "point": {"en": "p", "zh": "p"},
                                "text": {"en": "t", "zh": "t"}, "graph": "y"})

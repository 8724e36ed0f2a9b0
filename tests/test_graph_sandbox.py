"""Autograd graphs read in the sandbox, compared node by node with what torch reports."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from bot.sandbox import Sandbox, SandboxConfig, protocol
from tests.support.graph_truth import reference

REPO = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(SandboxConfig(workers=2, wall_seconds=3.0)) as sb:
        yield sb


def code(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


SQUARE_PLUS_ONE = "import torch\nx = torch.tensor([1.0, 2.0], requires_grad=True)\ny = x * x + 1\n"
SIN = code("""
    import torch
    x = torch.tensor([0.5, 1.0, 2.0], requires_grad=True)
    z = torch.tensor([1.0, 1.0, 1.0], requires_grad=True)
    y = (x**2 + z).sin()
    """)
CUSTOM = code("""
    import torch

    class Cube(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, grad_output):
            (x,) = ctx.saved_tensors
            return grad_output * 3 * x ** 2

    w = torch.randn(4, requires_grad=True)
    out = Cube.apply(w * 2).sum()
    """)
MLP = code("""
    import torch
    from torch import nn
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    inputs = torch.randn(5, 3)
    loss = model(inputs).pow(2).mean()
    """)


def compare(graph: dict[str, Any], truth: dict[str, Any]) -> None:
    """Same nodes in the same breadth-first order, the same edges, a constant per (None, 0)."""
    real = [n for n in graph["nodes"] if n["kind"] != "const"]
    assert [n["name"] for n in real] == truth["names"]
    edges = [[e["src"], e["dst"], e["input_nr"]] for e in graph["edges"] if graph["nodes"][e["dst"]]["kind"] != "const"]
    assert edges == truth["edges"]
    consts = [e for e in graph["edges"] if graph["nodes"][e["dst"]]["kind"] == "const"]
    assert len(consts) == truth["nones"]
    leaves = {str(n["id"]): n["tensor"]["shape"] for n in real if n["kind"] == "leaf"}
    assert leaves == truth["leaves"]
    assert graph["truncated"] is False and graph["total"] == len(real)
    assert protocol.clean_graph(graph) == graph  # what came back is already in its validated form


@pytest.mark.parametrize(("source", "target"), [(SQUARE_PLUS_ONE, "y"), (SIN, "y"), (CUSTOM, "out"), (MLP, "loss")],
                         ids=["x*x+1", "sin", "custom-function", "mlp"])
async def test_graphs_match_what_torch_reports(sandbox: Sandbox, source: str, target: str) -> None:
    outcome = await sandbox.graph(source)  # the last tensor assigned is the target
    assert outcome.status == "ok", outcome.error
    graph = outcome.extra["graph"]
    assert graph["root"]["name"] == target
    compare(graph, reference(source, target))


async def test_the_sin_graph_in_detail(sandbox: Sandbox) -> None:
    graph = (await sandbox.graph(SIN)).extra["graph"]
    assert graph["root"] == {"name": "y", "shape": [3], "dtype": "float32", "requires_grad": True}
    by_name = {n["name"]: n for n in graph["nodes"] if n["kind"] == "backward"}
    assert list(by_name) == ["SinBackward0", "AddBackward0", "PowBackward0"]
    assert {"name": "_saved_self", "shape": [3]} in by_name["SinBackward0"]["saved"]
    assert {"name": "_saved_exponent", "value": "2"} in by_name["PowBackward0"]["saved"]
    leaves = {n["tensor"]["name"]: n["tensor"] for n in graph["nodes"] if n["kind"] == "leaf"}
    assert leaves == {"x": {"name": "x", "shape": [3], "dtype": "float32", "requires_grad": True},
                      "z": {"name": "z", "shape": [3], "dtype": "float32", "requires_grad": True}}


async def test_x_times_x_plus_one_shows_the_constant_and_both_edges_to_x(sandbox: Sandbox) -> None:
    graph = (await sandbox.graph(SQUARE_PLUS_ONE, "y")).extra["graph"]
    names = [n["name"] for n in graph["nodes"]]
    assert names == ["AddBackward0", "MulBackward0", "AccumulateGrad", "None"]
    assert [(e["src"], e["dst"], e["input_nr"]) for e in graph["edges"]] == [(0, 1, 0), (0, 3, 0), (1, 2, 0), (1, 2, 0)]


async def test_mlp_parameters_are_named_after_the_module(sandbox: Sandbox) -> None:
    graph = (await sandbox.graph(MLP)).extra["graph"]
    names = {n["tensor"]["name"] for n in graph["nodes"] if n["kind"] == "leaf"}
    assert names == {"model.0.weight", "model.0.bias", "model.2.weight", "model.2.bias"}


async def test_a_named_target_and_a_bare_last_expression(sandbox: Sandbox) -> None:
    outcome = await sandbox.graph(SIN + "w = y * 2\n", "y")
    assert outcome.extra["graph"]["root"]["name"] == "y"
    outcome = await sandbox.graph(SIN + "(y * 2).sum()\n")
    graph = outcome.extra["graph"]
    assert graph["root"]["name"] == "_" and graph["nodes"][0]["name"] == "SumBackward0"


async def test_a_one_liner_may_skip_import_torch(sandbox: Sandbox) -> None:
    outcome = await sandbox.graph("x = torch.ones(2, requires_grad=True); y = (x * 3).sum()")
    assert outcome.status == "ok", outcome
    assert [n["name"] for n in outcome.extra["graph"]["nodes"]][:2] == ["SumBackward0", "MulBackward0"]


@pytest.mark.parametrize(("source", "target", "problem"), [
    ("x = 1\nprint(x)\n", None, {"reason": "no_tensor", "name": ""}),
    ("import torch\nx = torch.ones(2)\ny = x * 2\n", None, {"reason": "no_grad", "name": "y", "shape": [2]}),
    ("import torch\nx = torch.ones(2, requires_grad=True)\n", None, {"reason": "leaf", "name": "x", "shape": [2]}),
    ("import torch\nx = torch.ones(2, requires_grad=True)\n", "y", {"reason": "not_found", "name": "y"}),
    ("n = 3\n", "n", {"reason": "not_tensor", "name": "n", "type": "int"}),
])
async def test_nothing_to_draw_is_a_reason_not_an_error(sandbox: Sandbox, source: str, target: str | None,
                                                        problem: dict[str, Any]) -> None:
    outcome = await sandbox.graph(source, target)
    assert outcome.status == "ok" and "graph" not in outcome.extra
    assert outcome.extra["graph_problem"] == problem


async def test_a_graph_of_ten_thousand_nodes_is_capped(sandbox: Sandbox) -> None:
    source = "import torch\nx = torch.ones(1, requires_grad=True)\ny = x\nfor _ in range(9999):\n    y = y * 1.0001\n"
    outcome = await sandbox.graph(source)
    graph = outcome.extra["graph"]
    assert graph["truncated"] is True and graph["total"] == 10_000
    assert len([n for n in graph["nodes"] if n["kind"] != "const"]) == 150


async def test_errors_and_timeouts_come_back_as_for_evaluate(sandbox: Sandbox) -> None:
    outcome = await sandbox.graph("import torch\nx = torch.ones(2, requires_grad=True)\ny = x / undefined\n")
    assert outcome.status == "error" and "NameError" in outcome.error and "graph" not in outcome.extra
    outcome = await sandbox.graph("while True:\n    pass\n")
    assert outcome.status == "timeout"
    outcome = await sandbox.graph("def broken(:\n")
    assert outcome.status == "error" and "SyntaxError" in outcome.error


async def test_evaluate_carries_no_graph(sandbox: Sandbox) -> None:
    outcome = await sandbox.evaluate(SIN, [])
    assert outcome.status == "ok" and "graph" not in outcome.extra and "graph_problem" not in outcome.extra


@pytest.mark.parametrize("bad", [
    {"nodes": []},
    {"root": {}, "nodes": [{"id": 1, "kind": "backward", "name": "X"}]},
    {"root": {}, "nodes": [{"id": 0, "kind": "evil", "name": "X"}]},
    {"root": {}, "nodes": [{"id": 0, "kind": "leaf", "name": "X", "tensor": {"shape": [-1]}}]},
    {"root": {}, "nodes": [{"id": 0, "kind": "const", "name": "X"}], "edges": [{"src": 0, "dst": 5, "input_nr": 0}]},
    {"root": {}, "nodes": [{"id": i, "kind": "const", "name": "X"} for i in range(protocol.GRAPH_NODES + 1)]},
    "not a dict",
])
async def test_untrusted_graphs_are_refused(bad: Any) -> None:
    with pytest.raises(ValueError):
        protocol.clean_graph(bad)


async def test_untrusted_text_is_cut() -> None:
    graph = protocol.clean_graph({"root": {"name": "y" * 5000, "requires_grad": "yes"},
                                  "nodes": [{"id": 0, "kind": "backward", "name": "N" * 500, "extra": 1}]})
    assert len(graph["root"]["name"]) <= 80 and graph["root"]["requires_grad"] is False
    assert len(graph["nodes"][0]["name"]) <= 80 and "extra" not in graph["nodes"][0]


async def test_every_lesson_graph_in_the_course_draws(sandbox: Sandbox) -> None:
    from bot.content import load_course
    from dialogs.course import Explain

    course = load_course(REPO / "content")
    steps = [st for sec in course.sections() for st in sec.steps if isinstance(st, Explain) and st.graph]
    assert len(steps) >= 6
    by_section = {st.id.split(".")[0] + "." + st.id.split(".")[1] for st in steps}
    assert {"p2.grad-fn", "p2.next-functions", "bonus.chain-game"} <= by_section
    for step in steps:
        assert step.code is not None
        outcome = await sandbox.graph(step.code, step.graph)
        assert outcome.status == "ok", (step.id, outcome.error)
        graph = outcome.extra.get("graph")
        assert graph is not None, (step.id, outcome.extra.get("graph_problem"))
        assert graph["root"]["name"] == step.graph and not graph["truncated"]
        assert any(n["kind"] == "leaf" for n in graph["nodes"]), step.id

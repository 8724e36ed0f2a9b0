"""Graph pictures in the shells: PNG with Graphviz, Telegram photos through the fake Bot API, the terminal."""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from bot import console as console_module
from bot import graphs
from bot.console import Console
from bot.sandbox import Sandbox, SandboxConfig
from bot.service import Tutor
from bot.storage import Repository
from dialogs.evaluation import CheckSpec, EvalOutcome
from dialogs.messages import Command, GraphView, Reply, Start, Text
from tests.support.driver import NOW, mini_course
from tests.support.fake_bot_api import FakeBotAPI
from tests.support.telegram_bot import Chat, texts
from tests.test_graph_engine import SIN_GRAPH, SQUARE_GRAPH, graph_course


def assert_png(data: bytes | None) -> tuple[int, int]:
    assert data is not None and data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width > 0 and height > 0
    return width, height


# ------------------------------------------------------------------------------------------ pictures


async def test_a_graph_becomes_a_valid_png() -> None:
    _width, height = assert_png(await graphs.draw_png(SIN_GRAPH))
    assert graphs.png_size(await graphs.draw_png(SQUARE_GRAPH) or b"") is not None
    assert graphs.fits_a_photo(await graphs.draw_png(SIN_GRAPH) or b"") and height > 100
    source = graphs.source(SIN_GRAPH)
    for label in ("SinBackward0", "saved: self (3,)", "AccumulateGrad", "requires_grad=True", ".grad_fn"):
        assert label in source
    assert "(constant: no gradient)" in graphs.source(SQUARE_GRAPH)


async def test_names_from_learners_code_cannot_break_the_dot_source() -> None:
    evil = dict(SIN_GRAPH, root={"name": 'y"]; evil [label="x', "shape": [3], "requires_grad": True})
    assert_png(await graphs.draw_png(evil))  # more in test_graph_drawing


async def test_without_dot_there_is_no_picture(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(graphs.shutil, "which", lambda name: None)
    assert await graphs.draw_png(SIN_GRAPH) is None and not graphs.dot_available()


CHAIN = {"root": {"name": "y", "shape": [1], "requires_grad": True},
         "nodes": [{"id": i, "kind": "backward", "name": "MulBackward0", "saved": []} for i in range(150)],
         "edges": [{"src": i, "dst": i + 1, "input_nr": 0} for i in range(149)], "truncated": True, "total": 10000}


async def test_a_capped_graph_of_150_nodes_is_not_drawn() -> None:
    assert graphs.too_big(CHAIN) and await graphs.draw_png(CHAIN) is None
    course = mini_course()
    for lang, words in (("en", "150 nodes and 149 edges — too many to draw legibly"), ("zh", "150 个节点、149 条边")):
        note = graphs.no_picture_note(CHAIN, lambda key, lang=lang, **values: course.t(lang, key, **values), "-")
        assert words in note and str(graphs.MAX_NODES) in note


# ------------------------------------------------------------------------------------------ Telegram

SIN_LINES = "/graph\nimport torch\nx = torch.tensor([0.5, 1.0], requires_grad=True)\n" \
            "z = torch.ones(2, requires_grad=True)\ny = (x**2 + z).sin()"


@pytest.mark.slow
async def test_graph_in_telegram_sends_a_photo(server: FakeBotAPI, run_bot: Callable[..., Any],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    bot = await run_bot(mini_course(), Sandbox(SandboxConfig(workers=1)))
    chat = Chat(server, bot, 951)
    await chat.send("/start")
    state = bot.state(chat.id)
    new = await chat.send(SIN_LINES)
    (photo,) = [m for m in new if m.kind == "photo"]
    assert_png(photo.photo)
    caption = photo.plain_text or ""
    assert "The autograd graph of y: 5 nodes; leaf tensors: 2 (x, z)" in caption
    assert "<code>y</code>" in (photo.caption or "")
    assert bot.state(chat.id) == state  # the course did not move

    new = await chat.send("/graph y: import torch\ny = torch.ones(2)\nw = torch.ones(2, requires_grad=True) * 2")
    assert "y has no graph" in texts(new)
    new = await chat.send("/graph")
    assert "draws the autograd graph" in texts(new)
    new = await chat.send("/graph import torch\nx = torch.ones(2, requires_grad=True)\ny = x / nothing")
    assert "NameError" in texts(new)

    new = await chat.send("/graph\nimport torch\nx = torch.ones(2, requires_grad=True)\ny = x\n"
                          "for _ in range(70):\n    y = y * 2")
    assert not [m for m in new if m.kind == "photo"]
    shown = texts(new)
    assert "141 nodes and 140 edges — too many to draw legibly" in shown and "MulBackward0" in shown  # 70 constants

    monkeypatch.setattr(graphs.shutil, "which", lambda name: None)  # no Graphviz: the text tree
    new = await chat.send(SIN_LINES)
    assert not [m for m in new if m.kind == "photo"]
    shown = texts(new)
    assert "Graphviz is not installed" in shown and "└─ SinBackward0 · saved: self (2,)" in shown
    assert "AccumulateGrad → x (2,) requires_grad" in shown


# ------------------------------------------------------------------------------------------ terminal


class GraphEvaluator:
    """Draws every graph as ``graph`` (``SQUARE_GRAPH``); counts the calls (the service caches lesson graphs)."""

    def __init__(self, graph: dict[str, Any] = SQUARE_GRAPH) -> None:
        self.drawn = graph
        self.calls: list[tuple[str, str | None]] = []

    async def evaluate(self, code: str, checks: Sequence[CheckSpec]) -> EvalOutcome:
        return EvalOutcome("ok")

    async def graph(self, code: str, target: str | None = None) -> EvalOutcome:
        self.calls.append((code, target))
        return EvalOutcome("ok", extra={"graph": self.drawn})

    def is_saturated(self) -> bool:
        return False


async def test_a_lesson_step_with_a_graph_shows_it_in_the_terminal(tmp_path: Path) -> None:
    course = graph_course(tmp_path)
    repo = Repository(f"sqlite:///{tmp_path / 'tutor.db'}")
    try:
        evaluator = GraphEvaluator()
        tutor = Tutor(course, repo, evaluator, clock=lambda: NOW)
        out = io.StringIO()
        term = Console(tutor, "console:ada", "en", stdin=io.StringIO(""), stdout=out, graphs_dir=tmp_path / "graphs")
        step = course.section("m1.two").steps[-1]
        await term.send_event(Start())
        for _ in range(40):
            state = tutor.state("console:ada")
            assert state is not None
            if state.step == step.id:
                break
            await term.send_event(Text("answer" if state.phase in ("question", "retry") else "go"))
        assert evaluator.calls == [(step.code, "y")]
        shown = out.getvalue()
        assert "The autograd graph of y" in shown and "AccumulateGrad → x (2,) requires_grad" in shown
        (saved,) = (tmp_path / "graphs").glob("*.png")
        assert_png(saved.read_bytes())
        assert f"Picture saved: {saved}" in shown
        await term.send_event(Command("lang", "en"))  # the step is shown again: its graph comes from the cache
        assert len(evaluator.calls) == 1
        assert shown.count("The autograd graph of y") < out.getvalue().count("The autograd graph of y")
    finally:
        repo.close()


async def test_graph_command_in_the_terminal_without_dot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(graphs.shutil, "which", lambda name: None)
    repo = Repository(f"sqlite:///{tmp_path / 'tutor.db'}")
    try:
        evaluator = GraphEvaluator()
        tutor = Tutor(mini_course(), repo, evaluator, clock=lambda: NOW)
        out = io.StringIO()
        term = Console(tutor, "console:bo", "en", stdin=io.StringIO(""), stdout=out, graphs_dir=tmp_path / "graphs")
        await term.send_event(console_module.parse_line("/graph y: import torch; y = torch.ones(2) * 2"))
        assert evaluator.calls == [("import torch; y = torch.ones(2) * 2", "y")]
        shown = out.getvalue()
        assert "Graphviz is not installed" in shown and "└─ AddBackward0" in shown
        assert not (tmp_path / "graphs").exists()
    finally:
        repo.close()


async def test_a_graph_too_big_or_not_drawn_in_the_terminal_says_why(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    repo = Repository(f"sqlite:///{tmp_path / 'tutor.db'}")
    try:
        tutor = Tutor(mini_course(), repo, GraphEvaluator(CHAIN), clock=lambda: NOW)
        out = io.StringIO()
        term = Console(tutor, "console:cy", "zh", stdin=io.StringIO(""), stdout=out, graphs_dir=tmp_path / "graphs")
        await term.send_event(Start())
        await term.send_event(Command("lang", "zh"))
        await term.send_event(console_module.parse_line("/graph y = x * 2"))
        assert "150 个节点、149 条边" in out.getvalue() and "MulBackward0" in out.getvalue()
        assert not (tmp_path / "graphs").exists()

        async def fails(*args: Any, **kwargs: Any) -> None:
            return None

        monkeypatch.setattr(graphs, "run_dot", fails)  # dot ran too long, or no slot was free
        monkeypatch.setattr(graphs, "_CACHE", {})
        tutor = Tutor(mini_course(), repo, GraphEvaluator(SIN_GRAPH), clock=lambda: NOW)
        out = io.StringIO()
        term = Console(tutor, "console:di", "en", stdin=io.StringIO(""), stdout=out, graphs_dir=tmp_path / "graphs")
        await term.send_event(console_module.parse_line("/graph y = x * 2"))
        shown = out.getvalue()
        assert "drawing it took too long" in shown and "SinBackward0" in shown and "Graphviz" not in shown
    finally:
        repo.close()


def test_graph_views_reach_every_renderer() -> None:
    replies: list[Reply] = [GraphView(SIN_GRAPH, "c", "t")]
    assert replies[0].no_picture == "" and replies[0].saved_as == ""


@pytest.mark.slow
async def test_a_lesson_picture_comes_before_its_continue_in_telegram(server: FakeBotAPI, run_bot: Callable[..., Any],
                                                                      tmp_path: Path) -> None:
    course = graph_course(tmp_path)
    step = course.section("m1.two").steps[-1]
    bot = await run_bot(course, Sandbox(SandboxConfig(workers=1)))
    chat = Chat(server, bot, 952)
    await chat.send("/start")
    new = await chat.send(f"/goto {step.id}")
    await server.wait_for(lambda: any(m.kind == "photo" for m in chat.messages), 60, what="the lesson's picture")
    await server.wait_for(lambda: chat.messages[-1].kind != "photo", 10, what="Continue under the picture")
    after = [m for m in chat.messages if m.message_id >= new[0].message_id]
    photo = next(i for i, m in enumerate(after) if m.kind == "photo")
    with_go = [i for i, m in enumerate(after) if "Continue ▶️" in m.button_texts]
    assert with_go == [len(after) - 1] and photo < with_go[0], [m.summary() for m in after]

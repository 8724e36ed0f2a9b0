"""Pictures a lesson's code draws (issue 14, §4): ``torchviz.make_dot`` beside our own graph drawing, and
gradient histograms per layer, in the bonus (steps with ``picture: true``).

The code runs in the real sandbox. A ``make_dot`` graph comes back as data (recorded node and edge calls)
and is drawn by the bot's caged ``dot`` with labels built by us; a matplotlib figure comes back as a
small PNG that the bot only checks (signature, size, sides) and forwards. Both are learner-controlled
data on the way out: the protocol's checks are attacked here too.
"""

from __future__ import annotations

import base64
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot import graphs
from bot.content import default_content_dir, load_course
from bot.sandbox import Sandbox, SandboxConfig, protocol
from bot.telegram.outbox import decode, encode
from dialogs import graph as text_graphs
from dialogs.course import Course
from dialogs.evaluation import EvalOutcome
from dialogs.messages import EvalResult, Evaluate, GraphView, Photo, Say
from tests.support.driver import Driver
from tests.support.fake_bot_api import FakeBotAPI
from tests.support.telegram_bot import Chat

TORCHVIZ_STEP = ("bonus.chain-game", "bonus.chain-game.torchviz")
HISTOGRAM_STEP = ("bonus.grad-stats", "bonus.grad-stats.histograms")


@pytest.fixture(scope="module")
def course() -> Course:
    return load_course(default_content_dir())


def png(width: int, height: int, extra: bytes = b"") -> bytes:
    """A real (tiny, grey) PNG of the given size."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(min(height, 4)))
    return (protocol.PNG_SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + extra + chunk(b"IEND", b""))


def labels(graph: dict[str, Any]) -> list[str]:
    return [n["label"] for n in graph["nodes"]]


# ------------------------------------------------------------------------------- the real sandbox


@pytest.mark.slow
async def test_the_course_pictures_come_out_of_the_real_sandbox(course: Course) -> None:
    picture_steps = [st for sec in course.sections() for st in sec.steps if getattr(st, "picture", False)]
    assert {st.id for st in picture_steps} >= {TORCHVIZ_STEP[1], HISTOGRAM_STEP[1]}
    async with Sandbox(SandboxConfig(workers=1, wall_seconds=20.0)) as sb:
        torchviz = await sb.pictures(course.step(*TORCHVIZ_STEP).code)
        histograms = await sb.pictures(course.step(*HISTOGRAM_STEP).code)
    assert torchviz.status == "ok", torchviz.error
    (graph,) = torchviz.extra["pictures"]["graphs"]
    assert torchviz.extra["pictures"]["images"] == []
    # torchviz's own picture of z = (x**2 + y).sin(): the params it was given, blue; the output, green
    assert sorted(labels(graph)) == sorted(["\n ()", "SinBackward0", "AddBackward0", "PowBackward0", "AccumulateGrad",
                                            "AccumulateGrad", "x\n ()", "y\n ()"])
    fills = {n["label"]: n["fill"] for n in graph["nodes"]}
    assert fills["x\n ()"] == fills["y\n ()"] == "lightblue" and fills["\n ()"] == "darkolivegreen1"
    assert len(graph["edges"]) == 7
    tree = text_graphs.dot_tree(graph)
    assert tree.splitlines()[:3] == ["◉ ()", "└─ SinBackward0", "   └─ AddBackward0"]
    assert "x ()" in tree and "y ()" in tree
    if graphs.dot_available():
        drawn = await graphs.draw_png(graph)
        assert drawn is not None and drawn.startswith(protocol.PNG_SIGNATURE)

    assert histograms.status == "ok", histograms.error
    assert histograms.extra["pictures"]["graphs"] == []
    (image,) = histograms.extra["pictures"]["images"]
    data = base64.b64decode(image)
    assert protocol.png_header(data) == (810, 252)  # 9 x 2.8 inches at 90 dpi
    assert len(data) < protocol.PNG_BYTES


@pytest.mark.slow
async def test_pictures_from_code_that_pushes_the_limits() -> None:
    code = (
        "import torch\n"
        "from torchviz import make_dot\n"
        "import matplotlib.pyplot as plt\n"
        "x = torch.ones(2, requires_grad=True)\n"
        "weird = '<<IMG SRC=\"/etc/passwd\"/>> \\\\N ' + 'x' * 5000\n"
        "for _ in range(4):\n"
        "    make_dot((x * 2).sum(), params={weird: x})\n"
        "for _ in range(5):\n"
        "    plt.figure(figsize=(200, 200))\n"
        "    plt.plot([1, 2, 3])\n"
    )
    async with Sandbox(SandboxConfig(workers=1, wall_seconds=30.0)) as sb:
        outcome = await sb.pictures(code)
    assert outcome.status == "ok", outcome.error
    found = outcome.extra["pictures"]
    assert len(found["graphs"]) == 2 and len(found["images"]) == 2  # at most two of each
    for image in found["images"]:
        width, height = protocol.png_header(base64.b64decode(image)) or (0, 0)
        assert width <= 9 * 90 and height <= 7 * 90  # a 200-inch figure is drawn at 9 x 7 inches
    (named,) = [label for label in labels(found["graphs"][0]) if "IMG" in label]
    assert len(named) <= protocol.PICTURE_LABEL_CHARS
    source = graphs.source(found["graphs"][0])
    assert "<IMG" not in source and "&lt;&lt;IMG SRC=&quot;/etc/passwd&quot;" in source


# ------------------------------------------------------------------------------- the protocol's checks


def test_a_figure_must_be_a_small_png() -> None:
    good = png(300, 200)
    assert base64.b64decode(protocol.clean_png(base64.b64encode(good).decode())) == good
    bad = {
        "not base64": "%%%",
        "not a PNG": base64.b64encode(b"GIF89a" + b"\0" * 40).decode(),
        "a PNG claiming 100000 pixels a side": base64.b64encode(png(100_000, 10)).decode(),
        "a PNG with a zero side": base64.b64encode(png(0, 10)).decode(),
        "too many bytes": base64.b64encode(png(10, 10, b"\0" * protocol.PNG_BYTES)).decode(),
        "not text": 12,
    }
    for why, value in bad.items():
        with pytest.raises(ValueError):
            protocol.clean_png(value)
            pytest.fail(why)


def test_a_recorded_graph_is_rebuilt_from_known_fields_only() -> None:
    raw = {"style": "torchviz", "nodes": [{"id": 0, "label": "a\x1b[31m" + "y" * 500, "fill": "lightblue", "x": 1},
                                          {"id": 1, "label": "MulBackward0", "fill": ""}],
           "edges": [{"src": 1, "dst": 0, "dotted": "yes", "arrow": False, "color": "red"}]}
    clean = protocol.clean_dot_graph(raw)
    assert set(clean["nodes"][0]) == {"id", "label", "fill"} and len(clean["nodes"][0]["label"]) <= 200
    assert clean["edges"] == [{"src": 1, "dst": 0, "dotted": False, "arrow": False}]
    for broken in ({**raw, "style": "mine"}, {**raw, "nodes": []},
                   {**raw, "nodes": [{"id": 0, "label": "a", "fill": "red; URL=x"}]},
                   {**raw, "edges": [{"src": 0, "dst": 7}]},
                   {**raw, "nodes": [{"id": 3, "label": "a", "fill": ""}]}):
        with pytest.raises(ValueError):
            protocol.clean_dot_graph(broken)
    # one bad picture is dropped, the good ones stay
    mixed = protocol.clean_pictures({"graphs": [raw, {"style": "mine"}],
                                     "images": ["%%%", base64.b64encode(png(20, 20)).decode()]})
    assert len(mixed["graphs"]) == 1 and len(mixed["images"]) == 1 and mixed["dropped"] == 2


def test_a_hostile_label_is_drawn_as_text() -> None:
    graph = protocol.clean_dot_graph({"style": "torchviz", "nodes": [
        {"id": 0, "label": '<<IMG SRC="/etc/passwd"/>>\\G', "fill": ""},
        {"id": 1, "label": "x\n (2)", "fill": "lightblue"}], "edges": [{"src": 1, "dst": 0}]})
    source = graphs.source(graph)
    assert "<IMG" not in source and "\\\\G" in source and "x<BR/>(2)" in source
    tree = text_graphs.dot_tree(graph)
    assert all(line.startswith(("◉ ", "└─ ", "├─ ", "   ", "│  ")) for line in tree.splitlines())


# ------------------------------------------------------------------------------- the engine


def at(course: Course, section: str, step: str) -> tuple[Driver, Evaluate]:
    d = Driver(course)
    d.start()
    d.command("goto", step)
    assert d.state.step == step
    (effect,) = [e for e in d.last.effects if isinstance(e, Evaluate)]
    assert effect.pictures and effect.cacheable and effect.graph is None
    assert effect.code == course.step(section, step).code
    assert not [b for r in d.last.replies if isinstance(r, Say) for row in r.buttons for b in row]  # Continue waits
    return d, effect


def test_a_torchviz_graph_and_a_figure_come_before_continue(course: Course) -> None:
    d, effect = at(course, *TORCHVIZ_STEP)
    graph = protocol.clean_dot_graph({"style": "torchviz", "nodes": [{"id": 0, "label": "SinBackward0", "fill": ""}],
                                      "edges": []})
    figure = png(40, 30)
    d.event(EvalResult(effect.request, EvalOutcome("ok", extra={"pictures": {
        "graphs": [graph], "images": [base64.b64encode(figure).decode()], "dropped": 0}})))
    kinds = [type(r).__name__ for r in d.last.replies]
    assert kinds == ["GraphView", "Photo", "Say"]
    view, photo, go = d.last.replies
    assert isinstance(view, GraphView) and "make_dot" in view.caption and view.tree == "◉ SinBackward0"
    assert isinstance(photo, Photo) and photo.data == figure
    assert isinstance(go, Say) and go.text == course.t("en", "lesson_picture_go") and d.buttons()[0].action == "go"


def test_a_lesson_whose_code_drew_nothing_says_so(course: Course) -> None:
    d, effect = at(course, *HISTOGRAM_STEP)
    d.event(EvalResult(effect.request, EvalOutcome("ok", extra={"pictures": {"graphs": [], "images": []}})))
    assert course.t("en", "picture_none") in d.text() and d.buttons()[-1].action == "go"
    d.send("go")
    assert d.state.step != HISTOGRAM_STEP[1]


def test_no_sandbox_no_picture_but_continue(course: Course) -> None:
    d, effect = at(course, *TORCHVIZ_STEP)
    d.event(EvalResult(effect.request, EvalOutcome("unavailable")))
    assert course.t("en", "picture_down") in d.text() and "graph" not in d.text()
    assert d.buttons()[-1].action == "go"


def test_a_photo_with_bytes_survives_the_outbox() -> None:
    photo = Photo("", "📊 caption", png(12, 9))
    kind, payload = encode(photo)
    assert kind == "photo" and decode(kind, payload) == photo


def test_picture_needs_code_and_excludes_graph() -> None:
    from dialogs.course import Explain

    base = {"kind": "explain", "id": "s1", "point": {"en": "p", "zh": "p"}, "text": {"en": "t", "zh": "t"}}
    with pytest.raises(ValueError, match="'picture' needs 'code'"):
        Explain.model_validate({**base, "picture": True})
    with pytest.raises(ValueError, match="either its 'graph' or its 'picture'"):
        Explain.model_validate({**base, "picture": True, "graph": "y", "code": "y = 1"})


# ------------------------------------------------------------------------------- the shells


@pytest.mark.slow
async def test_the_histograms_reach_telegram_as_a_photo(server: FakeBotAPI, run_bot: Callable[..., Any],
                                                       course: Course) -> None:
    bot = await run_bot(course, Sandbox(SandboxConfig(workers=1, wall_seconds=20.0)))
    chat = Chat(server, bot, 9531)
    await chat.send("/start")
    await chat.send(f"/goto {HISTOGRAM_STEP[1]}")
    await server.wait_for(lambda: any(m.kind == "photo" for m in chat.messages), 90, what="the histograms")
    await server.wait_for(lambda: "Continue ▶️" in chat.messages[-1].button_texts, 20, what="Continue under it")
    (photo,) = [m for m in chat.messages if m.kind == "photo"]
    assert protocol.png_header(photo.file) == (810, 252)
    assert "matplotlib" in (photo.plain_text or "")


@pytest.mark.slow
def test_the_terminal_saves_the_pictures(tmp_path: Path) -> None:
    from tests.support.terminal import ChatProcess

    with ChatProcess(tmp_path / "tutor.db", "--lang", "en", env={"DATA_DIR": str(tmp_path / "data")}) as chat:
        chat.expect("Ready?")
        chat.send(f"/goto {TORCHVIZ_STEP[1]}")
        chat.expect("make_dot", timeout=90)
        chat.expect("That is what the code above draws", timeout=90)
        chat.send(f"/goto {HISTOGRAM_STEP[1]}")
        chat.expect("[picture: ", timeout=90)
        chat.expect("That is what the code above draws", timeout=90)
        chat.send("/quit")
        assert chat.wait() == 0
    pictures = sorted((tmp_path / "data" / "graphs").glob("*.png"))
    sizes = sorted(protocol.png_header(p.read_bytes()) or (0, 0) for p in pictures)
    assert (810, 252) in sizes  # the histograms
    assert len(pictures) == (2 if graphs.dot_available() else 1)  # and torchviz's graph, where dot draws

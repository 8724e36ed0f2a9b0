"""Drawing autograd graphs safely (issue 10): learner text is never Graphviz markup, ``dot`` is caged and
limited, a few at a time, off the thread pool; graphs too big to read are not drawn.

Every test asserts what is visible (the SVG's text, its elements, what the caged process saw), never
how fast something was.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import random
import shutil
import stat
import struct
import tempfile
import time
import unicodedata
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from bot import graphs
from tests.test_graph_engine import SIN_GRAPH, SQUARE_GRAPH

pytestmark = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot is not installed")

SVG = "{http://www.w3.org/2000/svg}"
REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------- helpers


def tiny_png() -> bytes:
    """A real 4x4 red PNG: the canary a hostile label tries to draw."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * 4 for _ in range(4))
    return (graphs.PNG_SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A world-readable directory on the host (readable by uid 65534 too: only the cage hides it)."""
    path = Path(tempfile.mkdtemp(prefix="graph-canary-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def canary(open_dir: Path) -> Path:
    path = open_dir / "canary.png"
    path.write_bytes(tiny_png())
    path.chmod(0o644)
    return path


@pytest.fixture
def repo_canary() -> Iterator[Path]:
    """A canary inside the repository (the bot's own files)."""
    path = REPO / f".graph-canary-{uuid.uuid4().hex[:8]}.png"
    path.write_bytes(tiny_png())
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def visible(text: str) -> str:
    """What a label must show for ``text`` (the rule, written out independently of the code)."""
    out = []
    for char in text:
        category = unicodedata.category(char)
        if char in "\n\r\t":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[char])
        elif category == "Cc":
            out.append(f"\\x{ord(char):02x}")
        elif category in ("Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            out.append(f"<U+{ord(char):04X}>")
        else:
            out.append(char)
    return "".join(out)


def parse_svg(data: bytes) -> ElementTree.Element:
    return ElementTree.fromstring(data)


def svg_nodes(svg: ElementTree.Element) -> dict[str, str]:
    """Node id -> the node's text (its lines joined), from ``dot -Tsvg``."""
    nodes = {}
    for group in svg.iter(f"{SVG}g"):
        if group.get("class") == "node":
            title = group.find(f"{SVG}title")
            assert title is not None
            texts = "".join(t.text or "" for t in group.iter(f"{SVG}text"))
            nodes[title.text or ""] = texts.replace("\xa0", " ")
    return nodes


def svg_edges(svg: ElementTree.Element) -> int:
    return sum(1 for g in svg.iter(f"{SVG}g") if g.get("class") == "edge")


def images(svg: ElementTree.Element) -> list[dict[str, str]]:
    return [dict(e.attrib) for e in svg.iter() if e.tag.endswith("image")]


def hostile_graph(text: str) -> dict[str, Any]:
    """``text`` in every place learner code controls: names, dtypes, saved names and values."""
    return {
        "root": {"name": text, "shape": [3], "dtype": text[:20], "requires_grad": True},
        "nodes": [
            {"id": 0, "kind": "backward", "name": text, "saved": [{"name": text, "value": text},
                                                                 {"name": "_saved_self", "shape": [3]}]},
            {"id": 1, "kind": "leaf", "name": "AccumulateGrad",
             "tensor": {"name": text, "shape": [3], "dtype": text, "requires_grad": True}},
            {"id": 2, "kind": "const", "name": "None"},
        ],
        "edges": [{"src": 0, "dst": 1, "input_nr": 0, "slot": 0}, {"src": 0, "dst": 2, "input_nr": 1, "slot": 1}],
        "truncated": False,
        "total": 2,
    }


#: Node ids and edge count of every ``hostile_graph``: ours, whatever the text.
HOSTILE_NODES = {"root", "n0", "n1", "n1t", "n2"}
HOSTILE_EDGES = 4  # root -> n0, n1 -> n1t, n0 -> n1, n0 -> n2


async def draw_svg(graph: dict[str, Any]) -> ElementTree.Element:
    data = await graphs.run_dot(graphs.source(graph), "svg")
    assert data is not None, "dot refused the source we built"
    return parse_svg(data)


def assert_no_raw_controls(data: bytes) -> None:
    text = data.decode("utf-8")
    for char in ("\x00", "\x1b", "\u202e", "\u2066", "\x07"):
        assert char not in text


# ------------------------------------------------------------------------- learner text is only text


def hostile_names(canary: Path) -> list[str]:
    return [
        f'<<IMG SRC="{canary}"/>>',
        f'<<TABLE><TR><TD><IMG SRC="{canary}"/></TD></TR></TABLE>>',
        f'<TABLE><TR><TD><IMG SRC="{canary}"/></TD></TR></TABLE>',
        'x"]; evil [label="pwned',
        'y"]\nevil2 [shape=box image="/etc/passwd"]; z [label="',
        "\\G\\N\\L\\l\\E\\T\\H\\\\",
        "a\x00b\x1bc\u202ed\u2066e\x07f",
        "&amp; &lt;b&gt; &#92;N <b>bold</b> ]; } { '\"",
        "中文名字 😀 🧪 ∂y/∂x",
        "line one\nline two\r\n\ttab",
    ]


async def test_hostile_names_are_drawn_as_literal_text(canary: Path) -> None:
    for name in hostile_names(canary):
        graph = hostile_graph(name)
        data = await graphs.run_dot(graphs.source(graph), "svg")
        assert data is not None, name
        svg = parse_svg(data)
        nodes = svg_nodes(svg)
        assert set(nodes) == HOSTILE_NODES, name  # no node injected, none lost
        assert svg_edges(svg) == HOSTILE_EDGES, name
        assert images(svg) == [], name
        assert str(canary) not in "".join(str(a) for a in images(svg))
        # shown whole, or (longer than a label holds) its start and its end around a "…"
        pieces = [visible(name)] if len(name) <= graphs.NAME_CHARS else [visible(name[:30]), "…", visible(name[-20:])]
        for node_id in ("root", "n0", "n1t"):
            assert all(piece in nodes[node_id] for piece in pieces), (name, node_id, nodes[node_id])
        assert_no_raw_controls(data)


async def test_the_same_names_through_the_plain_runner_draw_no_host_file(canary: Path) -> None:
    """Escaping alone protects: even ``dot`` without the cage (it could read the canary) draws text."""
    plain = next(way for way in graphs.candidates() if way.name == "plain")
    for name in hostile_names(canary)[:3]:
        data = await graphs.run_dot(graphs.source(hostile_graph(name)), "svg", way=plain)
        assert data is not None
        svg = parse_svg(data)
        assert images(svg) == [] and set(svg_nodes(svg)) == HOSTILE_NODES
        assert visible(name) in svg_nodes(svg)["n0"]
    # ... while the same canary as real markup is drawn by that runner: the test above means something.
    raw = f'digraph {{ a [label=<<TABLE><TR><TD><IMG SRC="{canary}"/></TD></TR></TABLE>>] }}'
    data = await graphs.run_dot(raw, "svg", way=plain)
    assert data is not None and [str(canary)] == [i.get("{http://www.w3.org/1999/xlink}href") for i in
                                                  images(parse_svg(data))]


async def test_a_very_long_name_is_cut_in_the_middle() -> None:
    name = "A" * 10 + "é" * 2480 + "\u202e" * 10 + "m" * 2490 + "Z" * 10  # 5,000 characters
    svg = await draw_svg(hostile_graph(name))
    nodes = svg_nodes(svg)
    assert set(nodes) == HOSTILE_NODES
    for node_id in ("root", "n0", "n1t"):
        shown = nodes[node_id]
        assert shown.startswith("AAAAAAAAAAéé") and "mmZZZZZZZZZZ" in shown and "…" in shown
        assert len(shown) < graphs.NAME_CHARS + graphs.SAVED_CHARS + 40
    width = float(svg.get("width", "0pt").removesuffix("pt"))
    assert 0 < width < 2000


def test_text_lines_make_everything_visible_and_escaped() -> None:
    assert graphs.text_lines("a<b>&\"'") == ["a&lt;b&gt;&amp;&quot;&#x27;"]
    assert graphs.text_lines("\\N") == ["\\\\N"]  # dot turns "\\" back into one backslash
    assert graphs.text_lines("x\x1b\u202e\n") == ["x\\\\x1b&lt;U+202E&gt;\\\\n"]
    assert graphs.text_lines("y" * 100, limit=80, width=40) == ["y" * 40, "y" * 12 + "…" + "y" * 27]
    assert graphs.text_lines("") == [""]
    assert "<BR/>" not in "".join(graphs.text_lines("<BR/>" * 30, limit=1000))
    cut = "head\n... [cut] ...\ntail"  # what protocol.clean_text puts in a cut string
    assert graphs.text_lines(cut) == ["head…tail"]


def test_the_source_has_our_structure_only() -> None:
    text = graphs.source(hostile_graph('x"]; evil [label="pwned <<IMG SRC="/etc/passwd"/>>'))
    statements = [line.strip() for line in text.splitlines()]
    assert not [line for line in statements if line.startswith("evil")]  # inside labels only
    assert "<IMG" not in text and "&lt;&lt;IMG" in text
    for label in ("SinBackward0", "saved: self (3,)", "AccumulateGrad", "requires_grad=True", ".grad_fn"):
        assert label in graphs.source(SIN_GRAPH)


# ---------------------------------------------------------------------------- dot itself is caged


async def test_every_way_to_start_dot_here_draws_the_same_picture() -> None:
    pictures = {}
    for way in graphs.candidates():
        png = await graphs.run_dot(graphs.source(SIN_GRAPH), way=way)
        if png is None:
            continue  # not possible on this machine (e.g. no user namespaces): the choice skips it
        pictures[way.name] = graphs.png_size(png)
    assert "plain" in pictures and len(set(pictures.values())) == 1, pictures
    assert (await graphs.isolation()) is not None


async def test_the_way_is_chosen_once_and_falls_back_when_the_cage_fails(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    broken = graphs.Isolation("bwrap", ("/nonexistent/bwrap", "--"))
    plain = next(way for way in graphs.candidates() if way.name == "plain")
    monkeypatch.setattr(graphs, "candidates", lambda: [broken, plain])
    monkeypatch.setattr(graphs, "_CHOSEN", {})
    monkeypatch.setattr(graphs, "_CACHE", {})
    caplog.set_level("INFO", logger="bot.graphs")
    assert await graphs.isolation() == plain
    assert (await graphs.isolation()) is plain and graphs.png_size(await graphs.draw_png(SIN_GRAPH) or b"")
    chosen = [r.getMessage() for r in caplog.records if "plain process" in r.getMessage()]
    assert len(chosen) == 1 and "tried: bwrap" in chosen[0]  # logged once, as a warning
    assert "plain process" in await graphs.drawing_isolation()

    monkeypatch.setattr(graphs, "candidates", lambda: [broken])
    monkeypatch.setattr(graphs, "_CHOSEN", {})
    monkeypatch.setattr(graphs, "_FAILED", {})
    monkeypatch.setattr(graphs, "_CACHE", {})
    assert await graphs.isolation() is None and await graphs.draw_png(SIN_GRAPH) is None
    assert await graphs.isolation() is None  # not tried again at once
    assert len([r for r in caplog.records if "cannot draw here" in r.getMessage()]) == 1
    assert "fails here" in await graphs.drawing_isolation()


async def caged() -> graphs.Isolation:
    way = await graphs.isolation()
    if way is None or way.name == "plain":
        pytest.skip("bubblewrap is not usable here: dot runs as a plain process (see graphs.candidates)")
    return way


async def test_a_caged_dot_cannot_draw_host_files(canary: Path, repo_canary: Path) -> None:
    """Raw markup straight to the runner (no escaping): the host files are not there to be drawn."""
    way = await caged()
    for path in (canary, repo_canary, Path("/etc/passwd")):
        raw = (f'digraph {{ a [label=<<TABLE><TR><TD><IMG SRC="{path}"/></TD></TR></TABLE>>]; '
               f'b [image="{path}"]; c [shapefile="{path}"] }}')
        data = await graphs.run_dot(raw, "svg", way=way)
        assert data is None or images(parse_svg(data)) == [], path


async def test_the_cage_hides_the_host_and_drops_privileges(monkeypatch: pytest.MonkeyPatch) -> None:
    await caged()
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:secret-token-of-the-bot")
    for way in graphs.candidates():  # every way this machine can start dot, the plain one included
        if await graphs.run_dot("", way=way, program=["/bin/true"]) is None:
            continue  # not possible here (the choice skips it too)

        async def run(*program: str, way: graphs.Isolation = way) -> str:
            out = await graphs.run_dot("", way=way, program=program)
            assert out is not None, (way.name, program)
            return out.decode()

        if way.name != "plain":
            top = set((await run("/bin/ls", "-A", "/")).split())
            assert top <= {"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc", "var", "tmp", "proc",
                           "dev"}, top
            assert set((await run("/bin/ls", "-A", "/etc")).split()) <= {"fonts", "ld.so.cache"}
            status = dict(line.split(":\t") for line in (await run("/bin/cat", "/proc/self/status")).splitlines()
                          if ":\t" in line)
            assert {status[k].strip() for k in ("CapEff", "CapPrm", "CapBnd", "CapAmb")} == {"0000000000000000"}
            assert status["NoNewPrivs"].strip() == "1"
        environment = await run("/usr/bin/env")
        assert "secret-token" not in environment and "TELEGRAM" not in environment
        if os.geteuid() == 0:
            assert (await run("/usr/bin/id", "-u")).strip() == str(graphs.DRAW_UID), way.name
        text = await run("/bin/cat", "/proc/self/limits")
        limits = {line[:26].strip(): line[26:].split() for line in text.splitlines() if line.startswith("Max ")}
        assert limits["Max address space"][0] == str(graphs.LIMITS.memory)
        assert limits["Max cpu time"][0] == str(graphs.LIMITS.cpu_seconds)
        assert limits["Max core file size"][0] == "0"
        assert limits["Max file size"][0] == str(graphs.LIMITS.file_size)
        assert limits["Max open files"][0] == str(graphs.LIMITS.open_files)


async def test_dot_pointed_at_its_own_stdout_or_a_fifo_ends(open_dir: Path) -> None:
    """Files that block a reader: the run ends (a limit, the wall clock, or missing) and yields no picture."""
    fifo = open_dir / "fifo"
    os.mkfifo(fifo)
    fifo.chmod(stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IROTH)
    quick = graphs.DotLimits(wall=1.0)
    ways = [w for w in [await graphs.isolation(), *graphs.candidates()[-1:]] if w is not None]
    for way in ways:
        for target in ("/dev/stdout", "/dev/stdin", "/dev/zero", str(fifo)):
            for raw in (f'digraph {{ a [image="{target}"] }}', f'digraph {{ a [shapefile="{target}"] }}',
                        f'digraph {{ a [label=<<TABLE><TR><TD><IMG SRC="{target}"/></TD></TR></TABLE>>] }}'):
                data = await graphs.run_dot(raw, "svg", limits=quick, way=way)
                assert data is None or images(parse_svg(data)) == [], (way.name, raw)
    assert graphs.drawing_load()["running"] == 0


async def test_a_dense_graph_is_refused_before_drawing() -> None:
    nodes = [{"id": i, "kind": "backward", "name": "MulBackward0", "saved": []} for i in range(400)]
    edges = [{"src": i % 400, "dst": (i * 7 + 1) % 400, "input_nr": 0, "slot": 0} for i in range(2000)]
    dense = {"root": {"name": "y", "shape": [1], "requires_grad": True}, "nodes": nodes, "edges": edges,
             "truncated": False, "total": 400}
    assert graphs.too_big(dense)
    few_nodes_many_edges = dict(SQUARE_GRAPH, edges=[SQUARE_GRAPH["edges"][0]] * (graphs.MAX_EDGES + 1))
    assert graphs.too_big(few_nodes_many_edges)
    assert not graphs.too_big(SIN_GRAPH) and not graphs.too_big(SQUARE_GRAPH)
    before = graphs.drawing_load()["started"]
    assert await graphs.draw_png(dense) is None and await graphs.draw_png(few_nodes_many_edges) is None
    assert graphs.drawing_load()["started"] == before  # dot never started


def dense_dot(nodes: int, edges: int) -> str:
    pick = random.Random(10).randrange
    lines = [f"n{pick(nodes)} -> n{pick(nodes)};" for _ in range(edges)]
    return "digraph dense {\n" + "\n".join(lines) + "\n}"


async def test_the_raw_runner_stops_a_huge_dense_graph_by_its_limits() -> None:
    cpu = graphs.DotLimits(cpu_seconds=1, wall=60.0)  # the CPU limit ends it, not the wall clock
    assert await graphs.run_dot(dense_dot(600, 4000), limits=cpu) is None
    memory = graphs.DotLimits(memory=96 << 20, wall=60.0)
    many = "digraph big {\n" + "\n".join(f'n{i} [label="node {i} of many"];' for i in range(200_000)) + "\n}"
    assert await graphs.run_dot(many, limits=memory) is None
    wall = graphs.DotLimits(wall=1.0)
    assert await graphs.run_dot("", limits=wall, program=["/bin/sleep", "60"]) is None
    assert graphs.drawing_load()["running"] == 0


# ------------------------------------------------------------------------------ a few at a time


async def wait_for(condition: Any, what: str) -> None:
    """Until ``condition()`` holds (checked between events, not against a clock that decides the test)."""
    for _ in range(6000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def test_at_most_two_drawings_run_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(graphs, "DRAWING_SLOTS", 2)
    slow = graphs.DotLimits(wall=1.0)  # each fake drawing is ended by the wall clock
    runs = [graphs.run_dot("", limits=slow, program=["/bin/sleep", "60"], slot_wait=120) for _ in range(6)]
    results = await asyncio.gather(*runs)
    load = graphs.drawing_load()
    assert results == [None] * 6
    assert load["slots"] == 2 and load["peak"] == 2 and load["started"] == 6 and load["running"] == 0


async def test_slow_drawings_leave_the_thread_pool_free(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(graphs, "DRAWING_SLOTS", 2)
    loop = asyncio.get_running_loop()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)  # a database pool as small as it gets
    loop.set_default_executor(pool)
    slow = graphs.DotLimits(wall=600.0)
    tasks = [asyncio.create_task(graphs.run_dot("", limits=slow, program=["/bin/sleep", "600"], slot_wait=600))
             for _ in range(6)]
    try:
        await wait_for(lambda: graphs.drawing_load()["running"] == 2 and graphs.drawing_load()["waiting"] == 4,
                       "two drawings running, four waiting")
        assert await asyncio.to_thread(lambda: 1) == 1  # a database-style call goes through meanwhile
        assert not any(t.done() for t in tasks)
        # a picture that cannot get a slot in time is given up (the shells then show the text tree)
        assert await graphs.run_dot("", program=["/bin/sleep", "600"], slot_wait=0.2) is None
        assert graphs.drawing_load()["running"] == 2
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert graphs.drawing_load()["running"] == 0 and graphs.drawing_load()["waiting"] == 0  # killed and reaped


# ------------------------------------------------------------------------------- after all that


async def test_a_lesson_graph_still_draws_a_valid_png() -> None:
    graphs._CACHE.clear()
    start = time.perf_counter()
    png = await graphs.draw_png(SIN_GRAPH)
    took = time.perf_counter() - start
    assert png is not None and png.startswith(graphs.PNG_SIGNATURE)
    size = graphs.png_size(png)
    assert size is not None and size[0] > 0 and size[1] > 100 and graphs.fits_a_photo(png)
    assert await graphs.draw_png(SIN_GRAPH) is png  # the second time from the cache
    print(f"\nSIN_GRAPH drawn in {took * 1000:.0f} ms: {await graphs.drawing_isolation()}")

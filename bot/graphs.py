"""Autograd graphs (the sandbox's JSON) as PNG pictures, with the ``graphviz`` package and ``dot``.

The DOT source is built with ``graphviz`` (which quotes every label: names come from learners' code)
and rendered by ``dot`` in a subprocess with a timeout. Without ``dot`` (or when it fails or takes too
long) ``render_png`` returns ``None`` and the shells show the text tree instead.

The picture, top to bottom in the direction gradients flow: the root tensor (green), its backward
nodes (grey boxes, saved tensors listed under the name), the ``AccumulateGrad`` nodes and the leaf
tensors they fill (blue, with name, shape and ``requires_grad``), and ``(None, 0)`` inputs as dashed
"None" constants.
"""

from __future__ import annotations

import logging
import shutil
import struct
import subprocess
from typing import Any

import graphviz

from dialogs import graph as graphs

log = logging.getLogger(__name__)

DOT_TIMEOUT = 10.0
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def dot_available() -> bool:
    return shutil.which("dot") is not None


def source(graph: dict[str, Any]) -> str:
    """The DOT source of the picture."""
    dot = graphviz.Digraph("autograd", graph_attr={
        "rankdir": "TB", "size": "14,18", "dpi": "110", "bgcolor": "white", "nodesep": "0.3", "ranksep": "0.35",
        "label": "gradients flow top to bottom", "labelloc": "b", "fontsize": "10", "fontcolor": "gray40",
    }, node_attr={"fontname": "Helvetica", "fontsize": "11", "shape": "box", "style": "rounded,filled"},
        edge_attr={"fontname": "Helvetica", "fontsize": "9", "color": "gray30"})
    root = graph["root"]
    dot.node("root", f"{root.get('name') or 'result'}\n{_tensor_line(root)}", fillcolor="#c8e6c9",
             shape="box", style="filled")
    nodes = graph["nodes"]
    if nodes:
        dot.edge("root", "n0", label=".grad_fn")
    for node in nodes:
        name = f"n{node['id']}"
        if node["kind"] == "const":
            dot.node(name, "None\n(constant: no gradient)", fillcolor="#f5f5f5", fontcolor="gray40",
                     style="dashed,rounded,filled", fontsize="9")
        elif node["kind"] == "leaf":
            dot.node(name, node["name"], fillcolor="#e0e0e0")
            tensor = node.get("tensor", {})
            dot.node(f"{name}t", f"{tensor.get('name') or '(unnamed leaf)'}\n{_tensor_line(tensor)}",
                     fillcolor="#bbdefb", style="filled")
            dot.edge(name, f"{name}t", label=" .grad +=", style="dashed")
        else:
            saved = graphs.saved_text(node.get("saved", []))
            label = node["name"] + (f"\nsaved: {saved}" if saved else "")
            dot.node(name, label, fillcolor="#fff3c4" if saved else "#eeeeee")
    for edge in graph.get("edges", []):
        label = f" input {edge['input_nr']}" if edge.get("input_nr") else ""
        dot.edge(f"n{edge['src']}", f"n{edge['dst']}", label=label)
    if graph.get("truncated"):
        dot.node("more", f"... {graph.get('total', '?')} nodes in all; first {graphs.count_nodes(graph)} shown",
                 shape="plaintext", style="")
    return dot.source


#: Pictures already drawn, by DOT source (lesson graphs are drawn again and again).
_CACHE: dict[str, bytes] = {}
CACHE_SIZE = 64


def render_png(graph: dict[str, Any], timeout: float = DOT_TIMEOUT) -> bytes | None:
    """The graph as PNG bytes; ``None`` without ``dot`` or when it fails."""
    dot = shutil.which("dot")
    if dot is None:
        return None
    text = source(graph)
    if text in _CACHE:
        return _CACHE[text]
    png = _run_dot(dot, text, timeout)
    if png is not None:
        if len(_CACHE) >= CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[text] = png
    return png


def _run_dot(dot: str, text: str, timeout: float) -> bytes | None:
    try:
        done = subprocess.run([dot, "-Tpng"], input=text.encode("utf-8"), capture_output=True,
                              timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("graphviz dot failed: %s", exc)
        return None
    if done.returncode != 0 or not done.stdout.startswith(PNG_SIGNATURE):
        why = done.stderr[:300].decode("utf-8", "replace")
        log.warning("graphviz dot failed (status %s): %s", done.returncode, why)
        return None
    return done.stdout


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk, or ``None`` when ``data`` is not a PNG."""
    if len(data) < 24 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def fits_a_photo(data: bytes) -> bool:
    """Telegram's photo limits: width + height at most 10000, sides at most 20:1."""
    size = png_size(data)
    if size is None:
        return False
    width, height = size
    return width > 0 and height > 0 and width + height <= 10000 and max(width, height) <= 20 * min(width, height)


def _tensor_line(tensor: dict[str, Any]) -> str:
    shape = graphs.shape_text(tensor.get("shape", []))
    flag = "requires_grad=True" if tensor.get("requires_grad") else "requires_grad=False"
    dtype = tensor.get("dtype") or ""
    return f"{shape} {dtype}\n{flag}".replace("  ", " ")

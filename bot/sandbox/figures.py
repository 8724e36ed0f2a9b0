"""Pictures a lesson's code makes, read inside the sandbox: ``torchviz.make_dot`` graphs and matplotlib
figures (a lesson step with ``picture: true``).

Imported by the harness (standard library at import time). Neither picture is finished here the way a
host would finish it:

* ``make_dot`` builds a ``graphviz.Digraph``, and turning it into a picture needs the ``dot`` program,
  which no sandboxed run may start. So ``prepare`` swaps torchviz's ``Digraph`` for a subclass that also
  *records* every ``node`` and ``edge`` call, and ``collect`` returns them as plain data (node labels as
  text, colours by name). The bot checks that data and draws it with its own caged ``dot``, building
  every label itself (``bot/graphs.py``): no DOT text made here is ever read outside the sandbox.
* matplotlib figures are drawn here (Agg, no display) and returned as PNG bytes, at most
  ``MAX_IMAGES`` of at most ``MAX_PNG_BYTES``, each at most ``MAX_INCHES`` at ``DPI``. The bot only
  checks that they are small PNGs and forwards them; it never decodes them.

What comes back is untrusted (the learner's code ran in this process): ``protocol.clean_pictures``
checks it.
"""

from __future__ import annotations

import base64
import io
import os
import sys
from typing import Any

MAX_GRAPHS = 2
MAX_IMAGES = 2
MAX_NODES = 100
MAX_EDGES = 200
LABEL_CHARS = 200
MAX_PNG_BYTES = 150_000
DPI = 90
MAX_INCHES = (9.0, 7.0)
#: torchviz's fill colours, by what they mean (anything else is drawn plain).
FILLS = ("lightblue", "orange", "darkolivegreen1")


class _Recorder:
    """The ``make_dot`` calls of one run, as data."""

    def __init__(self) -> None:
        self.graphs: list[dict[str, Any]] = []


def prepare(tmp: str) -> _Recorder:
    """Before the learner's code: matplotlib draws off-screen in ``tmp``; torchviz's graphs are recorded."""
    os.environ["MPLBACKEND"] = "Agg"
    os.environ["MPLCONFIGDIR"] = os.path.join(tmp, ".matplotlib")
    recorder = _Recorder()
    try:
        import torchviz.dot as tv
    except ImportError:
        return recorder
    base = tv.Digraph

    class RecordingDigraph(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._recorded: dict[str, Any] = {"nodes": {}, "order": [], "edges": []}
            if len(recorder.graphs) < MAX_GRAPHS:
                recorder.graphs.append(self._recorded)

        def node(self, name: Any, label: Any = None, _attributes: Any = None, **attrs: Any) -> None:
            super().node(name, label, _attributes, **attrs)
            key = str(name)
            nodes = self._recorded["nodes"]
            if key not in nodes:
                if len(nodes) >= MAX_NODES:
                    self._recorded["truncated"] = True
                    return
                self._recorded["order"].append(key)
            nodes[key] = {"label": str(label if label is not None else name)[:LABEL_CHARS],
                          "fill": str(attrs.get("fillcolor") or "")}

        def edge(self, tail_name: Any, head_name: Any, label: Any = None, _attributes: Any = None,
                 **attrs: Any) -> None:
            super().edge(tail_name, head_name, label, _attributes, **attrs)
            edges = self._recorded["edges"]
            if len(edges) >= MAX_EDGES:
                self._recorded["truncated"] = True
                return
            edges.append((str(tail_name), str(head_name), str(attrs.get("style") or ""), str(attrs.get("dir") or "")))

    RecordingDigraph.__name__ = RecordingDigraph.__qualname__ = "Digraph"  # as the learner would see it
    tv.Digraph = RecordingDigraph
    return recorder


def _graph(recorded: dict[str, Any]) -> dict[str, Any]:
    order: list[str] = list(recorded["order"])
    index = {key: i for i, key in enumerate(order)}
    edges = []
    for tail, head, style, direction in recorded["edges"]:
        for end in (tail, head):  # an edge to a node never declared: torchviz draws it as a plain node
            if end not in index and len(order) < MAX_NODES:
                index[end] = len(order)
                order.append(end)
                recorded["nodes"][end] = {"label": "", "fill": ""}
        if tail in index and head in index:
            edges.append({"src": index[tail], "dst": index[head], "dotted": style == "dotted",
                          "arrow": direction != "none"})
    nodes = []
    for i, key in enumerate(order):
        node = recorded["nodes"][key]
        fill = node["fill"] if node["fill"] in FILLS else ""
        nodes.append({"id": i, "label": node["label"], "fill": fill})
    return {"style": "torchviz", "nodes": nodes, "edges": edges, "truncated": bool(recorded.get("truncated"))}


def _images() -> list[str]:
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return []
    images = []
    for number in list(plt.get_fignums())[:MAX_IMAGES]:
        figure = plt.figure(number)
        width, height = figure.get_size_inches()
        figure.set_size_inches(min(float(width), MAX_INCHES[0]), min(float(height), MAX_INCHES[1]))
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=DPI)
        data = buffer.getvalue()
        if len(data) <= MAX_PNG_BYTES:
            images.append(base64.b64encode(data).decode("ascii"))
    return images


def collect(recorder: _Recorder) -> dict[str, Any]:
    """After the learner's code: the recorded graphs and the open figures, as JSON-able data."""
    return {"graphs": [_graph(g) for g in recorder.graphs if g["order"]], "images": _images()}

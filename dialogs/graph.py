"""Autograd graphs (the JSON the sandbox returns, see ``bot/sandbox/autograph.py``) as text. Pure.

``tree(graph)`` draws the graph from the root down, in the direction gradients flow::

    y (3,) requires_grad
    └─ SinBackward0 · saved: self (3,)
       └─ AddBackward0 · saved: alpha=1
          ├─ PowBackward0 · saved: exponent=2, self (3,)
          │  └─ AccumulateGrad → x (3,) requires_grad
          └─ AccumulateGrad → z (3,) requires_grad

A node reached a second time is shown as ``↑ #n`` (its number at first sight) instead of again.

Everything in the graph JSON comes from the learner's process. Names and values are shown visible
(``markup.visible``: no control or bidi characters) and on one line, so every tree line starts with a
branch, ``…`` or the root's name followed by its shape: no line of a tree can be a code fence.
"""

from __future__ import annotations

import re
from typing import Any

from dialogs.markup import visible

MAX_TREE_LINES = 80
_TARGET = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*:\s*")
_KEYWORDS = frozenset({"if", "else", "elif", "for", "while", "try", "except", "finally", "with", "def", "class",
                       "lambda", "async", "match", "case"})


def split_target(args: str) -> tuple[str | None, str]:
    """``"y: x = ...; y = x * 2"`` -> ``("y", "x = ...; y = x * 2")``; no ``name:`` prefix -> ``(None, args)``."""
    match = _TARGET.match(args)
    if match and match.group(1) not in _KEYWORDS:
        rest = args[match.end():]
        if rest.strip() and not rest.lstrip().startswith(("=", ":")):
            return match.group(1), rest
    return None, args


def one_line(value: Any) -> str:
    """A name or value from the graph JSON, visible and on one line."""
    return visible(str(value)).replace("\n", "⏎").replace("\t", " ")


def shape_text(shape: list[int]) -> str:
    if not isinstance(shape, list | tuple):
        return one_line(shape)
    if not shape:
        return "()"
    if len(shape) == 1:
        return f"({one_line(shape[0])},)"
    return "(" + ", ".join(one_line(d) for d in shape) + ")"


def saved_text(saved: list[dict[str, Any]]) -> str:
    parts = []
    for item in saved:
        name = one_line(item.get("name", "")).removeprefix("_saved_")
        if item.get("freed"):
            parts.append(f"{name} (freed)")
        elif "shape" in item:
            parts.append(f"{name} {shape_text(item['shape'])}")
        elif "shapes" in item:
            parts.append(f"{name} [" + ", ".join(shape_text(s) for s in item["shapes"]) + "]")
        elif "value" in item:
            parts.append(f"{name}={one_line(item['value'])}")
        else:
            parts.append(name)
    return ", ".join(parts)


def tensor_text(tensor: dict[str, Any]) -> str:
    name = one_line(tensor.get("name") or "(unnamed)")
    flag = "requires_grad" if tensor.get("requires_grad") else "requires_grad=False"
    return f"{name} {shape_text(tensor.get('shape', []))} {flag}"


def node_text(node: dict[str, Any]) -> str:
    if node["kind"] == "const":
        return "None (no gradient: a constant)"
    if node["kind"] == "leaf":
        return f"{one_line(node['name'])} → {tensor_text(node.get('tensor', {}))}"
    saved = saved_text(node.get("saved", []))
    return one_line(node["name"]) + (f" · saved: {saved}" if saved else "")


def tree(graph: dict[str, Any], max_lines: int = MAX_TREE_LINES) -> str:
    nodes = graph["nodes"]
    children: dict[int, list[int]] = {}
    for edge in graph.get("edges", []):
        children.setdefault(edge["src"], []).append(edge["dst"])
    lines = [tensor_text(graph["root"])]
    numbers: dict[int, int] = {}
    cut = False

    def draw(index: int, prefix: str, last: bool) -> None:
        nonlocal cut
        if len(lines) >= max_lines:
            cut = True
            return
        branch = "└─ " if last else "├─ "
        node = nodes[index]
        if index in numbers:
            lines.append(f"{prefix}{branch}↑ #{numbers[index]} {one_line(node['name'])}")
            return
        if node["kind"] != "const":
            numbers[index] = len(numbers) + 1
        mark = f"#{numbers[index]} " if index in numbers and _shared(index, graph) else ""
        lines.append(f"{prefix}{branch}{mark}{node_text(node)}")
        kids = children.get(index, [])
        for i, kid in enumerate(kids):
            draw(kid, prefix + ("   " if last else "│  "), i == len(kids) - 1)

    # Deep chains are drawn iteratively enough: the recursion depth is bounded by the node cap (150).
    draw(0, "", True)
    if cut:
        lines.append("…")
    if graph.get("truncated"):
        lines.append(f"… ({_total(graph)} nodes in all; the first {count_nodes(graph)} are shown)")
    return "\n".join(lines)


def _total(graph: dict[str, Any]) -> int | str:
    total = graph.get("total")
    return total if isinstance(total, int) and not isinstance(total, bool) else "?"


def _shared(index: int, graph: dict[str, Any]) -> bool:
    return sum(1 for e in graph.get("edges", []) if e["dst"] == index) > 1


def count_nodes(graph: dict[str, Any]) -> int:
    """Backward nodes shown (constants left out)."""
    return sum(1 for n in graph["nodes"] if n["kind"] != "const")


def leaves(graph: dict[str, Any]) -> list[str]:
    return [one_line(n.get("tensor", {}).get("name") or "?") for n in graph["nodes"] if n["kind"] == "leaf"]


def summary(graph: dict[str, Any]) -> dict[str, Any]:
    """Values for a caption: root name, node and leaf counts, leaf names, the first backward node.

    The names are visible and on one line, but still the learner's: put them into markup with
    ``markup.literal`` (the engine does).
    """
    names = sorted(set(leaves(graph)))
    total = _total(graph)
    return {
        "name": one_line(graph["root"].get("name") or "?"),
        "nodes": count_nodes(graph),
        "total": total if isinstance(total, int) else count_nodes(graph),
        "leaves": len(names),
        "leaf_names": ", ".join(names[:6]) + ("…" if len(names) > 6 else ""),
        "grad_fn": one_line(graph["nodes"][0]["name"]) if graph["nodes"] else "?",
    }


# -- torchviz.make_dot graphs (recorded in the sandbox, see bot/sandbox/figures.py) -----------------------


def dot_label(node: dict[str, Any]) -> str:
    """A ``make_dot`` node's label on one line: ``MulBackward0``, ``x (3)``."""
    return " ".join(one_line(part.strip()) for part in str(node.get("label", "")).split("\n") if part.strip()) or "·"


def dot_tree(graph: dict[str, Any], max_lines: int = MAX_TREE_LINES) -> str:
    """A ``make_dot`` graph as text, from the output down to the parameters (``make_dot``'s arrows point
    the way the forward pass went: from the inputs to the output)."""
    nodes = graph["nodes"]
    inputs: dict[int, list[int]] = {}
    feeds: set[int] = set()
    for edge in graph.get("edges", []):
        inputs.setdefault(edge["dst"], []).append(edge["src"])
        feeds.add(edge["src"])
    roots = [n["id"] for n in nodes if n["id"] not in feeds] or [0]
    lines: list[str] = []
    seen: set[int] = set()
    cut = False

    def draw(index: int, prefix: str, branch: str, child_prefix: str) -> None:
        nonlocal cut
        if len(lines) >= max_lines:
            cut = True
            return
        if index in seen:
            lines.append(f"{prefix}{branch}↑ {dot_label(nodes[index])}")
            return
        seen.add(index)
        lines.append(f"{prefix}{branch}{dot_label(nodes[index])}")
        kids = inputs.get(index, [])
        for i, kid in enumerate(kids):
            last = i == len(kids) - 1
            draw(kid, child_prefix, "└─ " if last else "├─ ", child_prefix + ("   " if last else "│  "))

    for root in roots:  # every line starts with a branch or "◉ ": no line can be a code fence
        draw(root, "", "◉ ", "")
    if cut or graph.get("truncated"):
        lines.append("…")
    return "\n".join(lines)

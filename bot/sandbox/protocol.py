"""The wire format between the bot, a worker and a run: length-prefixed JSON, never pickle.

Imported by the bot (as ``bot.sandbox.protocol``) and inside the sandbox by the worker and the
harness (as ``protocol``, from the worker's own directory), so it uses the standard library only.

Every message is 4 bytes of big-endian length followed by that many bytes of UTF-8 JSON. Anything
that comes *out* of the sandbox is untrusted: lengths are capped before reading, and strings are
cleaned and cut by :func:`clean_text`.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import struct
from typing import Any

HEADER = struct.Struct(">I")

#: The largest request the bot sends (the learner's code plus the checks, JSON-encoded).
MAX_REQUEST_BYTES = 8 << 20
#: The largest reply a worker may send; larger means something is wrong and the worker is replaced.
MAX_REPLY_BYTES = 2 << 20
#: The largest result a run may write on its result pipe.
MAX_RESULT_BYTES = 512 << 10
#: The learner's code may be at most this long (UTF-8 bytes).
MAX_CODE_BYTES = 1 << 20

#: Caps on the text fields of an outcome.
DETAIL_CHARS = 500
ERROR_CHARS = 4000

#: The file name the learner's code is compiled under; tracebacks show it.
CODE_FILENAME = "<your code>"


def encode(message: dict[str, Any]) -> bytes:
    """One framed message: length header plus compact ASCII JSON."""
    body = json.dumps(message, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    return HEADER.pack(len(body)) + body


def decode(body: bytes) -> dict[str, Any]:
    """The JSON object in ``body``; ``ValueError`` if it is anything else."""
    data = json.loads(body.decode("utf-8"))
    if not isinstance(data, dict):
        raise ValueError("a sandbox message must be a JSON object")
    return data


def read_message(fd: int, limit: int) -> dict[str, Any] | None:
    """Blocking read of one framed message from ``fd``; ``None`` at a clean end of file."""
    header = _read_exactly(fd, HEADER.size)
    if header is None:
        return None
    (size,) = HEADER.unpack(header)
    if size > limit:
        raise ValueError(f"message of {size} bytes is over the {limit} byte limit")
    body = _read_exactly(fd, size)
    if body is None:
        raise EOFError("end of file inside a message")
    return decode(body)


def write_message(fd: int, message: dict[str, Any]) -> None:
    data = memoryview(encode(message))
    while data:
        written = os.write(fd, data)
        data = data[written:]


def _read_exactly(fd: int, size: int) -> bytes | None:
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            if remaining == size:
                return None
            raise EOFError("end of file inside a message")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


#: Where a cut may fall: after a space, a line end, a comma or a bracket, so never inside a number.
_BREAKS = " \n\t,;[]()"


def clean_text(value: object, limit: int) -> str:
    """``value`` as printable-safe text: a ``str``, valid UTF-8 (no lone surrogates), at most
    ``limit`` characters (the middle is cut, the start and the end are kept). A cut falls between
    words or numbers when there is a break near it, never inside ``-1.2345e-05``."""
    text = value if isinstance(value, str) else str(value)
    text = text.encode("utf-8", "replace").decode("utf-8")
    if len(text) > limit:
        marker = "\n... [cut] ...\n"
        head = max(0, (limit - len(marker)) * 2 // 3)
        tail = max(0, limit - len(marker) - head)
        start = len(text) - tail
        head = _break_before(text, head)
        if tail:
            start = _break_after(text, start)
        text = text[:head] + marker + (text[start:] if tail else "")
    return text


def _break_before(text: str, end: int) -> int:
    """The last break at or before ``end`` (within its last third), else ``end``."""
    for i in range(end, max(0, end - end // 3) - 1, -1):
        if i == 0 or text[i - 1] in _BREAKS or (i < len(text) and text[i] in _BREAKS):
            return i
    return end


def _break_after(text: str, start: int) -> int:
    """The first break at or after ``start`` (within a third of what follows), else ``start``."""
    room = (len(text) - start) // 3
    for i in range(start, min(len(text), start + room) + 1):
        if i == len(text) or text[i - 1] in _BREAKS or text[i] in _BREAKS:
            return i
    return start


# -- a check's structured failure (see harness._check_data): a wording's name and its values -------

SAY_CHARS = 40
VALUE_CHARS = 200
VALUE_ITEMS = 16
VALUE_KEYS = 12
MATRIX_ROWS = 12
MATRIX_COLS = 8
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


def _name(value: object, limit: int) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= limit or not set(value) <= _NAME_CHARS:
        raise ValueError("bad name in a check's values")
    return value


def _number(value: object) -> float | int | str:
    """A finite number, or the words torch prints for the others."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    if isinstance(value, int):
        return value if abs(value) < 1 << 63 else float(value)
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    if value in ("nan", "inf", "-inf"):
        return str(value)
    raise ValueError("bad number in a check's values")


def _value(value: object, depth: int) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, str):
        return clean_text(value, VALUE_CHARS)
    if isinstance(value, list) and depth < 3:
        return [_value(v, depth + 1) for v in _list(value, VALUE_ITEMS + 1)]
    if isinstance(value, dict) and depth == 0:
        return _jacobian(value)
    raise ValueError("bad value in a check's values")


def _indices(value: object, total: int, limit: int) -> list[int]:
    items = [_int(i, 0, total - 1) for i in _list(value, limit)]
    if not items or items != sorted(set(items)):
        raise ValueError("bad indices in a Jacobian")
    return items


def _jacobian(value: dict[str, Any]) -> dict[str, Any]:
    """gradcheck's two Jacobians (kept rows and columns only), validated and rebuilt."""
    if value.get("kind") != "jacobian":
        raise ValueError("bad object in a check's values")
    shape = [_int(d, 1, 1 << 40) for d in _list(value.get("shape"), 2)]
    if len(shape) != 2:
        raise ValueError("bad Jacobian shape")
    rows = _indices(value.get("rows"), shape[0], MATRIX_ROWS)
    cols = _indices(value.get("cols"), shape[1], MATRIX_COLS)
    out: dict[str, Any] = {"kind": "jacobian", "output": _int(value.get("output"), 0, 1 << 20),
                           "input": _int(value.get("input"), 0, 1 << 20), "shape": shape, "rows": rows, "cols": cols}
    for which in ("numerical", "analytical"):
        matrix = _list(value.get(which), len(rows))
        if len(matrix) != len(rows):
            raise ValueError("bad Jacobian rows")
        out[which] = []
        for row in matrix:
            row = _list(row, len(cols))
            if len(row) != len(cols):
                raise ValueError("bad Jacobian row")
            out[which].append([_number(v) for v in row])
    return out


def clean_check_data(say: object, values: object) -> tuple[str, dict[str, Any]]:
    """A check's ``say`` and ``values`` from the sandbox, validated and rebuilt; ``("", {})`` when
    there are none or they are malformed (the check's plain ``detail`` is shown then)."""
    if not say:
        return "", {}
    try:
        clean = _name(say, SAY_CHARS)
        data = _dict(values if values is not None else {})
        if len(data) > VALUE_KEYS:
            raise ValueError("too many values")
        return clean, {_name(k, 30): _value(v, 0) for k, v in data.items()}
    except (ValueError, TypeError, RecursionError):
        return "", {}


# -- autograd graphs (see autograph.py): checked field by field, rebuilt from known keys only ------

#: A graph may hold at most this many nodes (backward nodes are capped at 150 in the sandbox, plus
#: one constant node per ``(None, 0)`` input) and this many edges.
GRAPH_NODES = 400
GRAPH_EDGES = 2000
GRAPH_KINDS = ("backward", "leaf", "const")
GRAPH_PROBLEMS = ("not_found", "not_tensor", "no_tensor", "leaf", "no_grad", "failed", "invalid")


def _int(value: object, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"bad integer in graph: {value!r}"[:80])
    return value


def _list(value: object, limit: int) -> list[Any]:
    if not isinstance(value, list) or len(value) > limit:
        raise ValueError("bad list in graph")
    return value


def _dict(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("bad object in graph")
    return value


def _shape(value: object) -> list[int]:
    return [_int(d, 0, 1 << 62) for d in _list(value, 8)]


def _tensor(value: object) -> dict[str, Any]:
    data = _dict(value)
    return {
        "name": clean_text(data.get("name", ""), 80),
        "shape": _shape(data.get("shape", [])),
        "dtype": clean_text(data.get("dtype", ""), 20),
        "requires_grad": data.get("requires_grad") is True,
    }


def clean_graph(value: object) -> dict[str, Any]:
    """A graph from the sandbox, validated and rebuilt; ``ValueError`` when it is malformed."""
    data = _dict(value)
    nodes: list[dict[str, Any]] = []
    raw_nodes = _list(data.get("nodes"), GRAPH_NODES)
    if not raw_nodes:
        raise ValueError("a graph without nodes")
    for index, raw in enumerate(raw_nodes):
        item = _dict(raw)
        _int(item.get("id"), index, index)
        kind = item.get("kind")
        if kind not in GRAPH_KINDS:
            raise ValueError(f"bad node kind {kind!r}"[:80])
        node: dict[str, Any] = {"id": index, "kind": kind, "name": clean_text(item.get("name", ""), 80)}
        if kind == "leaf":
            node["tensor"] = _tensor(item.get("tensor"))
        elif kind == "backward":
            saved = []
            for entry in _list(item.get("saved", []), 8):
                entry = _dict(entry)
                clean: dict[str, Any] = {"name": clean_text(entry.get("name", ""), 60)}
                if entry.get("freed") is True:
                    clean["freed"] = True
                if "shape" in entry:
                    clean["shape"] = _shape(entry["shape"])
                if "shapes" in entry:
                    clean["shapes"] = [_shape(s) for s in _list(entry["shapes"], 8)]
                if "value" in entry:
                    clean["value"] = clean_text(entry["value"], 40)
                saved.append(clean)
            node["saved"] = saved
        nodes.append(node)
    edges = []
    for raw in _list(data.get("edges", []), GRAPH_EDGES):
        item = _dict(raw)
        edges.append({
            "src": _int(item.get("src"), 0, len(nodes) - 1),
            "dst": _int(item.get("dst"), 0, len(nodes) - 1),
            "input_nr": _int(item.get("input_nr"), 0, 1 << 20),
            "slot": _int(item.get("slot", 0), 0, 1 << 20),
        })
    return {
        "root": _tensor(data.get("root")),
        "nodes": nodes,
        "edges": edges,
        "truncated": data.get("truncated") is True,
        "total": _int(data.get("total", len(nodes)), 0, 1 << 40),
    }


def clean_problem(value: object) -> dict[str, Any]:
    """Why there is no graph (no tensor, a leaf, ...), validated; ``ValueError`` when malformed."""
    data = _dict(value)
    reason = data.get("reason")
    if reason not in GRAPH_PROBLEMS:
        raise ValueError(f"bad graph problem {reason!r}"[:80])
    problem: dict[str, Any] = {"reason": reason, "name": clean_text(data.get("name", ""), 80)}
    if "type" in data:
        problem["type"] = clean_text(data["type"], 60)
    if "shape" in data:
        problem["shape"] = _shape(data["shape"])
    if "detail" in data:
        problem["detail"] = clean_text(data["detail"], DETAIL_CHARS)
    return problem


# -- a lesson's pictures (see figures.py): torchviz graphs as data, matplotlib figures as small PNGs --

PICTURE_GRAPHS = 2
PICTURE_IMAGES = 2
PICTURE_NODES = 100
PICTURE_EDGES = 200
PICTURE_LABEL_CHARS = 200
PICTURE_FILLS = ("", "lightblue", "orange", "darkolivegreen1")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_BYTES = 150_000
PNG_SIDE = 2000


def png_header(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG's first chunk (IHDR); ``None`` when ``data`` does not start as a PNG."""
    if len(data) < 24 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def clean_png(value: object) -> str:
    """A figure's PNG (base64 text) that is small, starts as a PNG and has a sane size; ``ValueError`` else.
    The bytes are never decoded here: they are only forwarded to whoever shows them."""
    if not isinstance(value, str) or len(value) > PNG_BYTES * 4 // 3 + 8:
        raise ValueError("bad picture")
    try:
        data = base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise ValueError("a picture that is not base64") from exc
    size = png_header(data)
    if size is None or len(data) > PNG_BYTES or not all(0 < side <= PNG_SIDE for side in size):
        raise ValueError("a picture that is not a small PNG")
    return base64.b64encode(data).decode("ascii")


def clean_dot_graph(value: object) -> dict[str, Any]:
    """A ``torchviz.make_dot`` graph recorded in the sandbox, validated and rebuilt: labels stay text."""
    data = _dict(value)
    if data.get("style") != "torchviz":
        raise ValueError("not a torchviz graph")
    nodes = []
    raw_nodes = _list(data.get("nodes"), PICTURE_NODES)
    if not raw_nodes:
        raise ValueError("a graph without nodes")
    for index, raw in enumerate(raw_nodes):
        item = _dict(raw)
        _int(item.get("id"), index, index)
        fill = item.get("fill", "")
        if fill not in PICTURE_FILLS:
            raise ValueError(f"bad fill {fill!r}"[:80])
        nodes.append({"id": index, "label": clean_text(item.get("label", ""), PICTURE_LABEL_CHARS), "fill": fill})
    edges = []
    for raw in _list(data.get("edges", []), PICTURE_EDGES):
        item = _dict(raw)
        edges.append({"src": _int(item.get("src"), 0, len(nodes) - 1), "dst": _int(item.get("dst"), 0, len(nodes) - 1),
                      "dotted": item.get("dotted") is True, "arrow": item.get("arrow") is not False})
    return {"style": "torchviz", "nodes": nodes, "edges": edges, "truncated": data.get("truncated") is True}


def clean_pictures(value: object) -> dict[str, Any]:
    """A run's pictures (``figures.collect``): each one checked on its own, a bad one dropped and counted."""
    data = _dict(value)
    graphs: list[dict[str, Any]] = []
    images: list[str] = []
    dropped = 0
    for raw in _list(data.get("graphs", []), PICTURE_GRAPHS):
        try:
            graphs.append(clean_dot_graph(raw))
        except ValueError:
            dropped += 1
    for raw in _list(data.get("images", []), PICTURE_IMAGES):
        try:
            images.append(clean_png(raw))
        except ValueError:
            dropped += 1
    result: dict[str, Any] = {"graphs": graphs, "images": images, "dropped": dropped}
    if "problem" in data:
        result["problem"] = clean_text(data["problem"], DETAIL_CHARS)
    return result

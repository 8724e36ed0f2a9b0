"""Autograd graphs (the sandbox's JSON) as pictures, drawn by Graphviz's ``dot`` in a cage of its own.

The picture, top to bottom in the direction gradients flow: the root tensor (green), its backward
nodes (grey boxes, saved tensors listed under the name), the ``AccumulateGrad`` nodes and the leaf
tensors they fill (blue, with name, shape and ``requires_grad``), and ``(None, 0)`` inputs as dashed
"None" constants.

Every string in a graph was made by learner code (a custom ``autograd.Function``'s class name, a
parameter registered as ``"weird name"``, a saved value's repr, a dtype), and ``dot`` runs on the
host, outside every sandbox layer. So (issue 10):

* **Nothing a learner controls becomes Graphviz markup or DOT syntax.** The ``graphviz`` package builds
  the structure (node ids and attributes are ours only), but we build every label ourselves, as an
  HTML-like label: ``graphviz.quote`` passes a string shaped like ``<...>`` through untouched as an
  HTML-like label (``<<IMG SRC="/etc/..."/>>`` made ``dot`` draw a host file), and ``dot`` expands
  ``\\N``, ``\\G``... in quoted strings. In our labels learner text is entity-escaped (``&<>"'``), its
  backslashes are doubled (``dot`` expands ``\\N`` and ``\\G`` even inside HTML-like labels, after
  entities: ``&#92;N`` would not help), control and format characters are shown as visible escapes
  (``\\x1b``, ``<U+202E>``), long text is cut in the middle, and the only line breaks are the
  ``<BR/>`` we emit.
* **``dot`` can open no file of the host, and it runs under its own limits.** ``run_dot`` starts it with
  ``asyncio.create_subprocess_exec`` (never on the thread pool the database calls use), inside
  bubblewrap when it works here (its own user/mount/pid/net/ipc/uts namespaces; read-only ``/usr``, the
  font configuration and nothing else of the host; a small private ``/tmp``; an environment built from
  scratch), as uid 65534 when the bot runs as root, with rlimits (address space, CPU seconds, file size,
  open files, no core), a wall clock that kills its process group, and at most ``DRAWING_SLOTS`` runs
  at once in the whole process (a bounded wait for a slot; then no picture).
* **Graphs too big to read are not drawn** (``too_big``): the shells show the text tree with a note.

Without ``dot``, or when it fails or takes too long, ``draw_png`` returns ``None`` and the shells show
the text tree instead (``no_picture_note`` says why).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import os
import resource
import shutil
import signal
import struct
import subprocess
import time
import unicodedata
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import graphviz

from dialogs import graph as graphs

log = logging.getLogger(__name__)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FORMATS = ("png", "svg")

# -- how big a picture may be ----------------------------------------------------------------------

#: A graph with more nodes (backward nodes, leaves and constants) or edges than this is not drawn: a
#: person cannot read it, and dense graphs kept ``dot`` busy for minutes. Every lesson graph of the
#: course has at most 5 nodes and 4 edges; a small MLP's /graph about 20 nodes.
MAX_NODES = 60
MAX_EDGES = 120
#: Learner text in a label: at most this many characters (cut in the middle), this many on a line.
NAME_CHARS = 80
SAVED_CHARS = 160
LINE_CHARS = 40


def too_big(graph: dict[str, Any]) -> bool:
    """Is ``graph`` beyond what a picture can show legibly (so it is not drawn at all)?"""
    return len(graph.get("nodes", ())) > MAX_NODES or len(graph.get("edges", ())) > MAX_EDGES


def no_picture_note(graph: dict[str, Any], t: Callable[..., str], not_installed: str) -> str:
    """Why ``graph`` is shown as text: ``not_installed`` (the engine's ``GraphView.no_picture``) without
    ``dot``, else too big to draw, else the drawing failed. ``t(key, **values)`` is a UI string in the
    learner's language."""
    if not dot_available():
        return not_installed
    if too_big(graph):
        return t("graph_too_big", nodes=len(graph.get("nodes", ())), edges=len(graph.get("edges", ())),
                 max_nodes=MAX_NODES, max_edges=MAX_EDGES)
    return t("graph_not_drawn")


# -- the DOT source: structure by the graphviz package, every label built (and escaped) by us ---------

_VISIBLE = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
#: Unicode categories shown as ``<U+XXXX>``: format characters (U+202E flips the text that follows),
#: surrogates, private use, unassigned (U+FFFE is not even XML), line and paragraph separators.
_HIDDEN = frozenset({"Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
#: What ``protocol.clean_text`` puts where it cut a long string.
_CUT_MARKER = "\n... [cut] ...\n"


def _units(text: str) -> list[str]:
    """``text`` as printable pieces, one per character: control and format characters as escapes."""
    units = []
    for char in text:
        category = unicodedata.category(char)
        if char in _VISIBLE:
            units.append(_VISIBLE[char])
        elif category == "Cc":
            units.append(f"\\x{ord(char):02x}")
        elif category in _HIDDEN:
            units.append(f"<U+{ord(char):04X}>")
        else:
            units.append(char)
    return units


def _escape(unit: str) -> str:
    # Backslashes first: dot turns "\\" into "\" and expands "\N", "\G", ... in HTML-like labels too.
    return html.escape(unit.replace("\\", "\\\\"), quote=True)


def text_lines(value: object, limit: int = NAME_CHARS, width: int = LINE_CHARS) -> list[str]:
    """Learner text as escaped lines for an HTML-like label: literal whatever it holds."""
    text = value if isinstance(value, str) else str(value)
    units = _units(text.replace(_CUT_MARKER, "…"))
    if len(units) > limit:
        head = (limit - 1) * 2 // 3
        units = [*units[:head], "…", *units[len(units) - (limit - 1 - head):]]
    lines = ["".join(_escape(u) for u in units[i:i + width]) for i in range(0, len(units), width)]
    return lines or [""]


def _label(*lines: str, small: Sequence[str] = ()) -> str:
    """An HTML-like label from escaped lines (``small`` ones in a smaller font); ``<BR/>`` only from here."""
    body = "<BR/>".join(lines)
    if small:
        body += '<BR/><FONT POINT-SIZE="9">' + "<BR/>".join(small) + "</FONT>"
    return f"<{body}>"


def _tensor_lines(tensor: dict[str, Any], unnamed: str) -> list[str]:
    shape = graphs.shape_text([int(d) for d in tensor.get("shape", [])])
    dtype = text_lines(tensor.get("dtype") or "", 24, 24)[0]
    flag = "requires_grad=True" if tensor.get("requires_grad") else "requires_grad=False"
    return [*text_lines(tensor.get("name") or unnamed), f"{shape} {dtype}".strip(), flag]


#: torchviz's colours (``protocol.PICTURE_FILLS``): the output, parameters, views.
TORCHVIZ_FILLS = {"": "#eeeeee", "lightblue": "lightblue", "orange": "orange", "darkolivegreen1": "darkolivegreen1"}


def torchviz_source(graph: dict[str, Any]) -> str:
    """The DOT source of a ``torchviz.make_dot`` graph recorded in the sandbox, drawn the way torchviz draws
    it (boxes, its colours, gradients flowing up) but with every label built here: the recorded labels are
    learner text, split only at their own line breaks."""
    dot = graphviz.Digraph("torchviz", graph_attr={"size": "12,12", "dpi": "110", "bgcolor": "white"},
                           node_attr={"style": "filled", "shape": "box", "align": "left", "fontsize": "10",
                                      "ranksep": "0.1", "height": "0.2", "fontname": "monospace"})
    for node in graph["nodes"]:
        lines = [line for part in str(node.get("label", "")).split("\n")
                 for line in text_lines(part.strip() or " ", NAME_CHARS)]
        dot.node(f"v{int(node['id'])}", _label(*lines), fillcolor=TORCHVIZ_FILLS.get(node.get("fill", ""), "#eeeeee"))
    for edge in graph.get("edges", []):
        attrs = {"style": "dotted"} if edge.get("dotted") else {}
        if edge.get("arrow") is False:
            attrs["dir"] = "none"
        dot.edge(f"v{int(edge['src'])}", f"v{int(edge['dst'])}", **attrs)
    if graph.get("truncated"):
        dot.node("more", _label("… cut: the first nodes only"), shape="plaintext", style="")
    return dot.source


def source(graph: dict[str, Any]) -> str:
    """The DOT source of the picture (a ``torchviz`` graph: ``torchviz_source``).

    Labels are HTML-like labels built here (``_label`` over ``text_lines``), never strings handed to
    ``graphviz`` for quoting: its ``quote`` leaves ``<...>`` as markup and keeps ``\\N``-style escapes.
    Node ids (``root``, ``n3``, ``n3t``) and every attribute are ours."""
    if graph.get("style") == "torchviz":
        return torchviz_source(graph)
    dot = graphviz.Digraph("autograd", graph_attr={
        "rankdir": "TB", "size": "14,18", "dpi": "110", "bgcolor": "white", "nodesep": "0.3", "ranksep": "0.35",
        "label": "gradients flow top to bottom", "labelloc": "b", "fontsize": "10", "fontcolor": "gray40",
    }, node_attr={"fontname": "Helvetica", "fontsize": "11", "shape": "box", "style": "rounded,filled"},
        edge_attr={"fontname": "Helvetica", "fontsize": "9", "color": "gray30"})
    root = graph["root"]
    dot.node("root", _label(*_tensor_lines(root, "result")), fillcolor="#c8e6c9", shape="box", style="filled")
    nodes = graph["nodes"]
    if nodes:
        dot.edge("root", "n0", label=".grad_fn")
    for index, node in enumerate(nodes):
        name = f"n{index}"
        if node["kind"] == "const":
            dot.node(name, _label("None", "(constant: no gradient)"), fillcolor="#f5f5f5", fontcolor="gray40",
                     style="dashed,rounded,filled", fontsize="9")
        elif node["kind"] == "leaf":
            dot.node(name, _label(*text_lines(node.get("name") or "?")), fillcolor="#e0e0e0")
            dot.node(f"{name}t", _label(*_tensor_lines(node.get("tensor", {}), "(unnamed leaf)")),
                     fillcolor="#bbdefb", style="filled")
            dot.edge(name, f"{name}t", label=" .grad +=", style="dashed")
        else:
            saved = graphs.saved_text(node.get("saved", []))
            small = text_lines(f"saved: {saved}", SAVED_CHARS) if saved else []
            dot.node(name, _label(*text_lines(node.get("name") or "?"), small=small),
                     fillcolor="#fff3c4" if saved else "#eeeeee")
    for edge in graph.get("edges", []):
        label = f" input {int(edge['input_nr'])}" if edge.get("input_nr") else ""
        dot.edge(f"n{int(edge['src'])}", f"n{int(edge['dst'])}", label=label)
    if graph.get("truncated"):
        shown = graphs.count_nodes(graph)
        dot.node("more", _label(*text_lines(f"... {graph.get('total', '?')} nodes in all; first {shown} shown")),
                 shape="plaintext", style="")
    return dot.source


# -- running dot: isolated, limited, a few at a time -------------------------------------------------


@dataclass(frozen=True)
class DotLimits:
    """What one ``dot`` run may use."""

    memory: int = 512 << 20  # RLIMIT_AS (address space) of dot and of bwrap
    cpu_seconds: int = 5  # RLIMIT_CPU: SIGXCPU, then SIGKILL a second later
    #: RLIMIT_FSIZE: dot writes no file; fontconfig may write a small cache in the private /tmp.
    file_size: int = 1 << 20
    open_files: int = 64
    wall: float = 10.0  # seconds, then the whole process group is killed
    output: int = 16 << 20  # bytes of picture read at most (more: killed, no picture)


LIMITS = DotLimits()
#: At most this many dot processes at once in the whole process (per event loop: the bot has one).
DRAWING_SLOTS = 2
#: How long a picture may wait for a slot before it is given up (the text tree is shown instead).
SLOT_WAIT = 10.0
#: Unprivileged uid/gid for dot when the bot runs as root ("nobody").
DRAW_UID = 65534
STDERR_BYTES = 16 << 10

SYSTEM_DIRS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
#: The only files of the host a caged dot sees besides /usr: the loader cache, the font configuration
#: and the system's font cache (read-only).
HOST_FILES = ("/etc/ld.so.cache", "/etc/fonts", "/var/cache/fontconfig")
INSIDE_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8",
              "XDG_CACHE_HOME": "/tmp/.cache"}
PLAIN_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "TMPDIR": "/nonexistent", "LANG": "C.UTF-8",
             "XDG_CACHE_HOME": "/nonexistent"}


@dataclass(frozen=True)
class Isolation:
    """How dot is started: ``prefix`` (bwrap's command line up to ``--``, or nothing), then ``inner``
    (e.g. ``setpriv`` dropping root), then dot; as ``uid`` (a root bot's Popen drops to it) or as we are."""

    name: str  # "bwrap", "bwrap-root" or "plain"
    prefix: tuple[str, ...] = ()
    inner: tuple[str, ...] = ()
    uid: int | None = None
    env: dict[str, str] = field(default_factory=lambda: dict(PLAIN_ENV))

    def argv(self, program: Sequence[str]) -> list[str]:
        return [*self.prefix, *self.inner, *program]

    def describe(self) -> str:
        who = f"as uid {self.uid}" if self.uid is not None else f"as uid {os.geteuid()}"
        if self.name == "bwrap":
            where = "in bubblewrap (user namespace; no network, no host files but /usr and fonts)"
        elif self.name == "bwrap-root":
            where = "in bubblewrap without a user namespace (no network, no host files but /usr and fonts)"
            who = f"dropped to uid {DRAW_UID} by setpriv"
        else:
            where = "as a plain process (no bubblewrap: it could read world-readable host files)"
        return (f"dot runs {where}, {who}; limits {LIMITS.memory >> 20} MiB, {LIMITS.cpu_seconds} s CPU, "
                f"{LIMITS.wall:g} s wall clock; {DRAWING_SLOTS} at a time; graphs over {MAX_NODES} nodes or "
                f"{MAX_EDGES} edges are shown as text")


def dot_available() -> bool:
    return shutil.which("dot") is not None


def _bwrap_prefix(bwrap: str, as_root: bool) -> list[str]:
    args = [bwrap]
    if as_root:
        # No user namespace: root's own namespaces, no capabilities but those setpriv needs to empty the
        # bounding set and drop to DRAW_UID (the kernel clears them when it does; bwrap sets NO_NEW_PRIVS).
        args += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
                 "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
    else:
        args += ["--unshare-all"]
    args += ["--die-with-parent", "--new-session", "--hostname", "graphviz"]
    args += ["--size", str(8 << 20), "--perms", "1777", "--tmpfs", "/tmp", "--ro-bind", "/usr", "/usr"]
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    made: set[str] = set()
    for path in HOST_FILES:
        if not os.path.exists(path):
            continue
        parent = os.path.dirname(path)
        parents = []
        while parent not in ("/", "") and parent not in made:
            parents.append(parent)
            parent = os.path.dirname(parent)
        for directory in reversed(parents):  # traversable by the unprivileged uid (bwrap makes 0700 ones)
            made.add(directory)
            args += ["--perms", "0755", "--dir", directory]
        args += ["--ro-bind", path, path]
    args += ["--proc", "/proc", "--dev", "/dev", "--clearenv"]
    for key, value in INSIDE_ENV.items():
        args += ["--setenv", key, value]
    return [*args, "--chdir", "/tmp", "--"]


def candidates() -> list[Isolation]:
    """The ways to start dot here, most isolated first (``_choose`` keeps the first that draws)."""
    root = os.geteuid() == 0
    uid = DRAW_UID if root else None
    found: list[Isolation] = []
    bwrap = shutil.which("bwrap")
    if bwrap:
        found.append(Isolation("bwrap", tuple(_bwrap_prefix(bwrap, False)), uid=uid, env=dict(INSIDE_ENV)))
        setpriv = shutil.which("setpriv")
        if root and setpriv:
            inner = (setpriv, "--reuid", str(DRAW_UID), "--regid", str(DRAW_UID), "--clear-groups",
                     "--inh-caps=-all", "--bounding-set=-all", "--")
            found.append(Isolation("bwrap-root", tuple(_bwrap_prefix(bwrap, True)), inner, env=dict(INSIDE_ENV)))
    found.append(Isolation("plain", uid=uid))
    return found


class _Drawing:
    """The drawing slots of one event loop, and counts of what they do (logs, doctor, tests)."""

    def __init__(self, slots: int) -> None:
        self.slots = asyncio.Semaphore(slots)
        self.size = slots
        self.choosing = asyncio.Lock()
        self.running = 0
        self.waiting = 0
        self.peak = 0
        self.started = 0


_DRAWING: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Drawing] = weakref.WeakKeyDictionary()
#: The isolation chosen per dot executable; when none could draw, when that was found (tried again later).
_CHOSEN: dict[str, Isolation] = {}
_FAILED: dict[str, float] = {}
RETRY_CHOICE = 300.0
#: The test drawing that chooses the isolation gets a generous wall clock: a busy machine must not push
#: the choice down to a weaker cage.
PROBE_LIMITS = DotLimits(wall=30.0)


def _drawing() -> _Drawing:
    loop = asyncio.get_running_loop()
    state = _DRAWING.get(loop)
    if state is None:
        state = _DRAWING[loop] = _Drawing(DRAWING_SLOTS)
    return state


def drawing_load() -> dict[str, int]:
    """Drawing slots in the running loop: ``slots``, ``running``, ``waiting``, ``peak``, ``started``."""
    state = _drawing()
    return {"slots": state.size, "running": state.running, "waiting": state.waiting, "peak": state.peak,
            "started": state.started}


async def isolation() -> Isolation | None:
    """How dot runs here (chosen by a test drawing at first use, then logged once); ``None`` without dot
    or when it cannot draw in any way (tried again after ``RETRY_CHOICE`` seconds)."""
    dot = shutil.which("dot")
    if dot is None:
        return None
    if dot not in _CHOSEN:
        async with _drawing().choosing:
            failed = _FAILED.get(dot)
            if dot not in _CHOSEN and (failed is None or time.monotonic() - failed > RETRY_CHOICE):
                way = await _choose(dot)
                if way is None:
                    _FAILED[dot] = time.monotonic()
                else:
                    _CHOSEN[dot] = way
    return _CHOSEN.get(dot)


async def _choose(dot: str) -> Isolation | None:
    tried: list[str] = []
    for way in candidates():
        data = await _run(way, [dot, "-Tpng"], b"digraph probe { a -> b }", PROBE_LIMITS)
        if data is not None and data.startswith(PNG_SIGNATURE):
            if way.name == "plain":
                log.warning("graph drawing: %s (tried: %s)", way.describe(), ", ".join(tried) or "nothing else")
            else:
                log.info("graph drawing: %s", way.describe())
            return way
        tried.append(way.name)
    log.warning("graph drawing: %s cannot draw here (tried %s); graphs are shown as text", dot, ", ".join(tried))
    return None


async def drawing_isolation() -> str:
    """One line for ``doctor``: how ``dot`` is isolated here (tries it once), or why graphs are text only."""
    way = await isolation()
    if way is not None:
        return way.describe()
    if not dot_available():
        return "no Graphviz dot: graphs are shown as text"
    return "Graphviz dot fails here in every mode: graphs are shown as text"


async def run_dot(text: str, fmt: str = "png", *, limits: DotLimits = LIMITS, way: Isolation | None = None,
                  program: Sequence[str] | None = None, slot_wait: float | None = None) -> bytes | None:
    """DOT source -> ``dot -T<fmt>`` output, or ``None`` (no dot, no slot in time, failed, killed).

    One of the process's ``DRAWING_SLOTS``; isolated as ``way`` (default: as chosen for this machine);
    ``program`` replaces ``dot -T<fmt>`` (tests run a fake slow command through the same cage)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown picture format {fmt!r}")
    if way is None:
        way = await isolation()
        if way is None:
            return None
    if program is None:
        dot = shutil.which("dot")
        if dot is None:
            return None
        program = [dot, f"-T{fmt}"]
    state = _drawing()
    state.waiting += 1
    try:
        async with asyncio.timeout(SLOT_WAIT if slot_wait is None else slot_wait):
            await state.slots.acquire()
    except TimeoutError:
        log.warning("graph drawing: no free slot within %s s (%d running); no picture", slot_wait or SLOT_WAIT,
                    state.running)
        return None
    finally:
        state.waiting -= 1
    try:
        return await _run(way, program, text.encode("utf-8"), limits, state)
    finally:
        state.slots.release()


def _rlimits(limits: DotLimits) -> list[tuple[int, tuple[int, int]]]:
    """The limits to set in the child (never above what we may set)."""
    wanted = [(resource.RLIMIT_AS, limits.memory, limits.memory),
              (resource.RLIMIT_CPU, limits.cpu_seconds, limits.cpu_seconds + 1),
              (resource.RLIMIT_FSIZE, limits.file_size, limits.file_size),
              (resource.RLIMIT_NOFILE, limits.open_files, limits.open_files),
              (resource.RLIMIT_CORE, 0, 0)]
    out = []
    for which, soft, hard in wanted:
        _, current = resource.getrlimit(which)
        if current != resource.RLIM_INFINITY:
            soft, hard = min(soft, current), min(hard, current)
        out.append((which, (soft, hard)))
    return out


def _limiter(limits: DotLimits) -> Callable[[], None]:
    settings = _rlimits(limits)  # computed here, so that the child only calls setrlimit and nice

    def apply() -> None:  # runs in the forked child before exec: C calls only
        for which, pair in settings:
            resource.setrlimit(which, pair)
        os.nice(10)

    return apply


async def _run(way: Isolation, program: Sequence[str], data: bytes, limits: DotLimits,
               state: _Drawing | None = None) -> bytes | None:
    user: dict[str, Any] = {}
    if way.uid is not None:
        user = {"user": way.uid, "group": way.uid, "extra_groups": []}
    try:
        proc = await asyncio.create_subprocess_exec(
            *way.argv(program), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=way.env, cwd="/", start_new_session=True,
            preexec_fn=_limiter(limits), **user)
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        log.warning("graph drawing: dot could not start (%s): %s", way.name, exc)
        return None
    if state is not None:
        state.running += 1
        state.started += 1
        state.peak = max(state.peak, state.running)
    try:
        async with asyncio.timeout(limits.wall):
            _, out, err = await asyncio.gather(_feed(proc, data), _read(proc, proc.stdout, limits.output),
                                            _read(proc, proc.stderr, STDERR_BYTES))
            status = await proc.wait()
    except TimeoutError:
        log.warning("graph drawing: dot ran over %s s (%s) and was killed", limits.wall, way.name)
        return None
    finally:
        _kill(proc)
        with contextlib.suppress(TimeoutError, ProcessLookupError):
            async with asyncio.timeout(5):
                await proc.wait()
        if state is not None:
            state.running -= 1
    if status != 0 or out is None:
        why = (err or b"").decode("utf-8", "replace").strip()[:300]
        log.warning("graph drawing: dot failed (%s, status %s%s): %s", way.name, status,
                    ", too much output" if out is None else "", why or "no message")
        return None
    return out


async def _feed(proc: asyncio.subprocess.Process, data: bytes) -> None:
    assert proc.stdin is not None
    try:
        proc.stdin.write(data)
        await proc.stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass  # dot died early (a limit): its status says so
    finally:
        proc.stdin.close()


async def _read(proc: asyncio.subprocess.Process, stream: asyncio.StreamReader | None, cap: int) -> bytes | None:
    """Everything from ``stream``; ``None`` (and the process killed) past ``cap`` bytes."""
    assert stream is not None
    chunks: list[bytes] = []
    size = 0
    while chunk := await stream.read(1 << 16):
        size += len(chunk)
        if size > cap:
            _kill(proc)
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _kill(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL to dot's process group (its own session) and to it."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()


#: Pictures already drawn, by format and DOT source (lesson graphs are drawn again and again).
_CACHE: dict[tuple[str, str], bytes] = {}
CACHE_SIZE = 64


async def draw(graph: dict[str, Any], fmt: str = "png") -> bytes | None:
    """The graph as a picture; ``None`` when it is too big, without dot, or when dot fails."""
    if too_big(graph) or not dot_available():
        return None
    key = (fmt, source(graph))
    if key in _CACHE:
        return _CACHE[key]
    data = await run_dot(key[1], fmt)
    if data is None or not (data.startswith(PNG_SIGNATURE) if fmt == "png" else b"<svg" in data[:4096]):
        return None
    if len(_CACHE) >= CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = data
    return data


async def draw_png(graph: dict[str, Any]) -> bytes | None:
    """The graph as PNG bytes; ``None`` when it is too big, without dot, or when dot fails."""
    return await draw(graph, "png")


# -- pictures as Telegram takes them ------------------------------------------------------------------


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

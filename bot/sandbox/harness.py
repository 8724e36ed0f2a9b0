"""What runs in the throw-away child forked for one submission (inside the sandbox).

The worker forks, and the child calls :func:`child_main`: it moves the pipes onto fds 0-3, closes
everything else, applies the rlimits, drops to an unprivileged uid when it can, then runs the
learner's code and the hidden checks in one fresh ``__main__`` namespace. The verdict is written as
framed JSON on fd 3, never on stdout: whatever the learner prints cannot pass for a result.

Standard library only (plus whatever the learner imports): imported by the worker as ``harness``.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import ctypes
import fcntl
import gc
import io
import json
import linecache
import os
import re
import resource
import signal
import sys
import traceback
import types
from typing import Any, NoReturn

import autograph
import figures
import protocol  # the worker puts its own directory on sys.path
import seccomp

RESULT_FD = 3

# Bound now, so that learner code rebinding ``os.write``, ``json.dumps`` or builtins cannot change
# how the verdict is written. (Code that sets out to fool its own checks can: they share a process.
# That only cheats the learner; nothing else trusts the verdict.)
_dumps = json.dumps
_pack = protocol.HEADER.pack
_len = len
_write = os.write
_exit = os._exit
_getpid = os.getpid
_BUILTINS = dict(builtins.__dict__)


def child_main(request: dict[str, Any], fds: dict[str, int], limits: dict[str, Any]) -> NoReturn:
    """Set the child up, then run the submission. Never returns."""
    try:
        _setup(fds, limits)
    except BaseException as exc:  # we cannot run safely: say so on stderr, let the worker see it
        try:
            os.write(2, f"sandbox child set-up failed: {exc!r}\n".encode())
        finally:
            _exit(71)
    try:
        _run(request)
    finally:
        _exit(72)


def _setup(fds: dict[str, int], limits: dict[str, Any]) -> None:
    os.setpgid(0, 0)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_DFL)

    # fds: 0 = /dev/null, 1 and 2 = the output pipe, 3 = the result pipe, nothing else.
    high = {name: _fcntl_dupfd(fd, 64) for name, fd in fds.items()}
    os.dup2(high["devnull"], 0)
    os.dup2(high["output"], 1)
    os.dup2(high["output"], 2)
    os.dup2(high["result"], RESULT_FD)
    os.closerange(RESULT_FD + 1, _max_fd())

    extra_as = int(limits["memory_bytes"])
    if extra_as > 0:
        _limit(resource.RLIMIT_AS, _vm_size() + extra_as)
    cpu = int(limits["cpu_seconds"])
    _limit(resource.RLIMIT_CPU, cpu, cpu + 1)
    _limit(resource.RLIMIT_FSIZE, int(limits["file_bytes"]))
    _limit(resource.RLIMIT_NOFILE, int(limits["open_files"]))
    _limit(resource.RLIMIT_NPROC, int(limits["processes"]))
    _limit(resource.RLIMIT_CORE, 0)

    uid = int(limits.get("uid", -1))
    if uid >= 0 and os.geteuid() == 0:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        if os.getuid() != uid or os.geteuid() != uid:
            raise RuntimeError("could not drop privileges")
    _set_parent_death_signal()  # after the uid change, which would clear it
    _set_dumpable()  # the uid change (or the worker) made us non-dumpable: /proc/self/environ unreadable
    filter_program = limits.get("seccomp")
    if filter_program:
        seccomp.install(filter_program)  # also sets NO_NEW_PRIVS: no setuid binary can raise privileges

    # The sandbox's own modules are not the learner's business (their functions keep working).
    code_dir = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if p != code_dir]
    for name in ("harness", "protocol", "seccomp", "autograph", "figures"):
        sys.modules.pop(name, None)

    tmp = str(limits["tmp"])
    os.chdir(tmp)
    os.environ["TMPDIR"] = tmp
    os.environ["HOME"] = tmp
    sys.stdin = open(0, closefd=False)  # noqa: SIM115  (fd 0 is /dev/null and stays open)
    sys.stdout = _text_stream(1)
    sys.stderr = _text_stream(2)
    sys.argv = [protocol.CODE_FILENAME]


def _run(request: dict[str, Any]) -> None:
    pid = _getpid()
    # Address space held back and freed on MemoryError, so that reporting still works (calloc'ed and
    # never touched: it costs no memory, only room under RLIMIT_AS).
    reserve: bytes | None = bytes(4 << 20)
    code = str(request["code"])
    checks = [(str(c["id"]), str(c["code"])) for c in request["checks"]]

    module = types.ModuleType("__main__")
    module.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = module
    namespace = module.__dict__
    linecache.cache[protocol.CODE_FILENAME] = (len(code), None, code.splitlines(True), protocol.CODE_FILENAME)

    graph = request.get("graph")
    graph_target = str(graph.get("target") or "") if isinstance(graph, dict) else ""
    names: list[str] = []
    recorder = None
    try:
        if request.get("pictures") is True:  # a lesson's pictures: make_dot recorded, matplotlib off-screen
            recorder = figures.prepare(os.getcwd())
        if isinstance(graph, dict):  # a picture of the graph was asked for: find what to draw
            import torch  # /graph one-liners may skip the import (the workers preloaded torch)

            namespace["torch"] = torch
            tree = ast.parse(code, protocol.CODE_FILENAME, "exec")
            names = autograph.target_names(tree)
            if not graph_target and autograph.keep_last_expression(tree, "_"):
                names.append("_")
            compiled = compile(tree, protocol.CODE_FILENAME, "exec", dont_inherit=True)
        else:
            compiled = compile(code, protocol.CODE_FILENAME, "exec", dont_inherit=True)
    except BaseException as exc:
        _report({"status": "error", "checks": [], "error": _format_exception_only(exc)})

    try:
        exec(compiled, namespace)
    except SystemExit as exc:
        _only_in_the_original(pid)
        if exc.code not in (None, 0):
            _report({"status": "error", "checks": [], "error": _system_exit_message(exc), "why": "exit"})
    except BaseException as exc:
        _only_in_the_original(pid)
        memory = _is_memory_error(exc)
        if memory:
            reserve = None
        error = _reduced_traceback(exc)
        del exc
        if memory:
            namespace.clear()
            gc.collect()
        _report({"status": "memory" if memory else "error", "checks": [], "error": error})
    _only_in_the_original(pid)
    _restore_builtins()

    results: list[dict[str, Any]] = []
    status = "ok"
    for check_id, check_code in checks:
        try:
            exec(compile(check_code, f"<check {check_id}>", "exec", dont_inherit=True), namespace)
        except BaseException as exc:
            _only_in_the_original(pid)
            if _is_memory_error(exc):
                reserve = None
                gc.collect()
                status = "memory"
            results.append({"id": check_id, "passed": False, **_check_data(exc)})
            del exc
        else:
            _only_in_the_original(pid)
            results.append({"id": check_id, "passed": True, "detail": ""})
    report: dict[str, Any] = {"status": status, "checks": results, "error": ""}
    if isinstance(graph, dict):
        try:
            report.update(autograph.extract(namespace, names, graph_target))
        except BaseException as exc:
            _only_in_the_original(pid)
            report["problem"] = {"reason": "failed", "name": graph_target, "detail": _check_detail(exc)}
            del exc
    if recorder is not None and status == "ok":
        try:
            report["pictures"] = figures.collect(recorder)
        except BaseException as exc:
            _only_in_the_original(pid)
            report["pictures"] = {"graphs": [], "images": [], "problem": _check_detail(exc)}
            del exc
    del reserve
    _report(report)


def _report(result: dict[str, Any]) -> NoReturn:
    _restore_builtins()
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(BaseException):
            stream.flush()  # type: ignore[union-attr]
    try:
        body = _dumps(result, ensure_ascii=True, separators=(",", ":")).encode("ascii")
        data = memoryview(_pack(_len(body)) + body)
        while data:
            data = data[_write(RESULT_FD, data) :]
    except BaseException:
        _exit(73)
    _exit(0)


def _restore_builtins() -> None:
    """Undo changes to ``builtins`` (``builtins.len = ...``): the checks and the report need the real ones."""
    with contextlib.suppress(BaseException):
        current = builtins.__dict__
        for name in [n for n in current if n not in _BUILTINS]:
            del current[name]
        current.update(_BUILTINS)


def _only_in_the_original(pid: int) -> None:
    """A process the learner forked must not go on to run the checks or report a verdict."""
    if _getpid() != pid:
        _exit(0)


def _is_memory_error(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    if isinstance(exc, RuntimeError):
        text = _safe_str(exc).lower()
        return "can't allocate memory" in text or "not enough memory" in text
    return False


def _check_data(exc: BaseException) -> dict[str, Any]:
    """A failed check's verdict: its message as text, and as data when it gave some.

    ``AssertionError({"say": name, **values})`` is a message the tutor words in the learner's
    language; a gradcheck Jacobian mismatch (raised by the check, or given as a value) becomes the two
    matrices, cut to a readable size. Never raises: whatever goes wrong, the plain text remains.
    """
    data: dict[str, Any] = {"detail": _check_detail(exc)}
    with contextlib.suppress(BaseException):
        args = exc.args if isinstance(exc, AssertionError) else ()
        if len(args) == 1 and type(args[0]) is dict and isinstance(args[0].get("say"), str):
            fields = dict(args[0])
            say = fields.pop("say")
            values = {str(k): _plain_value(v, 0) for k, v in list(fields.items())[: protocol.VALUE_KEYS]}
            data.update(say=say, values=values, detail=_flat_detail(say, values))
        elif _jacobian(exc) is not None:
            data.update(say="gradcheck", values={"error": _jacobian(exc)})
    return data


def _plain_value(value: Any, depth: int) -> Any:
    """A check's value as JSON-friendly data: tensors as lists, lists cut (with "…"), the rest as text."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return protocol.clean_text(value, protocol.VALUE_CHARS)
    if isinstance(value, BaseException):
        jacobian = _jacobian(value)
        if jacobian is not None and depth == 0:
            return jacobian
        message = _safe_str(value)
        return f"{type(value).__name__}: {message}" if message else type(value).__name__
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and depth == 0:
        value = tolist()
        if not isinstance(value, list):
            return _plain_value(value, depth + 1)
    if isinstance(value, list | tuple) and depth < 2:
        items = [_plain_value(v, depth + 1) for v in value[: protocol.VALUE_ITEMS]]
        return [*items, "…"] if len(value) > protocol.VALUE_ITEMS else items
    return protocol.clean_text(value, protocol.VALUE_CHARS)


def _flat_detail(say: str, values: dict[str, Any]) -> str:
    """A structured message as one line of text, for logs (the learner gets it worded)."""
    shown = ", ".join(f"{k}={'<jacobian>' if isinstance(v, dict) else v!r}" for k, v in values.items())
    return protocol.clean_text(f"{say}: {shown}" if shown else say, protocol.DETAIL_CHARS)


_MISMATCH = re.compile(r"Jacobian mismatch for output (\d+) with respect to input (\d+),?\s*"
                       r"numerical:\s*(tensor\(.*?\))\s*analytical:\s*(tensor\(.*?\))\s*$", re.S)
_ROW = re.compile(r"\[([^\[\]]*)\]")
#: gradcheck's default tolerances: where the two matrices differ, by its own measure.
_ATOL, _RTOL = 1e-5, 1e-3


def _jacobian(exc: BaseException) -> dict[str, Any] | None:
    """gradcheck's "Jacobian mismatch" error as data: the output and input it names, and both
    matrices, keeping at most ``MATRIX_ROWS`` rows and ``MATRIX_COLS`` columns (those that differ
    first, then the first ones), with their indices; ``None`` for any other error."""
    try:
        if not isinstance(exc, RuntimeError):
            return None
        match = _MISMATCH.match(_safe_str(exc).strip())
        if match is None:
            return None
        numerical, analytical = _matrix(match.group(3)), _matrix(match.group(4))
        if numerical is None or analytical is None or len(numerical) != len(analytical):
            return None
        if any(len(a) != len(n) for a, n in zip(analytical, numerical, strict=True)):
            return None
        differ = [[_differ(a, n) for a, n in zip(ar, nr, strict=True)] for ar, nr in zip(analytical, numerical,
                                                                                         strict=True)]
        rows = _keep([any(r) for r in differ], protocol.MATRIX_ROWS)
        cols = _keep([any(r[c] for r in differ) for c in range(len(numerical[0]))], protocol.MATRIX_COLS)
        return {
            "kind": "jacobian", "output": int(match.group(1)), "input": int(match.group(2)),
            "shape": [len(numerical), len(numerical[0])], "rows": rows, "cols": cols,
            "numerical": [[_json_number(numerical[r][c]) for c in cols] for r in rows],
            "analytical": [[_json_number(analytical[r][c]) for c in cols] for r in rows],
        }
    except BaseException:
        return None


def _matrix(text: str) -> list[list[float]] | None:
    """The 2-D tensor in ``tensor([[...], ...], dtype=...)``; ``None`` if torch summarised it (``...``)."""
    start, end = text.find("[["), text.rfind("]]")
    if start < 0 or end < start or "..." in text:
        return None
    rows = [[float(v) for v in row.split(",")] for row in _ROW.findall(text[start + 1 : end + 1])]
    return rows if rows and rows[0] and all(len(r) == len(rows[0]) for r in rows) else None


def _differ(a: float, n: float) -> bool:
    if a != a or n != n:  # nan
        return not (a != a and n != n)
    return abs(a - n) > _ATOL + _RTOL * abs(n)


def _keep(differs: list[bool], limit: int) -> list[int]:
    """Indices to show: all when they fit; else those that differ, then the first others, in order."""
    if len(differs) <= limit:
        return list(range(len(differs)))
    chosen = [i for i, d in enumerate(differs) if d][:limit]
    chosen += [i for i, d in enumerate(differs) if not d][: limit - len(chosen)]
    return sorted(chosen)


def _json_number(v: float) -> float | str:
    return v if v == v and abs(v) != float("inf") else str(v)


def _check_detail(exc: BaseException) -> str:
    message = _safe_str(exc)
    if not isinstance(exc, AssertionError):
        message = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    elif not message:
        message = "AssertionError"
    return protocol.clean_text(message, protocol.DETAIL_CHARS)


def _reduced_traceback(exc: BaseException) -> str:
    """The traceback restricted to the learner's own frames, as Python would print it."""
    try:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == protocol.CODE_FILENAME]
        lines = []
        if frames:
            lines.append("Traceback (most recent call last):\n")
            lines.extend(traceback.StackSummary.from_list(frames).format())
        lines.extend(_exception_only_lines(exc))
        return protocol.clean_text("".join(lines).rstrip("\n"), protocol.ERROR_CHARS)
    except BaseException:
        return type(exc).__name__


def _format_exception_only(exc: BaseException) -> str:
    try:
        return protocol.clean_text("".join(_exception_only_lines(exc)).rstrip("\n"), protocol.ERROR_CHARS)
    except BaseException:
        return type(exc).__name__


def _exception_only_lines(exc: BaseException) -> list[str]:
    try:
        return traceback.format_exception_only(type(exc), exc)
    except BaseException:
        return [f"{type(exc).__name__}\n"]


def _system_exit_message(exc: SystemExit) -> str:
    """What the learner's ``sys.exit(...)`` said (the tutor explains, in the learner's language, that
    there was no need: the report's ``why`` is ``"exit"``)."""
    return protocol.clean_text(f"SystemExit: {_safe_str(exc)}", protocol.ERROR_CHARS)


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except BaseException:
        return ""


def _text_stream(fd: int) -> io.TextIOWrapper:
    raw = io.FileIO(fd, "w", closefd=False)
    return io.TextIOWrapper(
        io.BufferedWriter(raw, 8192), encoding="utf-8", errors="backslashreplace", line_buffering=True
    )


def _limit(which: int, soft: int, hard: int | None = None) -> None:
    resource.setrlimit(which, (soft, soft if hard is None else hard))


def _vm_size() -> int:
    with open("/proc/self/status", "rb") as status:
        for line in status:
            if line.startswith(b"VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def _max_fd() -> int:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 65536


def _fcntl_dupfd(fd: int, lowest: int) -> int:
    return fcntl.fcntl(fd, fcntl.F_DUPFD, lowest)


def _set_dumpable() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE


def _set_parent_death_signal() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG

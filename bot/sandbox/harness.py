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
import resource
import signal
import sys
import traceback
import types
from typing import Any, NoReturn

import autograph
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
    for name in ("harness", "protocol", "seccomp", "autograph"):
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
    try:
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
            _report({"status": "error", "checks": [], "error": _system_exit_message(exc)})
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
            results.append({"id": check_id, "passed": False, "detail": _check_detail(exc)})
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
    return protocol.clean_text(
        f"SystemExit: {_safe_str(exc)}\nYour code called sys.exit(); the checks run after your code, "
        "so there is no need to exit.",
        protocol.ERROR_CHARS,
    )


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

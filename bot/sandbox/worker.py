"""A warm sandbox worker: imports torch once, then serves one submission per fresh process.

Started by the bot as ``python -I -B worker.py [--pidns] --tmp DIR [--uid N]``, normally inside
bubblewrap (as PID 1 of its PID namespace). It speaks framed JSON (see ``protocol.py``) on its
original stdin/stdout; its stderr is the bot's log.

Two kinds of process, so that no run ever starts from memory that held another run:

- the worker itself (the *zygote*) imports torch and never reads a request or an outcome: it closes
  the bot's pipes at once. It forks each *run* ahead of its request (the run waits for it on a pipe of
  its own), hands the run's pipes to the supervisor, reaps the run, kills whatever the run left, tells
  the supervisor how the run ended, then empties the private tmp and checks that it is empty (nothing
  left, and on a tmpfs every block and inode free again) before it forks the next run. When it cannot
  (a tree too big to remove in time, anything left over) it exits, and the bot replaces it: the tmpfs
  goes away with its mount namespace.
- the *supervisor*, forked once at start, talks to the bot: it reads a request, writes it to the run
  that is ready, watches the run's output and verdict with a wall-clock deadline, kills the run when
  it must, and answers with an ``EvalOutcome``-shaped dict. It holds learners' requests and outcomes,
  and nothing is ever forked from it (a run cannot read it: it is not dumpable, and runs have another
  uid and no ptrace).
- the run executes the learner's code and the hidden checks, as an unprivileged uid under seccomp
  (one process: no fork), and dies.

Per submission that is one fork, made before the request exists, and one exit.

Fork safety: torch is imported with one thread and no torch operation runs in the zygote, so it
stays single-threaded and every run starts from a clean, already-imported torch.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import ctypes
import errno
import gc
import math
import os
import select
import signal
import socket
import sys
import time
import types
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import protocol
import seccomp
import tmpwipe

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36

#: The zygote's messages to the supervisor on their socket: a fresh run is ready (its pid, and its
#: request/output/result pipes passed along), or a run has ended (its wait status and resource usage).
MSG_RUN = b"R"
MSG_ENDED = b"X"
#: The zygote's own exit statuses when it retires (the bot then starts a replacement).
EXIT_FAILED = 3
EXIT_TMP_NOT_CLEAN = 4

THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")

#: Modules imported once here, so that a child does not pay for them (imports only, no torch op).
PRELOAD = (
    "torch.autograd",
    "torch.autograd.functional",
    "torch.autograd.gradcheck",
    "torch.nn",
    "torch.nn.functional",
    "torch.optim",
    "torch._subclasses.schema_check_mode",  # printing a tensor with a grad
    "torch.fx.experimental.symbolic_shapes",  # gradcheck: pulls in sympy, ~0.3 s per run otherwise
    "math",
    "random",
    "json",
)

SIGNAL_HINTS = {
    signal.SIGSEGV: "a segmentation fault: native code crashed (ctypes, or recursion far too deep)",
    signal.SIGABRT: "an abort: a native library gave up (often too many threads or a failed allocation)",
    signal.SIGBUS: "a bus error in native code",
    signal.SIGFPE: "an arithmetic fault in native code",
    signal.SIGILL: "an illegal instruction in native code",
    signal.SIGKILL: "SIGKILL",
    signal.SIGTERM: "SIGTERM",
}


class _Run:
    """A run process forked ahead, and the pipes to it: its request, its output, its result."""

    def __init__(self, pid: int, request: int, output: int, result: int) -> None:
        self.pid, self.request, self.output, self.result = pid, request, output, result

    def discard(self) -> None:
        _kill(self.pid, signal.SIGKILL)
        for fd in (self.request, self.output, self.result):
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


class Worker:
    def __init__(self, tmp: str, uid: int, pid_namespace: bool, wipe_seconds: float = 2.0) -> None:
        self.tmp = tmp
        self.wipe_seconds = wipe_seconds  # emptying tmp may take this long, else the worker retires
        try:  # read-only mounts the launcher put under tmp (a checkout living in /tmp): never wiped
            self.keep = frozenset(os.listdir(tmp))
        except OSError:
            self.keep = frozenset()
        self.uid = uid
        self.pid_namespace = pid_namespace
        self.seccomp = self._seccomp_works()
        self.devnull = os.open(os.devnull, os.O_RDWR)
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.tmp_baseline = _tmp_free(tmp)  # a tmpfs of its own: (free blocks, free inodes) when empty

    # -- the zygote and the supervisor --------------------------------------------------------------------

    def serve(self, proto_in: int, proto_out: int) -> int:
        """Fork the supervisor, which talks to the bot; then, for ever, fork a fresh run ahead, hand it to
        the supervisor, reap it, clear away what it left. Retire on anything unexpected."""
        zygote_end, supervisor_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        supervisor = os.fork()
        if supervisor == 0:  # never returns
            code = 1
            try:
                zygote_end.close()
                code = self.supervise(proto_in, proto_out, supervisor_end)
            except BaseException as exc:
                with contextlib.suppress(BaseException):
                    print(f"sandbox worker: supervisor failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            finally:
                os._exit(code)
        supervisor_end.close()
        os.close(proto_in)  # the bot's requests and our answers are the supervisor's, never ours
        os.close(proto_out)
        try:
            return self._zygote(supervisor, zygote_end)
        finally:
            _kill(supervisor, signal.SIGKILL)
            self._kill_leftovers()

    def _zygote(self, supervisor: int, sock: socket.socket) -> int:
        while True:
            run = self.prefork_run()
            try:
                socket.send_fds(sock, [MSG_RUN + str(run.pid).encode()], [run.request, run.output, run.result])
            except OSError:
                run.discard()
                return 0  # the supervisor is gone
            for fd in (run.request, run.output, run.result):
                os.close(fd)
            while True:  # until this run (or the supervisor) ends; orphans of runs are reaped on the way
                try:
                    pid, status_word, rusage = os.wait4(-1, 0)
                except ChildProcessError:
                    return EXIT_FAILED
                if pid == supervisor:
                    _kill(run.pid, signal.SIGKILL)
                    code = os.WEXITSTATUS(status_word) if os.WIFEXITED(status_word) else EXIT_FAILED
                    if code not in (0, 2):
                        print(f"sandbox worker: the supervisor ended (wait status {status_word}); retiring",
                              file=sys.stderr)
                    return code
                if pid == run.pid:
                    break
            self._kill_descendants(exclude={supervisor})
            usage = f"{status_word} {rusage.ru_utime} {rusage.ru_stime} {rusage.ru_maxrss}".encode()
            try:
                sock.send(MSG_ENDED + usage)
            except OSError:
                return 0
            problem = self.clean_tmp()
            if problem:
                print(f"sandbox worker: tmp is not clean after a run ({problem}); retiring", file=sys.stderr)
                return EXIT_TMP_NOT_CLEAN

    def supervise(self, proto_in: int, proto_out: int, sock: socket.socket) -> int:
        """The bot's side of the worker: one request per fresh run the zygote hands over. It holds the
        learners' requests and outcomes; no run is ever forked from it."""
        _prctl(self.libc, PR_SET_PDEATHSIG, signal.SIGKILL)
        self.sock = sock
        while True:
            try:
                message, fds, _flags, _addr = socket.recv_fds(sock, 64, 3)
            except OSError:
                return EXIT_FAILED
            if not message.startswith(MSG_RUN) or len(fds) != 3:
                for fd in fds:
                    os.close(fd)
                return EXIT_FAILED if message else 0
            run = _Run(int(message[1:]), *fds)
            try:
                request = protocol.read_message(proto_in, protocol.MAX_REQUEST_BYTES)
            except (OSError, ValueError, EOFError) as exc:
                print(f"sandbox worker: bad request: {exc}", file=sys.stderr)
                return 2
            if request is None:
                return 0  # the bot closed the pipe (the zygote kills the run waiting for it)
            request_id = request.get("id")

            def started(request_id: Any = request_id) -> None:
                protocol.write_message(proto_out, {"type": "started", "id": request_id})

            try:
                outcome = self.evaluate(request, started, run)
            except Exception as exc:  # our bug, not the learner's: report it
                outcome = {"status": "unavailable", "error": f"worker error: {type(exc).__name__}: {exc}"}
            try:
                protocol.write_message(proto_out, {"type": "result", "id": request_id, "outcome": outcome})
            except OSError as exc:
                if exc.errno == errno.EPIPE:
                    return 0
                raise

    def _kill_leftovers(self) -> None:
        """When the worker stops: nobody but us (and init) may be left in the sandbox."""
        if self.pid_namespace:
            _kill(-1, signal.SIGKILL)  # everyone in our PID namespace except init and us
        self._kill_descendants()

    def clean_tmp(self) -> str:
        """Empty the private tmp as the run's uid, then check it; ``""`` when clean, else why not."""
        if not tmpwipe.leftovers(self.tmp, self.keep) and self._tmp_space_back():
            return ""
        pid = os.fork()
        if pid == 0:
            ok = False
            try:
                _prctl(self.libc, PR_SET_PDEATHSIG, signal.SIGKILL)
                if self.uid >= 0 and os.geteuid() == 0:
                    os.setgroups([])
                    os.setgid(self.uid)
                    os.setuid(self.uid)
                ok = tmpwipe.wipe(self.tmp, self.keep, time.monotonic() + self.wipe_seconds)
            finally:
                os._exit(0 if ok else 1)
        give_up = time.monotonic() + self.wipe_seconds + 1.0
        while True:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > give_up:
                _kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return f"emptying it took more than {self.wipe_seconds:g} s"
            time.sleep(0.005)
        left = tmpwipe.leftovers(self.tmp, self.keep)
        if left:
            return f"{len(left)} entries left, e.g. {left[:3]}"
        if not self._tmp_space_back():
            return f"space not freed: {self.tmp_baseline} free before, {_tmp_free(self.tmp)} now"
        return ""

    def _tmp_space_back(self) -> bool:
        """On a tmpfs of our own, every block and inode the run used is free again."""
        if self.tmp_baseline is None:
            return True
        now = _tmp_free(self.tmp)
        return now is not None and now[0] >= self.tmp_baseline[0] and now[1] >= self.tmp_baseline[1]

    # -- one submission -------------------------------------------------------------------------

    def limits(self, request: dict[str, Any]) -> dict[str, Any]:
        """What a run may use, from its request (the bot's word) and this worker's settings."""
        return {
            "memory_bytes": int(request["memory_mb"]) << 20,
            "cpu_seconds": max(1, math.ceil(float(request["wall_seconds"]))),
            "file_bytes": int(request["file_bytes"]),
            "open_files": int(request.get("open_files", 256)),
            "processes": int(request.get("processes", 64)),
            "uid": self.uid,
            "tmp": self.tmp,
            "seccomp": self.seccomp,
        }

    def prefork_run(self) -> _Run:
        """Fork the process the next run executes in, before any request exists (no fork on the way of
        a request): it waits for its request on a pipe of its own, then becomes the run."""
        req_r, req_w = os.pipe()
        out_r, out_w = os.pipe()
        res_r, res_w = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            for fd in (req_r, req_w, out_r, out_w, res_r, res_w):
                os.close(fd)
            raise
        if pid == 0:  # the run: never returns
            try:
                for fd in (req_w, out_r, res_r):
                    os.close(fd)
                request = protocol.read_message(req_r, protocol.MAX_REQUEST_BYTES)
                if request is not None:
                    import harness

                    fds = {"output": out_w, "result": res_w, "devnull": self.devnull}
                    harness.child_main(request, fds, self.limits(request))
            finally:
                os._exit(74)
        for fd in (req_r, out_w, res_w):
            os.close(fd)
        with contextlib.suppress(OSError):  # the child does it too
            os.setpgid(pid, pid)
        return _Run(pid, req_w, out_r, res_r)

    def evaluate(self, request: dict[str, Any], started_callback: Any = None,
                 run: _Run | None = None) -> dict[str, Any]:
        """Run one request in ``run`` (forked ahead by ``prefork_run``, or now) and build its outcome."""
        wall = float(request["wall_seconds"])
        budget = int(request["output_bytes"])
        cpu_seconds = self.limits(request)["cpu_seconds"]
        assert run is not None, "runs are forked by the zygote, not by the supervisor"
        pid, out_r, res_r = run.pid, run.output, run.result
        started = time.monotonic()
        try:
            protocol.write_message(run.request, request)
        except OSError:
            pass  # the process is gone already: its wait status says how
        finally:
            os.close(run.request)
        if started_callback is not None:
            started_callback()

        watch = self._watch(pid, out_r, res_r, started + wall, budget)
        ended = time.monotonic()
        status_word, rusage = self._finish_run(pid, watch["exited"])
        self._drain(out_r, watch["output"], budget + 1)
        self._drain(res_r, watch["result"], protocol.MAX_RESULT_BYTES + 1)
        os.close(out_r)
        os.close(res_r)

        output: bytearray = watch["output"]
        # A character cut by the budget is dropped, not turned into replacement characters.
        stdout = codecs.getincrementaldecoder("utf-8")("replace").decode(bytes(output[:budget]), final=False)
        cpu_ms = int((rusage.ru_utime + rusage.ru_stime) * 1000) if rusage else 0
        outcome: dict[str, Any] = {
            "status": "crashed",
            "checks": [],
            "stdout": stdout,
            "error": "",
            "duration_ms": int((ended - started) * 1000),
            "extra": {"cpu_ms": cpu_ms, "max_rss_kb": int(rusage.ru_maxrss) if rusage else 0},
        }
        # What happened is also said as data (extra "why", "limit"): the tutor words it for the learner.
        extra = outcome["extra"]
        if watch["timed_out"]:
            outcome["status"] = "timeout"
            outcome["error"] = f"Your code ran for more than {wall:g} s and was stopped."
            extra.update(why="wall", limit=wall)
        elif watch["result_over"]:
            outcome["error"] = "Your code interfered with how results are reported (a result far too large)."
            extra["why"] = "report"
        elif len(output) > budget or watch["output_over"]:
            outcome["status"] = "output_limit"
            outcome["error"] = f"Your code printed more than {budget} bytes and was stopped."
            extra.update(why="output", limit=budget)
        elif os.WIFSIGNALED(status_word) and (
            os.WTERMSIG(status_word) == signal.SIGXCPU
            or (os.WTERMSIG(status_word) == signal.SIGKILL and cpu_ms >= cpu_seconds * 1000)
        ):
            outcome["status"] = "timeout"
            outcome["error"] = f"Your code used more than {cpu_seconds} s of CPU time and was stopped."
            extra.update(why="cpu", limit=cpu_seconds)
        elif os.WIFEXITED(status_word) and os.WEXITSTATUS(status_word) == 0 and watch["result"]:
            parsed = self._parse_result(bytes(watch["result"]), request)
            for key in ("graph", "graph_problem", "pictures", "why"):
                if key in parsed:
                    extra[key] = parsed.pop(key)
            outcome.update(parsed)
        else:
            outcome["error"] = self._crash_message(status_word)
            if os.WIFSIGNALED(status_word):
                outcome["extra"]["signal"] = signal.Signals(os.WTERMSIG(status_word)).name
            elif os.WIFEXITED(status_word):
                outcome["extra"]["exit_code"] = os.WEXITSTATUS(status_word)
        return outcome

    def python_readable(self) -> bool:
        """Whether a run (after dropping its uid) can still read the Python installation; without
        bubblewrap a Python under a private home (say /root/.pyenv) is out of its reach, and every
        import not preloaded here would fail."""
        if self.uid < 0:
            return True
        places = [os.path.dirname(os.__file__), *(p for p in sys.path if p.endswith("-packages"))]
        pid = os.fork()
        if pid == 0:
            try:
                os.setgroups([])
                os.setgid(self.uid)
                os.setuid(self.uid)
                os._exit(0 if all(os.access(p, os.R_OK | os.X_OK) for p in places) else 1)
            except BaseException:
                os._exit(2)
        _, status = os.waitpid(pid, 0)
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            return True
        print(
            f"sandbox worker: WARNING: uid {self.uid} cannot read the Python installation ({places[0]}); "
            "learners' imports of modules not preloaded will fail. Use bubblewrap, or install Python "
            "where every user can read it.",
            file=sys.stderr,
        )
        return False

    @staticmethod
    def _seccomp_works() -> bytes | None:
        """The seccomp filter, if it loads here (tried once, in a throw-away child)."""
        filter_program = seccomp.program()
        if filter_program is None:
            return None
        pid = os.fork()
        if pid == 0:
            try:
                seccomp.install(filter_program)
                os._exit(0)
            except BaseException:
                os._exit(1)
        _, status = os.waitpid(pid, 0)
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            return filter_program
        print("sandbox worker: the seccomp filter does not load here; running without it", file=sys.stderr)
        return None

    def _watch(self, pid: int, out_r: int, res_r: int, deadline: float, budget: int) -> dict[str, Any]:
        """Read the run's output and verdict until it ends (the zygote, its parent, says so on our
        socket), the wall clock runs out, or it writes too much."""
        state: dict[str, Any] = {
            "output": bytearray(),
            "result": bytearray(),
            "exited": False,
            "timed_out": False,
            "output_over": False,
            "result_over": False,
        }
        ended = self.sock.fileno()
        poller = select.poll()
        poller.register(out_r, select.POLLIN)
        poller.register(res_r, select.POLLIN)
        poller.register(ended, select.POLLIN)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                state["timed_out"] = True
                return state
            for fd, _event in poller.poll(max(1, math.ceil(remaining * 1000))):
                if fd == ended:
                    state["exited"] = True
                elif fd == out_r:
                    if not _read_into(out_r, state["output"], poller):
                        continue
                    if len(state["output"]) > budget:
                        state["output_over"] = True
                        return state
                elif fd == res_r:
                    _read_into(res_r, state["result"], poller)
                    if len(state["result"]) > protocol.MAX_RESULT_BYTES:
                        state["result_over"] = True
                        return state
            if state["exited"]:
                return state

    def _finish_run(self, pid: int, exited: bool) -> tuple[int, Any]:
        """Kill the run if it is still going; its wait status and resource usage, from the zygote."""
        if not exited:
            _kill(pid, signal.SIGKILL)
        _kill(-pid, signal.SIGKILL)  # its process group (the zygote kills whatever else it started)
        message = self.sock.recv(256)
        if not message.startswith(MSG_ENDED):
            raise RuntimeError("the zygote did not report the run's end")
        status, utime, stime, maxrss = message[1:].split()
        usage = types.SimpleNamespace(ru_utime=float(utime), ru_stime=float(stime), ru_maxrss=int(maxrss))
        return int(status), usage

    def _kill_descendants(self, exclude: set[int] | frozenset[int] = frozenset()) -> None:
        """Whatever escaped the process group (setsid, double fork) was reparented to us, the
        subreaper: kill and reap until nothing is left (but ``exclude``: the supervisor)."""
        me = os.getpid()
        give_up = time.monotonic() + 2.0
        while True:
            _reap_all(exclude)
            victims = _descendants(me) - set(exclude)
            if not victims:
                return
            if time.monotonic() > give_up:
                print(f"sandbox worker: could not clear processes {sorted(victims)[:10]}", file=sys.stderr)
                return
            for victim in victims:
                _kill(victim, signal.SIGKILL)
            time.sleep(0.002)

    def _drain(self, fd: int, into: bytearray, cap: int) -> None:
        """Read what is left in a pipe whose writers are all dead now (or soon)."""
        os.set_blocking(fd, False)
        give_up = time.monotonic() + 0.5
        while len(into) < cap and time.monotonic() < give_up:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if not ready:
                continue
            try:
                chunk = os.read(fd, min(65536, cap - len(into)))
            except BlockingIOError:
                continue
            if not chunk:
                return
            into += chunk

    @staticmethod
    def _parse_result(raw: bytes, request: dict[str, Any]) -> dict[str, Any]:
        """The run's own verdict, validated: it is learner-controlled data."""
        try:
            result = protocol.decode(raw[protocol.HEADER.size :])
            (size,) = protocol.HEADER.unpack(raw[: protocol.HEADER.size])
            if size != len(raw) - protocol.HEADER.size:
                raise ValueError("length mismatch")
            status = result["status"]
            if status not in ("ok", "error", "memory"):
                raise ValueError(f"bad status {status!r}")
            wanted = [str(c["id"]) for c in request["checks"]]
            checks = []
            for item, check_id in zip(result.get("checks", []), wanted, strict=False):
                if str(item["id"]) != check_id:
                    raise ValueError("check ids do not match")
                say, values = protocol.clean_check_data(item.get("say"), item.get("values"))
                checks.append(
                    {
                        "id": check_id,
                        "passed": item["passed"] is True,
                        "detail": protocol.clean_text(item.get("detail", ""), protocol.DETAIL_CHARS),
                        "say": say,
                        "values": values,
                    }
                )
            if status == "ok" and len(checks) != len(wanted):
                raise ValueError("missing check results")
            parsed: dict[str, Any] = {
                "status": status,
                "checks": checks,
                "error": protocol.clean_text(result.get("error", ""), protocol.ERROR_CHARS),
            }
            if status == "error" and result.get("why") == "exit":
                parsed["why"] = "exit"
            if isinstance(request.get("graph"), dict) and status == "ok":
                if "graph" in result:
                    parsed["graph"] = protocol.clean_graph(result["graph"])
                else:
                    parsed["graph_problem"] = protocol.clean_problem(result.get("problem"))
            if request.get("pictures") is True and status == "ok":
                parsed["pictures"] = protocol.clean_pictures(result.get("pictures", {}))
            return parsed
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError, MemoryError) as exc:
            why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:200]
            return {
                "status": "crashed",
                "checks": [],
                "error": f"Your code interfered with how results are reported ({why}).",
                "why": "report",
            }

    @staticmethod
    def _crash_message(status_word: int) -> str:
        if os.WIFSIGNALED(status_word):
            sig = os.WTERMSIG(status_word)
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = f"signal {sig}"
            hint = SIGNAL_HINTS.get(signal.Signals(sig), name) if sig in SIGNAL_HINTS else name
            return f"The Python process running your code died of {name} ({hint})."
        code = os.WEXITSTATUS(status_word) if os.WIFEXITED(status_word) else -1
        return (
            f"The Python process running your code exited early (status {code}), before the checks could run "
            "(os._exit(), or something closed its result channel)."
        )


# -- process helpers -----------------------------------------------------------------------------


def _read_into(fd: int, into: bytearray, poller: select.poll) -> bool:
    try:
        chunk = os.read(fd, 65536)
    except OSError:
        chunk = b""
    if not chunk:
        poller.unregister(fd)
        return False
    into += chunk
    return True


def _kill(pid: int, sig: int) -> None:
    with contextlib.suppress(OSError):
        os.kill(pid, sig)


def _reap_all(exclude: set[int] | frozenset[int] = frozenset()) -> None:
    """Reap every child that has ended (but those in ``exclude``, left for their own wait)."""
    for pid in _children(os.getpid()) - set(exclude):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def _children(parent: int) -> set[int]:
    try:
        with open(f"/proc/{parent}/task/{parent}/children") as f:
            return {int(p) for p in f.read().split()}
    except OSError:
        return set()


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(name))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


# -- main loop -----------------------------------------------------------------------------------


def _prctl(libc: Any, option: int, value: int) -> bool:
    try:
        return int(libc.prctl(option, value, 0, 0, 0)) == 0
    except (AttributeError, OSError):
        return False


def _os_threads() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return -1


def _tmp_free(path: str) -> tuple[int, int] | None:
    """(free blocks, free inodes) of ``path`` when it is a file system of its own (the private tmpfs),
    else ``None`` (a plain directory on a shared disk: its free space says nothing about us)."""
    try:
        if os.stat(path).st_dev == os.stat(os.path.dirname(os.path.abspath(path)) or "/").st_dev:
            return None
        info = os.statvfs(path)
    except OSError:
        return None
    return info.f_bfree, info.f_ffree


def _hide_command_line() -> bool:
    """Overwrite our argv in memory, which is what ``/proc/<pid>/cmdline`` shows to the runs (it
    holds the host's paths of Python and of the site directories)."""
    try:
        with open("/proc/self/stat", "rb") as f:
            stat = f.read()
        fields = stat[stat.rfind(b")") + 2 :].split()
        start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end: fields 48 and 49 of proc(5)
        if not 0 < start < end or end - start > 1 << 20:
            return False
        ctypes.memset(start, 0, end - start)
        title = b"sandbox-worker"[: end - start - 1]
        ctypes.memmove(start, title, len(title))
    except (OSError, ValueError, IndexError):
        return False
    return True


def _uid_mapped(uid: int) -> bool:
    try:
        with open("/proc/self/uid_map") as f:
            for line in f:
                inside, _outside, count = (int(x) for x in line.split())
                if inside <= uid < inside + count:
                    return True
    except (OSError, ValueError):
        return False
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tmp", required=True)
    parser.add_argument("--uid", type=int, default=-1, help="the uid runs drop to (when we are root)")
    parser.add_argument("--pidns", action="store_true", help="we run in our own PID namespace")
    parser.add_argument("--site", action="append", default=[], help="a site directory torch lives in")
    parser.add_argument("--wipe-seconds", type=float, default=2.0, help="emptying tmp may take this long")
    args = parser.parse_args(argv)
    for directory in args.site:  # -I leaves out e.g. the user site: add where torch really is
        if directory not in sys.path and os.path.isdir(directory):
            sys.path.append(directory)  # not site.addsitedir: its .pth files name the bot's checkout
    hidden = _hide_command_line()  # /proc/1/cmdline would show the host's paths

    # The protocol lives on fds of its own; 0 and 1 become /dev/null and stderr, so a stray print
    # (ours or torch's) cannot corrupt it.
    proto_in, proto_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    os.close(devnull)
    for name in THREAD_ENV:
        os.environ[name] = "1"

    pid_namespace = args.pidns and os.getpid() <= 2  # double-check before ever using kill(-1)
    uid = args.uid if (args.uid >= 0 and os.geteuid() == 0 and _uid_mapped(args.uid)) else -1
    worker = Worker(args.tmp, uid, pid_namespace, args.wipe_seconds)
    subreaper = _prctl(worker.libc, PR_SET_CHILD_SUBREAPER, 1)
    _prctl(worker.libc, PR_SET_DUMPABLE, 0)  # a same-uid run cannot ptrace or read our memory

    try:
        started = time.monotonic()
        import torch

        torch.set_num_threads(1)
        torch.set_num_interop_threads(1)
        import importlib

        for module in PRELOAD:
            importlib.import_module(module)
        import harness  # noqa: F401

        # Everything imported so far is never collected (it lives as long as the worker): moved out of
        # the collector's reach, so that the supervisor's or a run's collections do not write to (and copy)
        # the pages they share with us.
        gc.collect()
        gc.freeze()
    except BaseException as exc:
        protocol.write_message(proto_out, {"type": "ready", "ok": False, "error": f"{type(exc).__name__}: {exc}"})
        return 1

    info = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "import_ms": int((time.monotonic() - started) * 1000),
        "pid": os.getpid(),
        "pid_namespace": pid_namespace,
        "subreaper": subreaper,
        "run_uid": uid if uid >= 0 else os.getuid(),
        "uid_drop": uid >= 0,
        "seccomp_denied": len(seccomp.DENIED_X86_64) if worker.seccomp else 0,
        "python_readable": worker.python_readable(),
        "threads": torch.get_num_threads(),
        "os_threads_at_fork": _os_threads(),  # must be 1: forking a multi-threaded process is unsafe
        "fresh_runner": True,
        "tmp_verified": "tmpfs" if worker.tmp_baseline is not None else "listing",
        "command_line_hidden": hidden,
    }
    if info["os_threads_at_fork"] != 1:
        print(f"sandbox worker: {info['os_threads_at_fork']} threads before fork (expected 1)", file=sys.stderr)
    protocol.write_message(proto_out, {"type": "ready", "ok": True, "info": info})

    return worker.serve(proto_in, proto_out)


if __name__ == "__main__":
    sys.exit(main())

"""The bot-side pool of warm workers: start, hand out, replace, validate what comes back.

This module never imports torch: the workers do (see ``worker.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from bot.sandbox import launch as launching
from bot.sandbox import protocol, tmpwipe
from bot.sandbox.config import SandboxConfig
from dialogs.errors import SandboxError, SandboxUnavailable
from dialogs.evaluation import CheckResult, CheckSpec, EvalOutcome

log = logging.getLogger("bot.sandbox")

#: How long a worker may take to import torch and say it is ready.
START_TIMEOUT = 120.0
#: The bot's own deadline is the wall limit plus this: the worker enforces the wall clock itself,
#: this only catches a wedged worker (which is then killed and replaced).
BACKSTOP_GRACE = 5.0
#: After a failed start, wait this long before trying again on demand.
RESPAWN_BACKOFF = 5.0
CLOSE_TIMEOUT = 3.0

EXTRA_KEYS: dict[str, type | tuple[type, ...]] = {"cpu_ms": int, "max_rss_kb": int, "signal": str, "exit_code": int,
                                                  "why": str, "limit": (int, float)}
#: What ``extra["why"]`` may say happened to a run (the learner is told in their language, dialogs/runs.py).
WHYS = ("wall", "cpu", "output", "report", "exit", "killed", "code_size")


class _Busy(SandboxError):
    """The queue for a worker is full, or the wait was too long."""


class _WorkerGone(SandboxError):
    """The worker process ended or broke the protocol mid-request."""

    before_start = False


class _Worker:
    """One warm worker process and its pipes."""

    def __init__(self, index: int, proc: asyncio.subprocess.Process, tmp_dir: str | None) -> None:
        self.index = index
        self.proc = proc
        self.tmp_dir = tmp_dir
        self.info: dict[str, Any] = {}
        self.stderr_task: asyncio.Task[None] | None = None
        self.exit_task: asyncio.Task[None] | None = None

    async def read_message(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        try:
            header = await self.proc.stdout.readexactly(protocol.HEADER.size)
            (size,) = protocol.HEADER.unpack(header)
            if size > protocol.MAX_REPLY_BYTES:
                raise _WorkerGone(f"reply of {size} bytes is over the limit")
            return protocol.decode(await self.proc.stdout.readexactly(size))
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise _WorkerGone("the worker process ended") from exc
        except (ValueError, RecursionError) as exc:
            raise _WorkerGone(f"unreadable reply: {type(exc).__name__}") from exc

    async def call(self, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send a run request and wait for its result. ``_WorkerGone.before_start`` tells whether the
        worker was already dead (the run never began: safe to retry elsewhere)."""
        assert self.proc.stdin is not None
        started = False
        try:
            async with asyncio.timeout(timeout):
                try:
                    self.proc.stdin.write(protocol.encode(message))
                    await self.proc.stdin.drain()
                except (ConnectionError, RuntimeError) as exc:
                    raise _WorkerGone("the worker process ended") from exc
                while True:
                    reply = await self.read_message()
                    if reply.get("type") != "started":
                        return reply
                    if reply.get("id") != message["id"]:
                        raise _WorkerGone("the worker acknowledged another request")
                    started = True
        except _WorkerGone as exc:
            exc.before_start = not started
            raise

    async def pump_stderr(self) -> None:
        """The worker's stderr is our log (what it says there is about us, not the learner)."""
        assert self.proc.stderr is not None
        while True:
            line = await self.proc.stderr.readline()
            if not line:
                return
            text = line.decode("utf-8", "replace").rstrip().removeprefix("sandbox worker: ")
            if text:
                log.warning("sandbox worker %d: %s", self.index, text[:1000])

    async def stop(self, graceful: bool) -> None:
        if graceful and self.proc.returncode is None and self.proc.stdin is not None:
            self.proc.stdin.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), CLOSE_TIMEOUT)
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        await self.proc.wait()
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        for task in (self.stderr_task, self.exit_task):
            if task is not None and task is not asyncio.current_task():
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(task, 1.0)
        if self.tmp_dir:
            await asyncio.to_thread(remove_tree, self.tmp_dir)


class Sandbox:
    """Runs learners' code against hidden checks in warm, isolated torch workers.

    ``evaluate`` never raises for anything the learner's code does; when our own machinery fails
    it returns an outcome with status ``"unavailable"`` and says why in ``error``.
    """

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self._bwrap: str | None = None
        self._bwrap_problem = ""
        self._namespaces: tuple[str, ...] = ()
        self._idle: list[_Worker] = []
        self._workers: set[_Worker] = set()
        self._spawning = 0
        self._failure: str | None = None
        self._failed_at = 0.0
        self._cond: asyncio.Condition | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._indexes = itertools.count()
        self._ids = itertools.count(1)
        self._started = False
        self._closed = False
        self._waiting = 0  # submissions waiting for a worker
        self._starting: asyncio.Event | None = None  # set while start() runs, for evaluate() to wait on
        self._start_error = ""
        self._worker_info: dict[str, Any] = {}

    # -- life cycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Choose the isolation, then start the workers (they import torch, in parallel).

        Raises ``SandboxUnavailable`` when no worker can start, or when ``use_bwrap=True`` and
        bubblewrap does not work here.
        """
        if self._started or self._starting is not None:
            return
        self._starting = starting = asyncio.Event()
        self._cond = asyncio.Condition()
        try:
            await self._start()
        except BaseException as exc:
            self._start_error = str(exc) or type(exc).__name__
            raise
        finally:
            self._starting = None
            starting.set()

    async def _start(self) -> None:
        await self._choose_isolation()
        results = await asyncio.gather(*(self._spawn() for _ in range(self.config.workers)), return_exceptions=True)
        workers = [r for r in results if isinstance(r, _Worker)]
        errors = [r for r in results if not isinstance(r, _Worker)]
        for error in errors:
            if not isinstance(error, Exception):
                for worker in workers:
                    await worker.stop(graceful=False)
                raise error
        if not workers:
            raise SandboxUnavailable(f"no sandbox worker could start: {errors[0]}")
        self._started = True
        for worker in workers:
            self._workers.add(worker)
            self._idle.append(worker)
        self._worker_info = dict(workers[0].info)
        if errors:
            log.warning("sandbox: %d of %d workers failed to start: %s", len(errors), len(results), errors[0])
            self._failure, self._failed_at = str(errors[0]), time.monotonic()
        log.info(
            "sandbox: %d workers ready (isolation: %s, torch %s)",
            len(workers),
            self.isolation,
            self._worker_info.get("torch"),
        )

    async def _choose_isolation(self) -> None:
        wanted = self.config.use_bwrap
        if wanted is False:
            self._bwrap_problem = "disabled in the configuration"
        else:
            bwrap = launching.find_bwrap()
            problem: str | None = "bubblewrap (bwrap) is not installed"
            if bwrap is not None:
                problem = await asyncio.to_thread(launching.bwrap_self_test, bwrap, self.config.tmpfs_mb)
            if problem is None:
                self._bwrap = bwrap
                self._namespaces = launching.bwrap_command(bwrap or "bwrap", self.config.tmpfs_mb)[1]
                return
            self._bwrap_problem = problem
            if wanted:
                raise SandboxUnavailable(f"bubblewrap is required but does not work here: {problem}")
        if wanted is None:
            log.warning(
                "sandbox: WARNING: running learners' code WITHOUT bubblewrap (%s). Network, the file "
                "system and other processes are NOT isolated; only rlimits, the wall clock, a clean "
                "environment and (as root) an unprivileged uid protect the bot. Install bubblewrap "
                "and run 'python -m bot doctor'.",
                self._bwrap_problem,
            )

    async def close(self) -> None:
        """Stop every worker (their sandboxes die with them)."""
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        workers = list(self._workers)
        self._workers.clear()
        self._idle.clear()
        await asyncio.gather(*(w.stop(graceful=True) for w in workers), return_exceptions=True)
        if self._cond is not None:
            async with self._cond:
                self._cond.notify_all()

    # -- what the bot asks --------------------------------------------------------------------

    @property
    def isolation(self) -> str:
        return "bwrap" if self._bwrap else "none"

    def is_saturated(self) -> bool:
        """True when every worker is busy: a new submission will wait (tell the learner "queued")."""
        return not self._idle

    @property
    def waiting(self) -> int:
        """Submissions waiting for a free worker now."""
        return self._waiting

    def layers(self) -> dict[str, bool | str]:
        """The isolation layers in force, for logs and ``doctor``."""
        cfg = self.config
        bwrap = self._bwrap is not None
        info = self._worker_info
        uid_drop = bool(info.get("uid_drop"))
        seccomp = bool(info.get("seccomp_denied"))
        return {
            "bubblewrap": True if bwrap else f"no: {self._bwrap_problem or 'not started'}",
            "namespaces": ",".join(self._namespaces) if bwrap else False,
            "no_network": bwrap,
            "private_filesystem": "read-only /usr and Python, torch at /site; repo, .env, database invisible"
            if bwrap
            else False,
            "private_tmp": (
                f"{cfg.tmpfs_mb} MiB tmpfs, emptied after each run and verified (every block and inode free "
                "again), else the worker is replaced"
                if bwrap and info.get("tmp_verified") == "tmpfs"
                else "own directory, emptied after each run and verified empty, else the worker is replaced; "
                "removed at close"
            ),
            "fresh_process_per_run": (
                "each run forked, before its request, from a process that never held a request or outcome"
                if info.get("fresh_runner")
                else False
            ),
            "clean_environment": True,
            "own_pid_namespace": (
                "worker is PID 1, its command line hidden" if info.get("pid_namespace") and info.get(
                    "command_line_hidden") else bool(info.get("pid_namespace"))
            ),
            "unprivileged_uid": f"one uid per worker (e.g. {info.get('run_uid')})" if uid_drop else False,
            "capabilities": "CAP_SETUID,CAP_SETGID,CAP_KILL in the worker, none in runs"
            if bwrap and uid_drop
            else ("none" if bwrap else "unchanged"),
            "seccomp": (
                f"{info['seccomp_denied']} system calls denied (new processes and namespaces, ptrace, mount, "
                "bpf, io_uring, memfd and shared memory, keyrings...), personality and socket families "
                "restricted, no new privileges"
                if seccomp
                else False
            ),
            "memory_per_run": (
                f"address space +{cfg.memory_mb} MiB for the whole run: one process (fork denied), no memfd "
                f"or shared memory; files: the {cfg.tmpfs_mb} MiB tmp"
                if seccomp
                else f"address space +{cfg.memory_mb} MiB per process, up to 64 processes (no seccomp here)"
            ),
            "cgroup_v2": f"not used: {launching.cgroup_v2_status()}",
            "rlimits": (
                f"cpu {max(1, int(-(-cfg.wall_seconds // 1)))} s, address space +{cfg.memory_mb} MiB, "
                f"file size {cfg.tmpfs_mb} MiB, 256 files, 64 threads, no core"
            ),
            "wall_clock": f"{cfg.wall_seconds:g} s, whole run killed",
            "queue": f"at most {cfg.queue_limit} waiting for a worker, for {cfg.queue_seconds:g} s at most",
            "output_budget": f"{cfg.output_bytes} bytes",
            "json_results": True,
        }

    async def evaluate(self, code: str, checks: Sequence[CheckSpec]) -> EvalOutcome:
        """Run ``code`` then each check in one fresh namespace; never raises for the learner's code."""
        return await self._run(code, checks, None)

    async def graph(self, code: str, target: str | None = None) -> EvalOutcome:
        """Run ``code`` (same limits and isolation as ``evaluate``) and read the autograd graph of
        ``target``, or of the last tensor assigned at the top level (or a bare last expression).

        With status ``"ok"``, ``extra["graph"]`` holds the graph (see ``autograph.py``; validated by
        ``protocol.clean_graph``), or ``extra["graph_problem"]`` says why there is none:
        ``{"reason": "no_tensor" | "not_found" | "not_tensor" | "leaf" | "no_grad" | "failed" | "invalid",
        "name": ...}``. Errors and timeouts come back as for ``evaluate``.
        """
        return await self._run(code, (), {"target": target or ""})

    async def pictures(self, code: str) -> EvalOutcome:
        """Run a lesson's ``code`` (same limits and isolation as ``evaluate``) and bring back the pictures it
        made: with status ``"ok"``, ``extra["pictures"]`` holds ``{"graphs": [...], "images": [...],
        "dropped": n}``: ``torchviz.make_dot`` graphs as data (``protocol.clean_dot_graph``; the bot draws
        them) and matplotlib figures as small PNGs in base64 (``protocol.clean_png``; forwarded, never
        decoded here). Errors and timeouts come back as for ``evaluate``."""
        return await self._run(code, (), None, pictures=True)

    async def _run(self, code: str, checks: Sequence[CheckSpec], graph: dict[str, str] | None, *,
                   pictures: bool = False) -> EvalOutcome:
        size = len(code.encode("utf-8", "surrogatepass"))
        if size > protocol.MAX_CODE_BYTES:
            return EvalOutcome(
                status="error",
                error=f"Your code is {size} bytes long; the limit is {protocol.MAX_CODE_BYTES} bytes.",
                extra={"why": "code_size", "limit": protocol.MAX_CODE_BYTES},
            )
        if self._starting is not None:  # start() is still importing torch in the workers
            await self._starting.wait()
        if not self._started or self._closed:
            return _unavailable(
                f"the sandbox did not start: {self._start_error}" if self._start_error else "the sandbox is not running"
            )
        request: dict[str, Any] = {
            "type": "run",
            "id": next(self._ids),
            "code": code,
            "checks": [{"id": c.id, "code": c.code} for c in checks],
            "wall_seconds": self.config.wall_seconds,
            "memory_mb": self.config.memory_mb,
            "output_bytes": self.config.output_bytes,
            "file_bytes": self.config.tmpfs_mb << 20,
        }
        if graph is not None:
            request["graph"] = graph
        if pictures:
            request["pictures"] = True
        queued = time.monotonic()
        for attempt in itertools.count(1):
            try:
                worker = await self._acquire()
            except SandboxUnavailable as exc:
                return _unavailable(str(exc))
            except _Busy as exc:
                return EvalOutcome(status="busy", error=str(exc), extra={"busy": "queue"})
            queued_ms = int((time.monotonic() - queued) * 1000)
            try:
                reply = await worker.call(request, self.config.wall_seconds + BACKSTOP_GRACE)
            except TimeoutError:
                log.error("sandbox worker %d missed its deadline; replacing it", worker.index)
                await self._discard(worker)
                return EvalOutcome(
                    status="timeout",
                    error=f"Your code ran for more than {self.config.wall_seconds:g} s and was stopped.",
                    extra={"backstop": True, "why": "wall", "limit": self.config.wall_seconds},
                )
            except _WorkerGone as exc:
                await self._discard(worker)
                if exc.before_start and attempt <= self.config.workers + 1:  # it was dead already: retry
                    log.warning("sandbox worker %d was gone (%s); trying another", worker.index, exc)
                    continue
                log.warning("sandbox worker %d died during a run (%s); replacing it", worker.index, exc)
                return EvalOutcome(
                    status="crashed",
                    error="The sandbox process running your code was killed (did your code kill its parent?).",
                    extra={"why": "killed"},
                )
            except BaseException:
                await self._discard(worker)  # cancelled mid-run: the worker's state is unknown
                raise
            break
        await self._release(worker)
        try:
            outcome = self._validated(reply, request)
        except (ValueError, KeyError, TypeError) as exc:
            log.error("sandbox worker %d sent an invalid reply: %s", worker.index, exc)
            return _unavailable(f"the sandbox sent an invalid reply ({exc})")
        if outcome.status == "unavailable":
            log.error("sandbox worker %d failed: %s", worker.index, outcome.error)
        outcome.extra["queued_ms"] = queued_ms
        outcome.extra["isolation"] = self.isolation
        return outcome

    # -- the pool -----------------------------------------------------------------------------

    async def _spawn(self) -> _Worker:
        index = next(self._indexes)
        tmp_dir = None
        uid = launching.run_uid(index)
        if self._bwrap:
            how = launching.bwrap_launch(self._bwrap, self.config.tmpfs_mb, uid, self.config.wipe_seconds)
        else:
            tmp_dir = launching.private_tmp_dir()
            how = launching.plain_launch(tmp_dir, uid, self.config.wipe_seconds)
        try:
            proc = await asyncio.create_subprocess_exec(
                *how.argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=how.env,
                cwd=how.cwd,
                start_new_session=True,
            )
        except OSError as exc:
            if tmp_dir:
                await asyncio.to_thread(remove_tree, tmp_dir)
            raise SandboxUnavailable(f"cannot start a sandbox worker: {exc}") from exc
        worker = _Worker(index, proc, tmp_dir)
        worker.stderr_task = asyncio.create_task(worker.pump_stderr())
        try:
            async with asyncio.timeout(START_TIMEOUT):
                hello = await worker.read_message()
        except (TimeoutError, _WorkerGone) as exc:
            await worker.stop(graceful=False)
            raise SandboxUnavailable(f"a sandbox worker did not start: {exc or 'timeout'}") from exc
        except BaseException:
            await worker.stop(graceful=False)
            raise
        if hello.get("type") != "ready" or not hello.get("ok"):
            await worker.stop(graceful=False)
            raise SandboxUnavailable(f"a sandbox worker could not start: {hello.get('error', hello)}")
        worker.info = dict(hello.get("info") or {})
        worker.exit_task = asyncio.create_task(self._on_exit(worker))
        return worker

    async def _on_exit(self, worker: _Worker) -> None:
        """A worker that dies while idle is replaced at once (a busy one by ``evaluate``)."""
        await worker.proc.wait()
        if self._closed:
            return
        if worker in self._idle or worker not in self._workers:  # idle, or dropped by _acquire
            log.warning("sandbox worker %d exited (status %s); replacing it", worker.index, worker.proc.returncode)
            await self._discard(worker)

    def _condition(self) -> asyncio.Condition:
        assert self._cond is not None
        return self._cond

    async def _acquire(self) -> _Worker:
        """A free worker; waits in a bounded queue (``queue_limit`` submissions, ``queue_seconds``)."""
        cond = self._condition()
        async with cond:
            worker = self._take_idle()
            if worker is not None:
                return worker
            if self._waiting >= self.config.queue_limit:
                raise _Busy(f"{self._waiting} submissions are already waiting for a worker")
            self._waiting += 1
            try:
                async with asyncio.timeout(self.config.queue_seconds):
                    while True:
                        await cond.wait()
                        worker = self._take_idle()
                        if worker is not None:
                            return worker
            except TimeoutError:
                raise _Busy(f"no worker was free within {self.config.queue_seconds:g} s") from None
            finally:
                self._waiting -= 1

    def _take_idle(self) -> _Worker | None:
        """An idle live worker, or ``None`` (then replacements are on their way). Holds the condition."""
        if self._closed:
            raise SandboxUnavailable("the sandbox is closed")
        while self._idle:
            worker = self._idle.pop(0)  # the longest idle: its next run is surely forked and waiting
            if worker.proc.returncode is None:
                return worker
            self._workers.discard(worker)  # died while idle; _on_exit stops and replaces it
        self._refill()
        if not self._workers and not self._spawning:
            raise SandboxUnavailable(self._failure or "no sandbox worker is running")
        return None

    async def _release(self, worker: _Worker) -> None:
        cond = self._condition()
        async with cond:
            if self._closed or worker not in self._workers:
                return
            self._idle.append(worker)
            cond.notify_all()  # waiters re-check; one whose wait timed out must not swallow the wake-up

    async def _discard(self, worker: _Worker) -> None:
        self._workers.discard(worker)
        with contextlib.suppress(ValueError):
            self._idle.remove(worker)
        await worker.stop(graceful=False)
        cond = self._condition()
        async with cond:
            self._refill(force=True)
            cond.notify_all()

    def _refill(self, force: bool = False) -> None:
        """Start replacements for missing workers (not too eagerly after a failure)."""
        if self._closed:
            return
        if not force and self._failure and time.monotonic() - self._failed_at < RESPAWN_BACKOFF:
            return
        missing = self.config.workers - len(self._workers) - self._spawning
        for _ in range(max(0, missing)):
            self._spawning += 1
            task = asyncio.create_task(self._replace())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _replace(self) -> None:
        cond = self._condition()
        try:
            worker = await self._spawn()
        except Exception as exc:
            log.error("sandbox: could not start a replacement worker: %s", exc)
            async with cond:
                self._spawning -= 1
                self._failure, self._failed_at = str(exc), time.monotonic()
                cond.notify_all()
            return
        except BaseException:
            self._spawning -= 1
            raise
        async with cond:
            self._spawning -= 1
            if self._closed:
                await worker.stop(graceful=False)
                return
            self._failure = None
            self._workers.add(worker)
            self._idle.append(worker)
            cond.notify_all()

    # -- what comes back ----------------------------------------------------------------------

    def _validated(self, reply: dict[str, Any], request: dict[str, Any]) -> EvalOutcome:
        """The worker's reply as an ``EvalOutcome``, checked and capped (it is untrusted data)."""
        if reply.get("type") != "result" or reply.get("id") != request["id"]:
            raise ValueError("reply does not answer the request")
        data = reply.get("outcome")
        if not isinstance(data, dict):
            raise ValueError("no outcome in the reply")
        raw = EvalOutcome.from_dict(data)
        wanted = [c["id"] for c in request["checks"]]
        results = []
        for c in raw.checks:
            say, values = protocol.clean_check_data(c.say, c.values)
            detail = protocol.clean_text(c.detail, protocol.DETAIL_CHARS)
            results.append(CheckResult(id=c.id, passed=c.passed, detail=detail, say=say, values=values))
        checks = tuple(results)
        if [c.id for c in checks] != wanted[: len(checks)]:
            raise ValueError("check results do not match the checks")
        if raw.status == "ok" and len(checks) != len(wanted):
            raise ValueError("check results are missing")
        extra: dict[str, Any] = {}
        for key, kind in EXTRA_KEYS.items():
            value = raw.extra.get(key)
            if isinstance(value, kind) and not isinstance(value, bool):
                extra[key] = protocol.clean_text(value, 40) if kind is str else value
        if extra.get("why") not in WHYS:
            extra.pop("why", None)
        if "graph" in request and raw.status == "ok":
            try:
                if "graph" in raw.extra:
                    extra["graph"] = protocol.clean_graph(raw.extra["graph"])
                else:
                    extra["graph_problem"] = protocol.clean_problem(raw.extra.get("graph_problem"))
            except ValueError as exc:
                log.error("sandbox worker sent an invalid graph: %s", exc)
                extra.pop("graph", None)
                extra["graph_problem"] = {"reason": "invalid", "name": ""}
        if request.get("pictures") is True and raw.status == "ok":
            try:
                extra["pictures"] = protocol.clean_pictures(raw.extra.get("pictures", {}))
            except ValueError as exc:
                log.error("sandbox worker sent invalid pictures: %s", exc)
                extra["pictures"] = {"graphs": [], "images": [], "dropped": 1}
        return EvalOutcome(
            status=raw.status,
            checks=checks,
            stdout=protocol.clean_text(raw.stdout, self.config.output_bytes),
            error=protocol.clean_text(raw.error, protocol.ERROR_CHARS),
            duration_ms=max(0, min(raw.duration_ms, 10**7)),
            extra=extra,
        )


def remove_tree(path: str, seconds: float = 30.0) -> bool:
    """Remove a plain worker's directory, whatever its runs left in it (any depth, any permissions;
    ``shutil.rmtree`` recurses and gave up on a deep tree). ``True`` when it is gone."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        tmpwipe.wipe(path, deadline=deadline)
        try:
            os.rmdir(path)
            return True
        except FileNotFoundError:
            return True
        except OSError:
            time.sleep(0.01)  # a dying run may still have been writing: go again
    log.error("sandbox: could not remove %s", path)
    return False


def _unavailable(why: str) -> EvalOutcome:
    return EvalOutcome(status="unavailable", error=f"The code sandbox is unavailable: {why}")

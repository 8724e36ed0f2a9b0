"""Issue 10's classes of attack on the sandbox, each tried several ways.

- one run must never see another run's request or outcome (code, output, traceback);
- ``/tmp`` is verifiably empty for every run (deep trees, full disks, many entries), and nothing is
  left on the host after ``close()``, with or without bubblewrap;
- memory and processes are bounded per run, across everything the run can create;
- a result frame that is deep or huge fails that run only;
- the minor holes: ``personality``, ``modify_ldt``, AF_VSOCK, the host's paths in ``/proc/1/cmdline``;
- fairness: a bounded queue (in length and in time) answered "busy", not an endless wait.

Assertions are about what a learner or an operator sees, never about how fast a machine is.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio

from bot.sandbox import Sandbox, SandboxConfig
from bot.sandbox.runner import remove_tree
from dialogs.errors import SandboxUnavailable
from dialogs.evaluation import CheckSpec, EvalOutcome

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

REPO = Path(__file__).resolve().parents[1]
WALL = 5.0
MEMORY_MB = 384


def code(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["bwrap", "plain"])
async def sandbox(request: pytest.FixtureRequest) -> AsyncIterator[Sandbox]:
    config = SandboxConfig(workers=2, wall_seconds=WALL, memory_mb=MEMORY_MB, use_bwrap=request.param == "bwrap")
    sb = Sandbox(config)
    try:
        await sb.start()
    except SandboxUnavailable as exc:
        pytest.skip(f"no {request.param} sandbox here: {exc}")
    try:
        yield sb
    finally:
        await sb.close()


def bwrap_only(sandbox: Sandbox) -> None:
    if sandbox.layers()["bubblewrap"] is not True:
        pytest.skip("needs the bubblewrap layer")


def seccomp_only(sandbox: Sandbox) -> None:
    if not sandbox.layers()["seccomp"]:
        pytest.skip("needs the seccomp layer (x86_64)")


async def on_every_worker(sandbox: Sandbox, source: str, checks: list[CheckSpec] | None = None) -> list[EvalOutcome]:
    """Run ``source`` enough times, concurrently, to land on every worker."""
    n = sandbox.config.workers
    return list(await asyncio.gather(*(sandbox.evaluate(source, checks or []) for _ in range(2 * n))))


# ---------------------------------------------------------------- 1. nothing of the previous run

#: A later run looks for this in its own memory: the prefix is split in the source, and what follows
#: it must be 32 hex digits, which only the earlier run's secret has.
SECRET_PREFIX = "PREVRUN-" + "SECRET-"

MEMORY_SCAN = code(
    """
    import re
    pattern = re.compile(("PREVRUN-" + "SECRET-").encode() + rb"[0-9a-f]{32}")
    found = set()
    with open("/proc/self/maps") as maps, open("/proc/self/mem", "rb", buffering=0) as mem:
        for line in maps:
            fields = line.split()
            start, end = (int(x, 16) for x in fields[0].split("-"))
            path = fields[5] if len(fields) > 5 else ""
            # writable memory: the heap, anonymous maps, the stack (code and read-only data can't hold it)
            if "w" not in fields[1] or path.startswith("/") or end - start > 1 << 30:
                continue
            try:
                mem.seek(start)
                found.update(m.group().decode() for m in pattern.finditer(mem.read(end - start)))
            except (OSError, ValueError, OverflowError):
                pass
    """
)

FRAME_SCAN = code(
    """
    import gc, sys
    prefix = "PREVRUN-" + "SECRET-"
    found = set()

    def look(value, depth=0):
        if isinstance(value, (bytes, bytearray)):
            value = bytes(value).decode("latin-1")
        if isinstance(value, str):
            at = value.find(prefix)
            while at >= 0:
                candidate = value[at:at + len(prefix) + 32]
                if len(candidate) == len(prefix) + 32 and all(c in "0123456789abcdef" for c in candidate[len(prefix):]):
                    found.add(candidate)
                at = value.find(prefix, at + 1)
        elif isinstance(value, dict) and depth < 4:
            for k, v in list(value.items()):
                look(k, depth + 1)
                look(v, depth + 1)
        elif isinstance(value, (list, tuple)) and depth < 4:
            for v in list(value):
                look(v, depth + 1)

    frame = sys._getframe()
    while frame is not None:  # every live frame, up to the worker's own
        look(dict(frame.f_locals))
        frame = frame.f_back
    for obj in gc.get_objects():
        look(obj, 3)
    """
)


def leaky_run(secret: str) -> str:
    """A run whose code, output and traceback all hold ``secret``."""
    return f"secret = {secret!r}\nprint('my secret is', secret)\nraise ValueError(secret)\n"


@pytest.mark.parametrize("scan", [MEMORY_SCAN, FRAME_SCAN], ids=["raw memory", "frames and objects"])
async def test_a_run_never_sees_the_previous_runs(sandbox: Sandbox, scan: str) -> None:
    secrets_used = []
    for _ in range(3):
        secret = SECRET_PREFIX + secrets.token_hex(16)
        secrets_used.append(secret)
        done = await on_every_worker(sandbox, leaky_run(secret))
        assert all(o.status == "error" and secret in o.stdout and secret in o.error for o in done), done
    scans = await on_every_worker(sandbox, scan + "\nfound = sorted(found)\n",
                                  [CheckSpec("nothing", "assert found == [], found")])
    for outcome in scans:
        assert outcome.status == "ok", outcome
        assert outcome.passed, [c.detail for c in outcome.checks]


async def test_the_scan_would_find_a_secret_that_is_there(sandbox: Sandbox) -> None:
    """The memory scan is not blind: the run's own secret is found."""
    secret = SECRET_PREFIX + secrets.token_hex(16)
    mine = f"kept = {secret!r} * 1\n" + MEMORY_SCAN
    outcome = await sandbox.evaluate(mine, [CheckSpec("found", f"assert {secret!r} in found, found")])
    assert outcome.passed, outcome


# ---------------------------------------------------------------- 2. tmp: verifiably empty for every run

TMP_STATE = code(
    """
    import os, shutil
    here = os.getcwd()
    mine = sorted(e for e in os.listdir(".") if os.lstat(e).st_uid == os.getuid())
    free_mb = shutil.disk_usage(".").free >> 20
    """
)


async def assert_clean_tmp_everywhere(sandbox: Sandbox) -> None:
    checks = [CheckSpec("empty", "assert mine == [], mine")]
    if sandbox.layers()["bubblewrap"] is True:
        checks.append(CheckSpec("space", f"assert free_mb >= {sandbox.config.tmpfs_mb - 1}, free_mb"))
    for outcome in await on_every_worker(sandbox, TMP_STATE, checks):
        assert outcome.passed, outcome


DEEP_TREE_AND_FULL = code(
    """
    import os
    fd = os.open(".", os.O_RDONLY)
    for _ in range(3000):  # deeper than any recursion limit, longer than PATH_MAX
        os.mkdir("d", dir_fd=fd)
        inner = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = inner
    os.fchmod(fd, 0)
    try:
        with open("fill", "wb") as f:
            while True:
                f.write(b"\\0" * (1 << 20))
    except OSError:
        pass
    """
)

MANY_ENTRIES = code(
    """
    import os
    os.mkdir("many")
    try:
        for i in range(60_000):
            os.mkdir(f"many/{i}")
            open(f"e{i}", "w").close()
    except OSError:
        pass
    os.chmod("many", 0o100)
    """
)

ODD_NAMES_AND_MODES = code(
    """
    import os
    for name in ("-rf", ".hidden", "..." , " ", "\\n", "a\\\\b", "x" * 255, "\\u202e.gnp"):
        open(name, "w").write("x")
    os.symlink("/etc/passwd", "link-to-passwd")
    os.symlink(".", "loop")
    os.mkfifo("fifo")
    os.makedirs("locked/inner")
    os.chmod("locked/inner", 0)
    os.chmod("locked", 0)
    """
)


@pytest.mark.parametrize("attack", [DEEP_TREE_AND_FULL, MANY_ENTRIES, ODD_NAMES_AND_MODES],
                         ids=["3000 levels deep and tmp full", "60,000 entries", "odd names, links, fifo, mode 0"])
async def test_every_run_starts_with_an_empty_tmp(sandbox: Sandbox, attack: str) -> None:
    for outcome in await on_every_worker(sandbox, attack):
        assert outcome.status in ("ok", "error", "timeout"), outcome
    await assert_clean_tmp_everywhere(sandbox)
    if sandbox.layers()["bubblewrap"] is True:
        assert Path("/etc/passwd").exists()


async def test_a_tmp_that_cannot_be_emptied_in_time_retires_the_worker(caplog: pytest.LogCaptureFixture) -> None:
    """An operator sees why in the log; every later run still gets an empty tmp."""
    caplog.set_level(logging.WARNING, logger="bot.sandbox")
    config = SandboxConfig(workers=1, wall_seconds=WALL, memory_mb=MEMORY_MB, wipe_seconds=0.05)
    async with Sandbox(config) as sb:
        first = await sb.evaluate(MANY_ENTRIES, [])
        assert first.status == "ok", first
        for _ in range(3):
            outcome = await sb.evaluate(TMP_STATE, [CheckSpec("empty", "assert mine == [], mine")])
            assert outcome.passed, outcome
    assert "retiring" in caplog.text


async def test_nothing_is_left_on_the_host_after_close_without_bubblewrap() -> None:
    async with Sandbox(SandboxConfig(workers=1, wall_seconds=WALL, use_bwrap=False)) as sb:
        places = set()
        for attack in (DEEP_TREE_AND_FULL.replace("while True", "for _ in range(4)"), ODD_NAMES_AND_MODES):
            # leave things behind on purpose, and say where
            outcome = await sb.evaluate("import os\nprint(os.getcwd())\n" + attack, [])
            assert outcome.status == "ok", outcome
            places.add(outcome.stdout.split("\n")[0])
        escaped = await sb.evaluate("import os\nos.makedirs('late/x')\nprint(os.getcwd())\n", [])
        places.add(escaped.stdout.strip())
    assert places and all(place.startswith("/") for place in places)
    assert [p for p in places if os.path.exists(p)] == []


async def test_remove_tree_handles_depth_and_modes(tmp_path: Path) -> None:
    top = tmp_path / "tree"
    top.mkdir()
    fd = os.open(top, os.O_RDONLY)
    for _ in range(2000):
        os.mkdir("a", dir_fd=fd)
        inner = os.open("a", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = inner
    os.close(fd)
    (top / "locked").mkdir()
    (top / "locked" / "f").write_text("x")
    (top / "locked").chmod(0)
    (top / "link").symlink_to(tmp_path / "outside")
    (tmp_path / "outside").write_text("must survive")
    assert await asyncio.to_thread(remove_tree, str(top))
    assert not top.exists()
    assert (tmp_path / "outside").read_text() == "must survive"


# ---------------------------------------------------------------- 3. memory and processes, per run

FORK_AND_TOUCH = code(
    """
    import os
    children = []
    for _ in range(4):
        pid = os.fork()
        if pid == 0:
            block = bytearray(300 << 20)  # each child would touch 300 MiB
            os._exit(0)
        children.append(pid)
    """
)

THREADS_AND_TOUCH = code(
    """
    import threading
    blocks, errors = [], []
    def grab():
        try:
            blocks.append(bytearray(150 << 20))
        except MemoryError as exc:
            errors.append(exc)
    threads = [threading.Thread(target=grab) for _ in range(6)]  # 900 MiB in all, over the 384 MiB
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total_mb = sum(len(b) for b in blocks) >> 20
    """
)

MEMFD = code(
    """
    import os, mmap
    fd = os.memfd_create("hoard")
    os.ftruncate(fd, 1 << 30)
    """
)

SYSV_AND_POSIX_SHM = code(
    """
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    made = []
    if libc.shmget(0, 256 << 20, 0o1000 | 0o600) >= 0:  # IPC_PRIVATE, IPC_CREAT
        made.append("shmget")
    if libc.syscall(68, 0, 0o1000 | 0o600) >= 0:  # msgget: would outlive the run in the IPC namespace
        made.append("msgget")
    if libc.syscall(240, b"/q", 0o100 | 2, 0o600, None) >= 0:  # mq_open(O_CREAT | O_RDWR)
        made.append("mq_open")
    """
)

MULTIPROCESSING = code(
    """
    import multiprocessing
    with multiprocessing.Pool(4) as pool:
        pool.map(abs, range(8))
    """
)


@pytest.mark.parametrize(
    ("attack", "statuses", "checks"),
    [
        (FORK_AND_TOUCH, ("error",), []),
        # (the address space may run out for a thread's stack first: "can't start new thread")
        (THREADS_AND_TOUCH, ("ok", "memory", "error"),
         [CheckSpec("bounded", f"assert total_mb < {MEMORY_MB}, total_mb")]),
        (MEMFD, ("error",), []),
        (SYSV_AND_POSIX_SHM, ("ok",), [CheckSpec("refused", "assert made == [], made")]),
        (MULTIPROCESSING, ("error",), []),
        ("import ctypes\nctypes.CDLL(None).fork()\nimport os\nassert os.getpid() > 0\n", ("ok",), []),
    ],
    ids=["4 forks each touching 300 MiB", "6 threads of 150 MiB", "memfd_create", "SysV and POSIX shared memory",
         "multiprocessing.Pool", "libc fork() through ctypes"],
)
async def test_memory_and_processes_are_bounded_per_run(sandbox: Sandbox, attack: str, statuses: tuple[str, ...],
                                                       checks: list[CheckSpec]) -> None:
    seccomp_only(sandbox)
    outcome = await sandbox.evaluate(attack, checks)
    assert outcome.status in statuses, outcome
    if outcome.status == "ok":
        assert outcome.passed, outcome
    if outcome.status == "error":
        # (without bubblewrap, the run's uid may not read a Python under /root: "No module named ...")
        assert re.search(r"PermissionError|Operation not permitted|can't start new thread|No module named",
                         outcome.error), outcome
    # the whole run was one process: its peak is within the worker's size plus the allowance
    assert outcome.extra["max_rss_kb"] < (MEMORY_MB + 600) << 10, outcome.extra
    after = await sandbox.evaluate("import threading\nn = threading.active_count()\n",
                                   [CheckSpec("alone", "assert n == 1, n")])
    assert after.passed, after


# ---------------------------------------------------------------- 4. result frames that are deep or huge

DEEP_FRAME = code(
    """
    import os, struct
    body = b"[" * 200_000 + b"]" * 200_000
    os.write(3, struct.pack(">I", len(body)) + body)
    os._exit(0)
    """
)

DEEP_DETAIL = code(
    """
    import os, struct
    deep = "[" * 100_000 + "]" * 100_000
    body = ('{"status": "ok", "checks": [{"id": "c", "passed": true, "detail": ' + deep + '}], "error": ""}').encode()
    os.write(3, struct.pack(">I", len(body)) + body)
    os._exit(0)
    """
)

HUGE_FRAME = code(
    """
    import os, struct
    body = b"[" + b"1," * 400_000 + b"1]"
    os.write(3, struct.pack(">I", len(body)) + body)
    os._exit(0)
    """
)


@pytest.mark.parametrize("attack", [DEEP_FRAME, DEEP_DETAIL, HUGE_FRAME], ids=["200,000 deep", "deep detail", "huge"])
async def test_a_deep_or_huge_result_fails_that_run_only(sandbox: Sandbox, attack: str,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="bot.sandbox")
    outcome = await sandbox.evaluate(attack, [CheckSpec("c", "pass")])
    assert outcome.status == "crashed", outcome
    assert "interfered with how results are reported" in outcome.error
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    after = await sandbox.evaluate("x = 1\n", [CheckSpec("c", "assert x == 1")])
    assert after.passed, after


# ---------------------------------------------------------------- 5. the minor holes

async def test_personality_ldt_and_vsock_are_refused(sandbox: Sandbox) -> None:
    seccomp_only(sandbox)
    probe = code(
        """
        import ctypes, socket
        libc = ctypes.CDLL(None, use_errno=True)
        allowed = []
        if libc.personality(0x0040000) != -1:  # ADDR_NO_RANDOMIZE
            allowed.append("personality(ADDR_NO_RANDOMIZE)")
        if libc.syscall(154, 1, None, 0) != -1 or ctypes.get_errno() != 1:  # modify_ldt: EPERM
            allowed.append("modify_ldt")
        for family in (40, 17, 38):  # AF_VSOCK, AF_PACKET, AF_ALG
            try:
                socket.socket(family, socket.SOCK_STREAM if family != 17 else socket.SOCK_RAW).close()
                allowed.append(f"socket family {family}")
            except OSError as exc:
                if exc.errno != 97:  # EAFNOSUPPORT
                    allowed.append(f"socket family {family}: {exc}")
        query = libc.personality(0xFFFFFFFF)
        socket.socket(socket.AF_INET).close()
        a, b = socket.socketpair()
        """
    )
    outcome = await sandbox.evaluate(probe, [CheckSpec("refused", "assert allowed == [], allowed"),
                                             CheckSpec("query ok", "assert query == 0, query")])
    assert outcome.passed, outcome


async def test_no_host_paths_in_proc_1_or_the_modules(sandbox: Sandbox) -> None:
    bwrap_only(sandbox)
    probe = code(
        """
        import os, sys, torch
        cmdlines = {}
        for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmdlines[pid] = f.read().decode("utf-8", "replace")
            except OSError:
                pass
        places = " ".join([*cmdlines.values(), torch.__file__, *sys.path, sys.executable])
        """
    )
    outcome = await sandbox.evaluate(probe, [
        CheckSpec("no checkout", f"assert {str(REPO)!r} not in places, places"),
        CheckSpec("pid 1 hidden", "assert cmdlines.get('1', '').strip('\\x00') == 'sandbox-worker', cmdlines"),
    ])
    assert outcome.passed, outcome


# ---------------------------------------------------------------- 6. fairness: a bounded queue


async def until(condition: Callable[[], bool], patience: float = 60.0) -> None:
    """Wait (boundedly, however slow the machine) until ``condition()`` holds."""
    for _ in range(int(patience / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never happened")

async def test_the_queue_is_bounded_in_length() -> None:
    config = SandboxConfig(workers=1, wall_seconds=3.0, queue_limit=2, queue_seconds=60)
    async with Sandbox(config) as sb:
        hog = asyncio.create_task(sb.evaluate("while True:\n    pass\n", []))
        await until(sb.is_saturated)
        waiting = [asyncio.create_task(sb.evaluate("x = 1\n", [])) for _ in range(2)]
        await until(lambda: sb.waiting >= 2)
        refused = await asyncio.gather(*(sb.evaluate("x = 2\n", []) for _ in range(3)))
        assert [o.status for o in refused] == ["busy"] * 3
        assert all(o.extra["busy"] == "queue" for o in refused)
        assert not hog.done()  # refused at once, while the hog was still running
        assert (await hog).status == "timeout"
        assert [o.status for o in await asyncio.gather(*waiting)] == ["ok", "ok"]


async def test_the_wait_in_the_queue_is_bounded_in_time() -> None:
    config = SandboxConfig(workers=1, wall_seconds=5.0, queue_limit=5, queue_seconds=0.2)
    async with Sandbox(config) as sb:
        hog = asyncio.create_task(sb.evaluate("while True:\n    pass\n", []))
        await until(sb.is_saturated)
        late = await sb.evaluate("x = 1\n", [])
        assert late.status == "busy" and "0.2 s" in late.error, late
        assert not hog.done()  # the waiter gave up before the hog's 5 s were over
        await hog
        assert (await sb.evaluate("x = 1\n", [])).status == "ok"


async def test_doctor_lists_the_new_layers() -> None:
    # In a child process of its own: whether torch is loaded must not depend on the tests run before.
    probe = (
        "import sys\n"
        "from bot.doctor import run_doctor\n"
        "from bot.sandbox import SandboxConfig\n"
        "status = run_doctor(SandboxConfig(workers=1), sys.stdout)\n"
        "print('torch loaded:', 'torch' in sys.modules)\n"
        "sys.exit(status)\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", probe, cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    raw, _ = await proc.communicate()
    text = raw.decode()
    assert proc.returncode == 0, text
    for line in ("fresh process per run", "memory per run", "cgroup v2", "queue", "private tmp"):
        assert line in text, text
    assert re.search(r"✓ .*previous run", text), text
    assert "torch loaded: False" in text, text

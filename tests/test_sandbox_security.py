"""Hostile submissions: each one is contained, and a normal submission still passes after it.

One sandbox (2 workers, 2 s wall clock, 384 MiB) serves the whole module, once with bubblewrap and
once in the plain fallback (cases that rely on the namespaces are skipped there). After every
hostile case:
- a normal autograd submission must pass, see an empty tmp and one torch thread, and find torch
  un-patched;
- no process with one of the run uids of this test process may be left anywhere on the host (when
  the runs drop to their own uid): nothing outlives a run.
The bot's secret is simulated by a canary in ``TELEGRAM_BOT_TOKEN`` set before the workers start.
"""

from __future__ import annotations

import asyncio
import json
import os
import textwrap
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio

from bot.sandbox import Sandbox, SandboxConfig
from bot.sandbox.launch import run_uid_range
from dialogs.errors import SandboxUnavailable
from dialogs.evaluation import CheckSpec, EvalOutcome

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

REPO = Path(__file__).resolve().parents[1]
CANARY = "123456:sandbox-canary-token-do-not-leak"
WALL = 2.0
OUTPUT_BYTES = 65536
MEMORY_MB = 384  # filling 1 GiB takes ~1.5 s of page faults here: too close to the 2 s wall clock


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["bwrap", "plain"])
async def sandbox(request: pytest.FixtureRequest) -> AsyncIterator[Sandbox]:
    """The same hostile cases run under bubblewrap and in the plain fallback (every other layer)."""
    saved = os.environ.get("TELEGRAM_BOT_TOKEN")
    os.environ["TELEGRAM_BOT_TOKEN"] = CANARY
    config = SandboxConfig(
        workers=2,
        wall_seconds=WALL,
        memory_mb=MEMORY_MB,
        output_bytes=OUTPUT_BYTES,
        use_bwrap=request.param == "bwrap",
    )
    try:
        sb = Sandbox(config)
        try:
            await sb.start()
        except SandboxUnavailable as exc:
            pytest.skip(f"no {request.param} sandbox here: {exc}")
        try:
            yield sb
        finally:
            await sb.close()
    finally:
        if saved is None:
            os.environ.pop("TELEGRAM_BOT_TOKEN", None)
        else:
            os.environ["TELEGRAM_BOT_TOKEN"] = saved


def code(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


NORMAL = code(
    """
    import os
    import torch
    # what runs left behind (a checkout living under /tmp shows up as a read-only root-owned mount: not ours)
    left_in_tmp = sorted(e for e in os.listdir(".") if os.lstat(e).st_uid == os.getuid())
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (x ** 2).sum()
    y.backward()
    """
)
NORMAL_CHECKS = [
    CheckSpec("grad", "assert x.grad.tolist() == [2.0, 4.0, 6.0], x.grad"),
    CheckSpec("clean-tmp", "assert left_in_tmp == [], left_in_tmp"),
    CheckSpec("threads", "assert torch.get_num_threads() == 1, torch.get_num_threads()"),
    CheckSpec("unpatched", "assert torch.tensor([1.0]).tolist() == [1.0] and len([1, 2]) == 2"),
]


def leftover_processes() -> list[str]:
    """Processes on the host running as one of the run uids of this test process's workers."""
    uids = run_uid_range()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        real_uid = fields.get("Uid", "-1").split()[0]
        if int(real_uid) in uids:
            found.append(f"{entry.name} {fields.get('Name')} {fields.get('State')} uid={real_uid}")
    return found


async def still_works(sandbox: Sandbox) -> None:
    outcome = await sandbox.evaluate(NORMAL, NORMAL_CHECKS)
    assert outcome.passed, outcome
    if sandbox.layers()["unprivileged_uid"]:
        assert await no_leftovers() == []


async def no_leftovers(patience: float = 30.0) -> list[str]:
    """Processes of this test's run uids once the worker has cleared up after a run. A run is answered
    as soon as it has ended; the worker then empties tmp (as the run's uid) before the next run: wait
    for that (no run starts before it), then nothing of the run's uid may remain."""
    left = leftover_processes()
    for _ in range(int(patience / 0.02)):
        if not left:
            break
        await asyncio.sleep(0.02)
        left = leftover_processes()
    return left


@dataclass
class Case:
    name: str
    code: str
    statuses: tuple[str, ...]
    checks: list[CheckSpec] = field(default_factory=list)
    expect: Callable[[EvalOutcome], None] | None = None
    requires_bwrap: bool = False


def all_checks_pass(outcome: EvalOutcome) -> None:
    assert outcome.checks and all(c.passed for c in outcome.checks), outcome.checks


def stdout_is_capped(outcome: EvalOutcome) -> None:
    assert len(outcome.stdout.encode("utf-8", "surrogatepass")) <= OUTPUT_BYTES
    assert len(outcome.stdout) > OUTPUT_BYTES // 2


CASES = [
    Case("infinite loop", "while True:\n    pass\n", ("timeout",)),
    Case("sleep forever", "import time\ntime.sleep(10**6)\n", ("timeout",)),
    Case(
        "long torch matmul loop",
        code(
            """
            import torch
            a = torch.randn(400, 400)
            while True:
                a = a @ a
                a = a / a.norm()
            """
        ),
        ("timeout",),
    ),
    Case("fork bomb", "import os\nwhile True:\n    os.fork()\n", ("error", "timeout", "crashed")),
    Case(
        "fork bomb that ignores errors",
        code(
            """
            import os
            while True:
                try:
                    os.fork()
                except OSError:
                    pass
            """
        ),
        ("timeout", "crashed"),
    ),
    Case("list memory bomb", "a = []\nwhile True:\n    a.append(bytearray(10**7))\n", ("memory",)),
    Case("huge list at once", "x = [0] * 10**10\n", ("memory",)),
    Case("torch.empty(10**11)", "import torch\nt = torch.empty(10**11)\n", ("memory",)),
    Case(
        "a legitimate 200 MB tensor works",
        "import torch\nt = torch.ones(50_000_000)\ntotal = t.sum().item()\n",
        ("ok",),
        [CheckSpec("sum", "assert total == 50_000_000.0, total"), CheckSpec("size", "assert t.nbytes == 200_000_000")],
        all_checks_pass,
    ),
    Case("endless print", "while True:\n    print('spam ' * 10)\n", ("output_limit",), expect=stdout_is_capped),
    Case(
        "one huge line, no newline",
        "import sys\nsys.stdout.write('x' * 10**8)\n",
        ("output_limit",),
        expect=stdout_is_capped,
    ),
    Case(
        "endless print to stderr, unbuffered",
        "import os\nwhile True:\n    os.write(2, b'e' * 4096)\n",
        ("output_limit",),
        expect=stdout_is_capped,
    ),
    Case(
        "invalid UTF-8 output",
        "import os, sys\nsys.stdout.buffer.write(b'ok \\xff\\xfe\\n')\nsys.stdout.flush()\nos.write(1, b'\\xc3')\n"
        "print('\\ud800 lone surrogate')\n",
        ("ok",),
        expect=lambda o: (
            o.stdout.startswith("ok \ufffd\ufffd\n")
            and "\\ud800 lone surrogate" in o.stdout
            and o.stdout.encode("utf-8")
        ),
    ),
    Case(
        "writing outside tmp",
        code(
            f"""
            import os
            written = []
            for path in ["/usr/pwned", "/etc/pwned", "/pwned", "/sandbox/pwned", "/proc/pwned", "/dev/pwned",
                         "/dev/shm/pwned", "{REPO}/pwned", "{REPO}/.venv/pwned", "/root/pwned"]:
                try:
                    with open(path, "w") as f:
                        f.write("x")
                    written.append(path)
                except OSError:
                    pass
            with open("/tmp/mine", "w") as f:
                f.write("tmp is fine")
            """
        ),
        ("ok",),
        [CheckSpec("nothing-written", "assert written == [], written")],
        all_checks_pass,
        requires_bwrap=True,  # without it /dev/shm and the host's /tmp are writable
    ),
    Case(
        "filling tmp",
        code(
            """
            import os
            chunk = b"\\0" * 2**20
            i = 0
            while True:
                with open(f"/tmp/fill{i}", "wb") as f:
                    for _ in range(16):
                        f.write(chunk)
                i += 1
            """
        ),
        ("error",),
        expect=lambda o: "No space left on device" in o.error or "File too large" in o.error,
        requires_bwrap=True,  # without its tmpfs, only the file size limit holds: this would fill the disk
    ),
    Case(
        "one file over the file size limit",
        "with open('big', 'wb') as f:\n    f.write(b'\\0' * (100 * 2**20))\n",
        ("error", "memory"),
    ),
    Case(
        "files left for the next run",
        code(
            """
            import os
            os.makedirs("nested/deeper", exist_ok=True)
            for name in ("leftover.txt", "nested/deeper/x", ".hidden"):
                with open(name, "w") as f:
                    f.write("next run must not see this")
            os.chmod("nested/deeper", 0)
            os.chmod("nested", 0o500)
            """
        ),
        ("ok",),
    ),
    Case(
        "reading os.environ",
        "import os\nenv = dict(os.environ)\n",
        ("ok",),
        [
            CheckSpec("no-token", "assert 'TELEGRAM_BOT_TOKEN' not in env, env"),
            CheckSpec("no-canary", "assert not any('sandbox-canary' in v for v in env.values()), env"),
            CheckSpec(
                "minimal",
                "assert set(env) <= {'PATH', 'HOME', 'TMPDIR', 'USER', 'LOGNAME', 'LANG', 'LC_ALL', "
                "'OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'NUMEXPR_NUM_THREADS', "
                "'PYTHONDONTWRITEBYTECODE', 'PWD'}, sorted(env)",
            ),
        ],
        all_checks_pass,
    ),
    Case(
        "reading /proc/*/environ",
        code(
            """
            import os
            leaked, readable = [], []
            for pid in ["self", "1", "2", str(os.getppid())] + [p for p in os.listdir("/proc") if p.isdigit()]:
                try:
                    with open(f"/proc/{pid}/environ", "rb") as f:
                        data = f.read()
                    readable.append(pid)
                    if b"sandbox-canary" in data or b"TELEGRAM" in data:
                        leaked.append(pid)
                except OSError:
                    pass
            """
        ),
        ("ok",),
        [CheckSpec("no-leak", "assert leaked == [], leaked"), CheckSpec("self-ok", "assert 'self' in readable")],
        all_checks_pass,
    ),
    Case(
        # No walk of the whole tree (that depends on the disk's speed): the places a bot keeps its files,
        # and every directory at the top two levels that is not the system or the Python installation.
        "reading the bot's .env, database and data/",
        code(
            f"""
            import glob, os, sys
            seen = []
            for path in ["{REPO}/.env", "{REPO}/pyproject.toml", "{REPO}/bot/__main__.py", "{REPO}/data",
                         "{REPO}/tutor.db", "{REPO}/data/tutor.db", "{REPO}/bot/sandbox/runner.py",
                         "/proc/1/cwd/.env", "/proc/1/root/{REPO}/pyproject.toml", "{REPO}"]:
                if os.path.exists(path):
                    seen.append(path)
            seen += glob.glob("{REPO}/*") + glob.glob("/*/.env") + glob.glob("/*/*.db") + glob.glob("/*/*/.env")
            python = sys.base_prefix
            places = [p for p in glob.glob("/*/*") if not p.startswith(("/proc", "/usr", "/dev", "/sys", "/site"))
                      and not python.startswith(p) and not p.startswith(python)]
            """
        ),
        ("ok",),
        [
            CheckSpec("invisible", "assert seen == [], seen"),
            CheckSpec("nothing-of-the-host", "assert all(p.startswith(('/etc/', '/sandbox/', '/lib', '/bin', '/sbin')) "
                      "for p in places), places"),
        ],
        all_checks_pass,
        requires_bwrap=True,
    ),
    Case(
        "listing /",
        "import os\nroot = sorted(os.listdir('/'))\n",
        ("ok",),
        [CheckSpec("small-root", "assert not {'home', 'var', 'opt', 'srv', 'mnt', 'boot', 'run'} & set(root), root")],
        all_checks_pass,
        requires_bwrap=True,
    ),
    Case(
        "socket connect by IP",
        code(
            """
            import socket
            outcomes = []
            for host, port in [("1.1.1.1", 53), ("8.8.8.8", 443), ("10.0.2.2", 80), ("172.17.0.1", 80)]:
                try:
                    socket.create_connection((host, port), timeout=0.5).close()
                    outcomes.append(f"{host} connected")
                except OSError as exc:
                    outcomes.append(type(exc).__name__)
            """
        ),
        ("ok",),
        [CheckSpec("no-net", "assert not any('connected' in o for o in outcomes), outcomes")],
        all_checks_pass,
        requires_bwrap=True,
    ),
    Case(
        "socket connect by name",
        code(
            """
            import socket
            try:
                socket.create_connection(("api.telegram.org", 443), timeout=0.5)
                result = "connected"
            except OSError as exc:
                result = type(exc).__name__
            """
        ),
        ("ok",),
        [CheckSpec("no-dns", "assert result == 'gaierror', result")],
        all_checks_pass,
        requires_bwrap=True,
    ),
    Case("killing the parent", "import os\nos.kill(os.getppid(), 9)\n", ("error", "crashed")),
    # Linux spares the caller of kill(-1): only the run's other processes (none) could die.
    Case("kill(-1, SIGKILL)", "import os\nos.kill(-1, 9)\nimport time\ntime.sleep(0.5)\n", ("ok", "crashed", "error")),
    Case(
        "ignoring SIGTERM and SIGXCPU",
        code(
            """
            import signal
            for sig in (signal.SIGTERM, signal.SIGXCPU, signal.SIGINT, signal.SIGHUP):
                signal.signal(sig, signal.SIG_IGN)
            while True:
                pass
            """
        ),
        ("timeout",),
    ),
    Case(
        "raising its own rlimits back",
        code(
            """
            import resource
            resource.setrlimit(resource.RLIMIT_CPU, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            """
        ),
        ("error",),
        expect=lambda o: "ValueError" in o.error or "PermissionError" in o.error,
    ),
    Case(
        "setsid and a double fork to outlive the run: the first fork is refused",
        code(
            """
            import os, time
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    time.sleep(60)
                    open("/tmp/escaped", "w").write("I survived")
                os._exit(0)
            time.sleep(0.2)
            survivor_started = True
            """
        ),
        ("error",),
        expect=lambda o: "PermissionError" in o.error,
    ),
    Case(
        "torch.set_num_threads(1000)",
        code(
            """
            import torch
            torch.set_num_threads(1000)
            a = torch.randn(2000, 2000)
            b = a @ a
            """
        ),
        ("ok", "error", "crashed", "timeout"),
    ),
    Case(
        "threads left running",
        code(
            """
            import threading, time
            def spin():
                while True:
                    time.sleep(0.001)
            for _ in range(5):
                threading.Thread(target=spin).start()
            """
        ),
        ("ok",),
        expect=lambda o: o.duration_ms < 1500,
    ),
    Case(
        "deep recursion with a raised limit",
        "import sys\nsys.setrecursionlimit(10**8)\ndef f(n):\n    return f(n + 1) + 1\nf(0)\n",
        ("crashed", "error", "memory", "timeout"),
    ),
    Case(
        "ctypes segfault", "import ctypes\nctypes.string_at(0)\n", ("crashed",), expect=lambda o: "SIGSEGV" in o.error
    ),
    Case(
        "os._exit",
        "import os\nos._exit(0)\n",
        ("crashed",),
        [CheckSpec("c", "pass")],
        expect=lambda o: "exited early" in o.error,
    ),
    Case(
        "sys.exit(3)",
        "import sys\nsys.exit(3)\n",
        ("error",),
        [CheckSpec("c", "pass")],
        expect=lambda o: "SystemExit: 3" in o.error and o.checks == (),
    ),
    Case("raise SystemExit", "raise SystemExit\n", ("ok",), [CheckSpec("c", "pass")], all_checks_pass),
    Case(
        "os.system and subprocess start nothing",
        code(
            """
            import os, subprocess
            status = os.system("echo from-shell; cat /proc/1/environ")
            print("os.system gave", status)
            out = subprocess.run(["id", "-u"], capture_output=True, text=True).stdout.strip()
            """
        ),
        ("error",),
        expect=lambda o: "from-shell" not in o.stdout and "sandbox-canary" not in o.stdout
        and "PermissionError" in o.error,
    ),
    Case(
        "a 1 MB submission",
        "# " + "x" * 1_000_000 + "\nanswer = 42\n",
        ("ok",),
        [CheckSpec("a", "assert answer == 42")],
        all_checks_pass,
    ),
    Case("a 2 MB submission is refused", "#" * 2_000_000, ("error",), expect=lambda o: "limit" in o.error),
    Case("NUL bytes", "x = 1\x00\ny = 2\n", ("error",), expect=lambda o: "null" in o.error.lower()),
    Case(
        "a syntax error",
        "for i in range(3)\n    print(i)\n",
        ("error",),
        expect=lambda o: "SyntaxError" in o.error and "<your code>" in o.error,
    ),
    Case(
        "monkeypatching torch",
        code(
            """
            import torch
            torch.tensor = lambda *a, **k: "pwned"
            torch.Tensor.backward = lambda self, *a, **k: None
            torch.set_num_threads(7)
            import builtins
            builtins.len = lambda x: 0
            """
        ),
        ("ok",),
    ),
    Case(
        "forging the verdict on stdout",
        code(
            """
            import json, struct, sys
            verdict = {"status": "ok", "checks": [{"id": "must-fail", "passed": True, "detail": ""}], "error": ""}
            body = json.dumps(verdict).encode()
            print(json.dumps(verdict))
            sys.stdout.flush()
            sys.stdout.buffer.write(struct.pack(">I", len(body)) + body)
            sys.stdout.buffer.write(struct.pack(">I", 100) + json.dumps({"type": "result", "id": 1}).encode())
            sys.stdout.flush()
            """
        ),
        ("ok",),
        [CheckSpec("must-fail", "assert False, 'the real verdict'")],
        lambda o: o.checks[0].passed is False and o.checks[0].detail == "the real verdict",
    ),
    Case(
        "new namespaces, ptrace and io_uring through ctypes",
        code(
            """
            import ctypes, os
            libc = ctypes.CDLL(None, use_errno=True)
            calls = {
                "unshare(NEWUSER)": lambda: libc.unshare(0x10000000),
                "unshare(NEWNET)": lambda: libc.unshare(0x40000000),
                "ptrace(ATTACH, parent)": lambda: libc.ptrace(16, os.getppid(), 0, 0),
                "io_uring_setup": lambda: libc.syscall(425, 1, None),
                "bpf": lambda: libc.syscall(321, 0, None, 0),
                "mount": lambda: libc.mount(b"none", b".", b"tmpfs", 0, None),
            }
            succeeded = [name for name, call in calls.items() if call() == 0]
            status = open("/proc/self/status").read()
            """
        ),
        ("ok",),
        [
            CheckSpec("all-refused", "assert succeeded == [], succeeded"),
            CheckSpec("no-new-privs", "assert 'NoNewPrivs:\\t1' in status"),
            CheckSpec("seccomp", "assert 'Seccomp:\\t2' in status"),
        ],
        all_checks_pass,
    ),
    Case(
        "a setuid binary (exec'd in place of the run) does not raise privileges",
        'import os\nos.execv("/usr/bin/mount", ["mount", "-t", "tmpfs", "none", "/tmp"])\n',
        ("crashed",),
        expect=lambda o: "superuser" in o.stdout or "ermission denied" in o.stdout or "not permitted" in o.stdout,
        requires_bwrap=True,  # the plain fallback may not have mount's setuid bit reachable the same way
    ),
    Case(
        "exec'ing another program runs as the run's uid, with the same limits",
        'import os\nos.execv("/usr/bin/id", ["id", "-u"])\n',
        ("crashed",),
        expect=lambda o: o.stdout.strip().isdigit() and o.stdout.strip() != "0",
    ),
    Case(
        "garbage on the result channel",
        "import os\nos.write(3, b'\\x00\\x00\\x00\\x05{bad}')\nos._exit(0)\n",
        ("crashed",),
    ),
    Case("stopping itself", "import os, signal\nos.kill(os.getpid(), signal.SIGSTOP)\n", ("timeout",)),
    Case("reading stdin", "data = input()\n", ("error",), expect=lambda o: "EOFError" in o.error),
    Case(
        "an exception whose str() raises",
        "class Evil(Exception):\n    def __str__(self):\n        raise RuntimeError('no')\nraise Evil()\n",
        ("error",),
        expect=lambda o: "Evil" in o.error,
    ),
    Case(
        "reading the worker's memory",
        code(
            """
            import os
            opened = []
            for pid in ("1", "2", str(os.getppid())):
                for what in ("mem", "environ", "maps"):
                    try:
                        with open(f"/proc/{pid}/{what}", "rb") as f:
                            f.read(1)
                        opened.append(f"{pid}/{what}")
                    except OSError:
                        pass
            """
        ),
        ("ok",),
        [CheckSpec("nothing", "assert opened == [], opened")],
        all_checks_pass,
        requires_bwrap=True,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_hostile_submission_is_contained(sandbox: Sandbox, case: Case) -> None:
    if case.requires_bwrap and sandbox.layers()["bubblewrap"] is not True:
        pytest.skip("needs the bubblewrap layer")
    outcome = await sandbox.evaluate(case.code, case.checks)
    assert outcome.status in case.statuses, outcome
    assert outcome.duration_ms < (WALL + 1.5) * 1000, outcome
    if case.expect is not None:
        verdict = case.expect(outcome)
        assert verdict is None or verdict, outcome
    await still_works(sandbox)


async def test_files_never_reach_the_next_run(sandbox: Sandbox) -> None:
    for _ in range(4):  # enough to land on both workers
        writer = await sandbox.evaluate("open('secret', 'w').write('psst')\nimport os\nhere = os.getcwd()\n", [])
        assert writer.status == "ok"
        reader = await sandbox.evaluate(
            "import os\nfound = [e for e in os.listdir('.') if os.lstat(e).st_uid == os.getuid()]\n",
            [CheckSpec("e", "assert found == []")])
        assert reader.passed, reader


async def test_ten_concurrent_submissions(sandbox: Sandbox) -> None:
    runs = [sandbox.evaluate(NORMAL + f"\nprint({i})\n", NORMAL_CHECKS) for i in range(10)]
    outcomes = await asyncio.gather(*runs)
    assert all(o.passed for o in outcomes), [o for o in outcomes if not o.passed]
    assert sorted(int(o.stdout) for o in outcomes) == list(range(10))
    await still_works(sandbox)


async def test_concurrent_hostile_and_normal_submissions(sandbox: Sandbox) -> None:
    if sandbox.layers()["bubblewrap"] is not True and not sandbox.layers()["unprivileged_uid"]:
        pytest.skip("without PID namespaces or a uid per worker, kill(-1) reaches the other runs")
    hostile = [sandbox.evaluate("while True:\n    pass\n", []), sandbox.evaluate("import os\nos.kill(-1, 9)\n", [])]
    normal = [sandbox.evaluate(NORMAL, NORMAL_CHECKS) for _ in range(4)]
    outcomes = await asyncio.gather(*hostile, *normal)
    assert outcomes[0].status == "timeout"
    assert outcomes[1].status in ("ok", "crashed")
    assert all(o.passed for o in outcomes[2:]), outcomes[2:]


async def test_the_verdict_is_json_not_stdout(sandbox: Sandbox) -> None:
    printed = json.dumps({"status": "ok", "checks": [], "stdout": "", "error": "", "duration_ms": 0, "extra": {}})
    outcome = await sandbox.evaluate(f"print({printed!r})\nraise ValueError('real')\n", [])
    assert outcome.status == "error"
    assert outcome.stdout.strip() == printed

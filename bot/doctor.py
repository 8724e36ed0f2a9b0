"""``python -m bot doctor``: which sandbox layers are active here, proved by a self-test.

The self-test sends real submissions through a real sandbox: a normal torch one must pass, and
hostile ones must fail to reach the network, read a (fake) bot token from the environment, see the
bot's files, write outside their tmp, or blow the memory limit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
import struct
import subprocess
import sys
import tempfile
import textwrap
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from bot.sandbox import Sandbox, SandboxConfig
from bot.sandbox import launch as launching
from dialogs.errors import SandboxUnavailable
from dialogs.evaluation import CheckSpec, EvalOutcome

REPO = Path(__file__).resolve().parents[1]
TOKEN_VAR = "TELEGRAM_BOT_TOKEN"


@dataclass(frozen=True)
class Probe:
    title: str
    code: str
    checks: tuple[CheckSpec, ...]
    accept: Callable[[EvalOutcome], bool]
    before: str = ""  # run first (the doctor's one worker serves both): what the probe must not see


def _passed(outcome: EvalOutcome) -> bool:
    return outcome.passed


def _probes(canary: str, cfg: SandboxConfig) -> list[Probe]:
    normal = Probe(
        "a normal torch submission passes (autograd + gradcheck)",
        textwrap.dedent(
            """
            import torch
            x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
            (x ** 2).sum().backward()
            """
        ),
        (
            CheckSpec("grad", "assert x.grad.tolist() == [2.0, 4.0, 6.0], x.grad"),
            CheckSpec(
                "gradcheck",
                "assert torch.autograd.gradcheck(torch.sin, "
                "(torch.randn(3, dtype=torch.float64, requires_grad=True),))",
            ),
        ),
        _passed,
    )
    return [
        normal,
        Probe(
            "the standard library is importable (modules the workers did not preload)",
            "import fractions, decimal, encodings.idna, statistics, zipfile\n",
            (),
            _passed,
        ),
        Probe(
            "the network is unreachable (connect by IP and by name fail)",
            textwrap.dedent(
                """
                import socket
                reached = []
                for target in [("1.1.1.1", 53), ("api.telegram.org", 443)]:
                    try:
                        socket.create_connection(target, timeout=1).close()
                        reached.append(target[0])
                    except OSError:
                        pass
                """
            ),
            (CheckSpec("offline", "assert reached == [], f'connected to {reached}'"),),
            _passed,
        ),
        Probe(
            f"a fake {TOKEN_VAR} in the bot's environment is unreadable (environ, /proc/*/environ)",
            textwrap.dedent(
                f"""
                import os
                found = [k for k, v in os.environ.items() if k == {TOKEN_VAR!r} or {canary!r} in v]
                for pid in ["self", "1"] + [p for p in os.listdir("/proc") if p.isdigit()]:
                    try:
                        with open(f"/proc/{{pid}}/environ", "rb") as f:
                            if {canary.encode()!r} in f.read():
                                found.append(f"/proc/{{pid}}/environ")
                    except OSError:
                        pass
                """
            ),
            (CheckSpec("no-token", "assert found == [], f'token visible in {found}'"),),
            _passed,
        ),
        Probe(
            "the bot's files (repository, .env, database, data/) are invisible",
            textwrap.dedent(
                f"""
                import os
                seen = [p for p in [{str(REPO / "bot" / "doctor.py")!r}, {str(REPO / ".env")!r},
                                    {str(REPO / "data")!r}, {str(REPO / "pyproject.toml")!r}]
                        if os.path.exists(p)]
                """
            ),
            (CheckSpec("invisible", "assert seen == [], f'can see {seen}'"),),
            _passed,
        ),
        Probe(
            "writing outside the private tmp fails (and tmp works)",
            textwrap.dedent(
                f"""
                import os
                written = []
                for path in ["/usr/doctor-probe", "/etc/doctor-probe", "/doctor-probe", "/dev/shm/doctor-probe",
                             {str(REPO / "doctor-probe")!r}, {str(Path(sys.prefix) / "doctor-probe")!r}]:
                    try:
                        with open(path, "w") as f:
                            f.write("x")
                        written.append(path)
                    except OSError:
                        pass
                with open("in-tmp", "w") as f:
                    f.write("fine")
                """
            ),
            (CheckSpec("read-only", "assert written == [], f'wrote {written}'"),),
            _passed,
        ),
        Probe(
            f"a memory bomb is stopped at the {cfg.memory_mb} MiB limit",
            "hoard = []\nwhile True:\n    hoard.append(bytearray(10**7))\n",
            (),
            lambda o: o.status == "memory",
        ),
        Probe(
            f"an endless loop is stopped by the {cfg.wall_seconds:g} s wall clock",
            "while True:\n    pass\n",
            (),
            lambda o: o.status == "timeout",
        ),
        Probe(
            "a run is one process: fork, memfd_create and shared memory are refused",
            textwrap.dedent(
                """
                import ctypes, os
                libc = ctypes.CDLL(None, use_errno=True)
                made = []
                for name, call in [("fork", os.fork), ("memfd_create", lambda: os.memfd_create("m"))]:
                    try:
                        if call() == 0:
                            os._exit(0)
                        made.append(name)
                    except OSError:
                        pass
                if libc.shmget(0, 1 << 20, 0o1000 | 0o600) >= 0:
                    made.append("shmget")
                """
            ),
            (CheckSpec("refused", "assert made == [], f'allowed: {made}'"),),
            lambda o: o.passed or (not o.checks and o.status == "error" and "No module" in o.error),
        ),
        Probe(
            "nothing of the previous run (code, output, traceback) is in a run's memory",
            textwrap.dedent(
                """
                import re
                pattern = re.compile(("DOCTOR-" + "PREVIOUS-").encode() + rb"[0-9a-f]{32}")
                found = set()
                with open("/proc/self/maps") as maps, open("/proc/self/mem", "rb", buffering=0) as mem:
                    for line in maps:
                        fields = line.split()
                        start, end = (int(x, 16) for x in fields[0].split("-"))
                        if "w" not in fields[1] or (len(fields) > 5 and fields[5].startswith("/")):
                            continue
                        try:
                            mem.seek(start)
                            found.update(m.group() for m in pattern.finditer(mem.read(end - start)))
                        except (OSError, ValueError, OverflowError):
                            pass
                """
            ),
            (CheckSpec("nothing", "assert not found, f'found {sorted(found)[:3]}'"),),
            _passed,
            before=(f"secret = 'DOCTOR-PREVIOUS-{secrets.token_hex(16)}'\nprint(secret)\nraise ValueError(secret)\n"),
        ),
        Probe(
            "tmp is empty for every run (after a tree 2,000 levels deep and a full tmp)",
            "import os\nleft = [e for e in os.listdir('.') if os.lstat(e).st_uid == os.getuid()]\n",
            (CheckSpec("empty", "assert left == [], f'left over: {left[:5]}'"),),
            _passed,
            before=textwrap.dedent(
                """
                import os
                fd = os.open(".", os.O_RDONLY)
                for _ in range(2000):
                    os.mkdir("d", dir_fd=fd)
                    inner = os.open("d", os.O_RDONLY, dir_fd=fd)
                    os.close(fd)
                    fd = inner
                os.fchmod(fd, 0)
                try:
                    with open("/tmp/fill", "wb") as f:
                        for _ in range(100):
                            f.write(bytes(1 << 20))
                except OSError:
                    pass
                """
            ),
        ),
        Probe(
            "a fork bomb is contained",
            "import os\nwhile True:\n    os.fork()\n",
            (),
            lambda o: o.status in ("error", "timeout", "crashed"),
        ),
        dataclasses.replace(normal, title="after all that, a normal submission still passes"),
    ]


def _bwrap_version() -> str:
    bwrap = launching.find_bwrap()
    if bwrap is None:
        return "not installed"
    try:
        done = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{bwrap} ({exc})"
    return f"{bwrap} ({done.stdout.strip() or 'unknown version'})"


def _describe(value: bool | str) -> tuple[str, str]:
    if value is True:
        return "✓", "yes"
    if value is False:
        return "✗", "no"
    text = str(value)
    return ("✗" if text.startswith("no") else "✓"), text


async def _doctor(cfg: SandboxConfig, out: TextIO) -> int:
    def say(line: str = "") -> None:
        print(line, file=out, flush=True)

    say("Autograd Tutor: sandbox doctor")
    say(f"  python {sys.version.split()[0]} at {sys.executable}")
    say(f"  bubblewrap: {_bwrap_version()}; running as uid {os.geteuid()}")
    say(
        f"  limits: {cfg.workers} worker(s), {cfg.wall_seconds:g} s wall, {cfg.memory_mb} MiB, "
        f"{cfg.output_bytes} bytes of output, {cfg.tmpfs_mb} MiB tmp"
    )

    canary = f"doctor-canary-{secrets.token_hex(8)}"
    saved = os.environ.get(TOKEN_VAR)
    os.environ[TOKEN_VAR] = f"123456:{canary}"
    try:
        sandbox = Sandbox(cfg)
        try:
            await sandbox.start()
        except SandboxUnavailable as exc:
            say(f"✗ the sandbox does not start: {exc}")
            return 1
        try:
            say("Layers:")
            for name, value in sandbox.layers().items():
                mark, text = _describe(value)
                say(f"  {mark} {name.replace('_', ' ')}: {text}")
            say("Self-test:")
            failures = 0
            for probe in _probes(canary, cfg):
                if probe.before:
                    await sandbox.evaluate(probe.before, [])
                outcome = await sandbox.evaluate(probe.code, list(probe.checks))
                ok = probe.accept(outcome)
                failures += not ok
                timing = f"{outcome.status}, {outcome.duration_ms} ms"
                say(f"  {'✓' if ok else '✗'} {probe.title} [{timing}]")
                if not ok:
                    why = [c.detail for c in outcome.checks if not c.passed] or [outcome.error or outcome.status]
                    say(textwrap.indent(why[0][-400:], "      "))
        finally:
            await sandbox.close()
    finally:
        if saved is None:
            os.environ.pop(TOKEN_VAR, None)
        else:
            os.environ[TOKEN_VAR] = saved

    failures += await _graph_pictures(say)

    if failures:
        say(f"✗ {failures} self-test(s) failed: learners' code is NOT fully isolated here.")
        if sandbox.isolation != "bwrap":
            say("  Install bubblewrap (Debian: apt-get install bubblewrap) and make sure it can create namespaces.")
        return 1
    say(f"✓ all self-tests passed: learners' code runs isolated ({sandbox.isolation}).")
    return 0


def _tiny_png() -> bytes:
    """A real 2x2 PNG: the host file a hostile label tries to have ``dot`` draw."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


async def _graph_pictures(say: Callable[[str], None]) -> int:
    """How ``dot`` is caged, and two attacks on it: the failures."""
    from bot import graphs

    say("Graph pictures:")
    say(f"  {await graphs.drawing_isolation()}")
    if not graphs.dot_available():
        return 0
    failures = 0
    with tempfile.TemporaryDirectory(prefix="doctor-canary-") as place:
        canary = Path(place) / "host.png"
        canary.write_bytes(_tiny_png())
        os.chmod(place, 0o755)
        hostile = f'<<TABLE><TR><TD><IMG SRC="{canary}"/></TD></TR></TABLE>>'
        graph = {"root": {"name": hostile, "shape": [1], "dtype": "float32", "requires_grad": True},
                 "nodes": [{"id": 0, "kind": "backward", "name": hostile, "saved": []}],
                 "edges": [], "truncated": False, "total": 1}
        svg = (await graphs.draw(graph, "svg") or b"").decode("utf-8", "replace")
        ok = bool(svg) and "<image" not in svg and "&lt;" in svg
        failures += not ok
        say(f"  {'✓' if ok else '✗'} a name shaped like Graphviz markup is drawn as text, not as a host file")
        raw = (f'digraph {{ a [label=<<TABLE><TR><TD><IMG SRC="{canary}"/></TD></TR></TABLE>>]; '
               f'b [image="{canary}"] }}')
        drawn = (await graphs.run_dot(raw, "svg") or b"").decode("utf-8", "replace")
        ok = "<image" not in drawn
        failures += not ok
        say(f"  {'✓' if ok else '✗'} even raw markup cannot make dot draw a file of the host")
    return failures


def run_doctor(cfg: SandboxConfig | None = None, out: TextIO | None = None) -> int:
    """Print the active isolation layers and a self-test proving them; 0 when all is well, else 1."""
    config = cfg or SandboxConfig(workers=1)
    return asyncio.run(_doctor(config, out or sys.stdout))

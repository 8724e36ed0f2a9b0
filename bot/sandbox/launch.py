"""How a worker process is started: the bubblewrap command line, or the plain fallback.

Inside bubblewrap a worker sees a read-only ``/usr`` (plus the ``/bin``, ``/lib*`` links), the base
Python installation (only its ``bin``/``lib``), the site directories torch and numpy live in at
neutral paths (``/site/0``, ...: the virtualenv, and so the checkout's path, is not visible), the
sandbox code at ``/sandbox``, ``/etc/ld.so.cache``, fresh ``/proc`` and ``/dev``, and a small
private tmpfs at ``/tmp``. Nothing else of the host: not the repository, its ``.env``, the
database or ``data/``. The worker is PID 1 of its namespace (``--as-pid-1``): no bwrap process
with the host's command line is there to read.
It has no network, its own PID/IPC/UTS/cgroup namespaces and an environment
built from scratch (so ``TELEGRAM_BOT_TOKEN`` and the rest of the bot's environment do not exist
there, not even in ``/proc/1/environ``).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

SANDBOX_CODE_DIR = Path(__file__).resolve().parent
INSIDE_CODE_DIR = "/sandbox"
INSIDE_TMP = "/tmp"
INSIDE_SITE = "/site"
#: When the bot runs as root, each worker's runs drop to a uid of their own, from this range (no
#: user has one): the per-user process limit then counts one worker's runs only (a fork bomb cannot
#: starve the others), and a run's kill(-1) reaches nothing but its own run, even without PID
#: namespaces. The uid encodes the bot's pid, so that two bots on one machine never share one.
RUN_UID_BASE = 1 << 30
RUN_UID_SLOTS = 256


def run_uid(index: int) -> int:
    """The uid for worker number ``index`` of this process."""
    return RUN_UID_BASE + (os.getpid() % (1 << 22)) * RUN_UID_SLOTS + index % RUN_UID_SLOTS


def run_uid_range() -> range:
    """Every uid this process's workers may use."""
    first = run_uid(0)
    return range(first, first + RUN_UID_SLOTS)


SYSTEM_DIRS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime")


@dataclass(frozen=True)
class Launch:
    """A ready-to-exec worker command."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    isolation: str  # "bwrap" or "none"
    namespaces: tuple[str, ...] = ()


def sandbox_env() -> dict[str, str]:
    """The whole environment a worker (and so the learner's code) gets: nothing of the bot's."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": INSIDE_TMP,
        "TMPDIR": INSIDE_TMP,
        "USER": "sandbox",
        "LOGNAME": "sandbox",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "NUMEXPR_NUM_THREADS": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def find_bwrap() -> str | None:
    found = shutil.which("bwrap")
    if found:
        return found
    return "/usr/bin/bwrap" if os.access("/usr/bin/bwrap", os.X_OK) else None


def parent_dirs(path: str, made: set[str]) -> list[str]:
    """``--dir`` arguments creating ``path``'s missing parents world-traversable (bwrap would make
    them 0700, which the unprivileged run uid cannot enter)."""
    args: list[str] = []
    parents = []
    parent = os.path.dirname(path)
    while parent not in ("/", ""):
        parents.append(parent)
        parent = os.path.dirname(parent)
    for directory in reversed(parents):
        if directory not in made:
            made.add(directory)
            args += ["--perms", "0755", "--dir", directory]
    return args


def package_site_dirs() -> list[str]:
    """Where torch and numpy are installed (found without importing them)."""
    found: list[str] = []
    for package in ("torch", "numpy"):
        spec = importlib.util.find_spec(package)  # locates, does not import
        if spec and spec.submodule_search_locations:
            site_dir = str(Path(next(iter(spec.submodule_search_locations))).parent)
            if site_dir not in found:
                found.append(site_dir)
    return found


def site_args() -> list[str]:
    """Worker arguments naming those directories (``python -I`` would skip e.g. a user site)."""
    return [arg for directory in package_site_dirs() for arg in ("--site", directory)]


def base_executable() -> str:
    """The interpreter itself, outside any virtualenv (the sandbox needs no venv: torch's site
    directories are given to the worker explicitly)."""
    return os.path.realpath(getattr(sys, "_base_executable", "") or sys.executable)


def python_mounts(made: set[str]) -> list[str]:
    """bwrap arguments that make the base interpreter and its stdlib visible, and torch's site
    directories at ``/site/N``; nothing else of the directories they live in."""
    args: list[str] = []
    done: set[str] = set()

    def covered(path: str) -> bool:
        return path == "/usr" or path.startswith("/usr/") or any(path == d or path.startswith(d + "/") for d in done)

    def mount(path: str) -> None:
        if covered(path):
            return
        args.extend(parent_dirs(path, made))
        if os.path.islink(path):
            args.extend(["--symlink", os.readlink(path), path])
        elif os.path.exists(path):
            args.extend(["--ro-bind", path, path])
        else:
            return
        done.add(path)

    prefixes = {sys.base_prefix, sys.base_exec_prefix}
    for prefix in sorted(prefixes, key=len):
        for name in ("bin", "lib", "lib64"):
            mount(os.path.join(prefix, name))
    mount(os.path.dirname(base_executable()))
    for index, site_dir in enumerate(package_site_dirs()):
        args += parent_dirs(f"{INSIDE_SITE}/{index}", made)
        args += ["--ro-bind", site_dir, f"{INSIDE_SITE}/{index}"]
    return args


def inside_site_args() -> list[str]:
    """Worker arguments naming the site directories where bubblewrap shows them."""
    return [arg for index, _ in enumerate(package_site_dirs()) for arg in ("--site", f"{INSIDE_SITE}/{index}")]


def bwrap_command(bwrap: str, tmpfs_mb: int) -> tuple[list[str], tuple[str, ...]]:
    """The bubblewrap prefix (up to and including ``--``) and the namespaces it creates."""
    args = [bwrap]
    if os.geteuid() == 0:
        # As root: no user namespace, so the run can drop to a real unprivileged uid; the worker
        # keeps only the capabilities it needs (switch uid, signal the run) and NO_NEW_PRIVS is set.
        args += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
        args += ["--cap-drop", "ALL"]
        for cap in ("CAP_SETUID", "CAP_SETGID", "CAP_KILL"):
            args += ["--cap-add", cap]
        namespaces: tuple[str, ...] = ("mount", "pid", "net", "ipc", "uts", "cgroup")
    else:
        args += ["--unshare-all"]
        namespaces = ("user", "mount", "pid", "net", "ipc", "uts", "cgroup")
    args += ["--die-with-parent", "--new-session", "--hostname", "sandbox", "--as-pid-1"]
    # The private tmp first: a checkout (and so its .venv) that lives under /tmp is bound on top of it
    # below, instead of being hidden by it. The worker leaves what is there at start alone.
    args += ["--size", str(tmpfs_mb << 20), "--perms", "1777", "--tmpfs", INSIDE_TMP]
    args += ["--ro-bind", "/usr", "/usr"]
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    made = {"/usr", INSIDE_TMP}
    for path in ETC_FILES:
        if os.path.exists(path):
            args += parent_dirs(path, made)
            args += ["--ro-bind", path, path]
    args += python_mounts(made)
    args += ["--ro-bind", str(SANDBOX_CODE_DIR), INSIDE_CODE_DIR]
    args += ["--proc", "/proc", "--dev", "/dev"]
    args += ["--clearenv"]
    for key, value in sandbox_env().items():
        args += ["--setenv", key, value]
    args += ["--chdir", INSIDE_TMP, "--"]
    return args, namespaces


def bwrap_launch(bwrap: str, tmpfs_mb: int, uid: int, wipe_seconds: float = 2.0) -> Launch:
    prefix, namespaces = bwrap_command(bwrap, tmpfs_mb)
    argv = [*prefix, base_executable(), "-I", "-B", f"{INSIDE_CODE_DIR}/worker.py"]
    argv += ["--tmp", INSIDE_TMP, "--pidns", "--uid", str(uid), "--wipe-seconds", str(wipe_seconds)]
    argv += inside_site_args()
    return Launch(argv=argv, env=sandbox_env(), cwd="/", isolation="bwrap", namespaces=namespaces)


def plain_launch(tmp_dir: str, uid: int, wipe_seconds: float = 2.0) -> Launch:
    """No bubblewrap: the same worker as a plain process, in a private tmp directory."""
    env = sandbox_env()
    env["HOME"] = env["TMPDIR"] = tmp_dir
    argv = [sys.executable, "-I", "-B", str(SANDBOX_CODE_DIR / "worker.py"), "--tmp", tmp_dir]
    argv += ["--uid", str(uid), "--wipe-seconds", str(wipe_seconds), *site_args()]
    return Launch(argv=argv, env=env, cwd=tmp_dir, isolation="none")


def private_tmp_dir() -> str:
    """A fresh directory for a plain worker's runs (writable by the unprivileged run uid)."""
    path = tempfile.mkdtemp(prefix="tutor-sandbox-")
    os.chmod(path, 0o1777)
    return path


def cgroup_v2_status() -> str:
    """Whether a cgroup v2 memory controller exists here (the sandbox does not rely on one: a run is
    a single process, so its address-space limit bounds its memory)."""
    for root in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        try:
            with open(os.path.join(root, "cgroup.controllers")) as f:
                controllers = f.read().split()
        except OSError:
            continue
        if "memory" in controllers:
            return f"a cgroup v2 memory controller exists at {root}; the one-process rule bounds memory anyway"
        return f"cgroup v2 at {root} has no memory controller (it is on cgroup v1 here)"
    return "no cgroup v2 hierarchy here"


def bwrap_self_test(bwrap: str, tmpfs_mb: int, timeout: float = 20.0) -> str | None:
    """``None`` when bubblewrap can build our sandbox here, otherwise why not."""
    prefix, _ = bwrap_command(bwrap, tmpfs_mb)
    probe = "import os, sys; print('sandbox-ok', os.getpid(), len(os.environ))"
    try:
        done = subprocess.run(
            [*prefix, base_executable(), "-I", "-S", "-c", probe],
            env=sandbox_env(),
            cwd="/",
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{type(exc).__name__}: {exc}"
    out = done.stdout.decode("utf-8", "replace").split()
    if done.returncode != 0 or not out or out[0] != "sandbox-ok":
        err = done.stderr.decode("utf-8", "replace").strip()
        return f"exit status {done.returncode}: {err[:300] or 'no output'}"
    return None

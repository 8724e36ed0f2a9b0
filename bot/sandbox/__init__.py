"""Code evaluation for the tutor: learners' code with real torch, fast and isolated.

    async with Sandbox(SandboxConfig(workers=2)) as sandbox:
        outcome = await sandbox.evaluate(code, [CheckSpec("grad", "assert x.grad is not None")])

``evaluate`` runs the code in a fresh ``__main__`` namespace, then each check in the same namespace
(each in its own try), and returns a ``dialogs.evaluation.EvalOutcome``. It never raises for what
the learner's code does; when our machinery fails the status is ``"unavailable"``. ``start`` raises
``SandboxUnavailable`` when no worker can start at all. Importing this package does not import torch.

How (``runner.py`` in the bot, ``worker.py`` + ``harness.py`` in the sandbox):
warm worker processes import torch once (one thread, no torch op before fork) and fork a fresh
child per submission, ahead of it, from a process that never holds a request or an outcome (a
supervisor beside it talks to the bot; see ``worker.py``); the child is thrown away after. A run is
one process (seccomp refuses fork), so its memory limit is the whole run's. The layers, outermost
first:

- bubblewrap: no network, its own PID/IPC/UTS/cgroup/mount namespaces, a read-only view of only
  ``/usr`` and the Python installation, a small private tmpfs ``/tmp``, an environment built from
  scratch (the bot token and ``.env`` do not exist there), dies with the bot (``launch.py``);
- an unprivileged uid for the runs when the bot runs as root (the worker keeps only CAP_SETUID,
  CAP_SETGID and CAP_KILL), the worker non-dumpable (a run cannot ptrace it or read its memory);
- seccomp (x86_64) and NO_NEW_PRIVS in each run: no new namespaces, ptrace, mounts, bpf, io_uring,
  keyrings; setuid binaries do not raise privileges (``seccomp.py``);
- rlimits in each run: CPU, address space (relative to the size after fork), file size, open files,
  threads, no core;
- a wall clock enforced by the worker that kills the whole run (its process group, and any escaped
  descendant: the worker is their subreaper), the tmp emptied and checked after each run (else the
  worker is replaced), and a backstop deadline in the bot that replaces a wedged worker;
- output read with a byte budget; the verdict travels as framed JSON on its own pipe (never stdout,
  never pickle) and is validated twice as untrusted data (worker, then bot).

Without bubblewrap (missing, or unable to create namespaces) the workers run as plain processes with
every other layer, and a warning is logged: then the network, the host's files and ``/tmp`` are
reachable. ``python -m bot doctor`` says which layers are active and proves them.

Known limits: checks share the run's process, so code that sets out to fool its own checks can
(that only cheats the learner); when the bot is not root the run has the worker's uid and can kill
its own worker (which is then replaced; other learners only lose capacity for a moment).
"""

from bot.sandbox.config import SandboxConfig
from bot.sandbox.runner import Sandbox

__all__ = ["Sandbox", "SandboxConfig"]

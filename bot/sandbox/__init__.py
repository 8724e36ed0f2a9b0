"""Code evaluation for the tutor: learners' code with real torch, fast and isolated.

    async with Sandbox(SandboxConfig(workers=2)) as sandbox:
        outcome = await sandbox.evaluate(code, [CheckSpec("grad", "assert x.grad is not None")])

Warm worker processes import torch once; each submission runs in a fresh child forked from one and
thrown away after. Layers: bubblewrap namespaces (no network, no view of the bot's files or
environment, read-only system, private tmpfs, own PID namespace), an unprivileged uid, rlimits in
the child, a wall clock that kills the whole run, an output budget, JSON-only results validated as
untrusted. Importing this package does not import torch.
"""

from bot.sandbox.config import SandboxConfig
from bot.sandbox.runner import Sandbox

__all__ = ["Sandbox", "SandboxConfig"]

"""Settings of the code sandbox."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


def _cores() -> int:
    return os.cpu_count() or 1


@dataclass
class SandboxConfig:
    """How many warm workers to keep, what one submission may use, and how long the queue may get.

    ``use_bwrap``: ``True`` requires bubblewrap (start fails without it), ``False`` never uses it,
    ``None`` uses it when its self-test passes and otherwise falls back, with a warning, to plain
    processes that keep every other layer (rlimits, wall clock, uid drop, clean environment).
    """

    workers: int = field(default_factory=_cores)
    wall_seconds: float = 5.0
    memory_mb: int = 1024
    output_bytes: int = 65536
    tmpfs_mb: int = 64
    use_bwrap: bool | None = None
    #: Submissions that may wait for a free worker (0: ten per worker); more are answered "busy".
    queue_limit: int = 0
    #: How long a submission may wait for a free worker before it is answered "busy".
    queue_seconds: float = 20.0
    #: How long emptying a worker's tmp after a run may take; longer, and the worker is replaced.
    wipe_seconds: float = 2.0

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        if self.wall_seconds <= 0:
            raise ValueError("wall_seconds must be positive")
        if self.memory_mb < 64:
            raise ValueError("memory_mb must be at least 64")
        if self.output_bytes < 1:
            raise ValueError("output_bytes must be positive")
        if self.tmpfs_mb < 1:
            raise ValueError("tmpfs_mb must be positive")
        if self.queue_limit < 0:
            raise ValueError("queue_limit must not be negative")
        if self.queue_seconds <= 0:
            raise ValueError("queue_seconds must be positive")
        if self.wipe_seconds <= 0:
            raise ValueError("wipe_seconds must be positive")
        if self.queue_limit == 0:
            self.queue_limit = 10 * self.workers

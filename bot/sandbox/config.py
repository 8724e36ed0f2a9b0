"""Settings of the code sandbox."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


def _cores() -> int:
    return os.cpu_count() or 1


@dataclass
class SandboxConfig:
    """How many warm workers to keep and what one submission may use.

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

"""The exception tree of Autograd Tutor.

    TutorError                  root: anything we raise on purpose
    ├── ContentError            the course YAML is wrong (file, location, reason)
    └── SandboxError            the code runner itself failed (not the learner's code)
        └── SandboxUnavailable  no worker could be started
"""

from __future__ import annotations


class TutorError(Exception):
    """Root of every error Autograd Tutor raises on purpose."""


class ContentError(TutorError):
    """A course file is invalid. The message names the file, the location and the reason."""

    def __init__(self, file: str, location: str, reason: str) -> None:
        self.file = file
        self.location = location
        self.reason = reason
        where = f"{file}: {location}" if location else file
        super().__init__(f"{where}: {reason}")


class SandboxError(TutorError):
    """The sandbox could not evaluate a submission for reasons of ours, not the learner's."""


class SandboxUnavailable(SandboxError):
    """No sandbox worker could be started."""

"""What the engine asks the sandbox, and what it gets back: plain, JSON-friendly data.

The engine emits an ``Evaluate`` effect holding the learner's code and the step's hidden checks; the
shell runs them in the sandbox and feeds an ``EvalOutcome`` back as an ``EvalResult`` event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["ok", "error", "timeout", "memory", "crashed", "output_limit", "unavailable", "busy"]
STATUSES: tuple[str, ...] = ("ok", "error", "timeout", "memory", "crashed", "output_limit", "unavailable", "busy")


@dataclass(frozen=True)
class CheckSpec:
    """A hidden check: Python run after the learner's code, in the same namespace.

    It passes when it raises nothing. Its exception message (e.g. an ``AssertionError``'s text)
    becomes ``CheckResult.detail``.
    """

    id: str
    code: str


@dataclass(frozen=True)
class CheckResult:
    id: str
    passed: bool
    detail: str = ""


@dataclass(frozen=True)
class EvalOutcome:
    """The result of one submission.

    status:
      ok            the learner's code ran to the end; ``checks`` holds one result per check
      error         the learner's code raised; ``error`` is the traceback reduced to their lines
      timeout       the wall-clock or CPU limit killed it
      memory        it ran out of the memory allowance
      crashed       the process died (signal, os._exit, segfault...); ``error`` says how
      output_limit  it printed more than the output budget and was stopped
      unavailable   the sandbox itself could not run it (our fault); ``error`` says why
      busy          it was not run: the learner already has a run in flight (``extra["busy"] ==
                    "learner"``), or the sandbox's queue is full or the wait too long (``"queue"``)
    """

    status: Status
    checks: tuple[CheckResult, ...] = ()
    stdout: str = ""
    error: str = ""
    duration_ms: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status == "ok" and all(c.passed for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "checks": [{"id": c.id, "passed": c.passed, "detail": c.detail} for c in self.checks],
            "stdout": self.stdout,
            "error": self.error,
            "duration_ms": self.duration_ms,
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalOutcome:
        status = data.get("status")
        if status not in STATUSES:
            raise ValueError(f"unknown evaluation status {status!r}")
        checks = tuple(
            CheckResult(id=str(c["id"]), passed=bool(c["passed"]), detail=str(c.get("detail", "")))
            for c in data.get("checks", [])
        )
        return cls(
            status=status,
            checks=checks,
            stdout=str(data.get("stdout", "")),
            error=str(data.get("error", "")),
            duration_ms=int(data.get("duration_ms", 0)),
            extra=dict(data.get("extra", {})),
        )

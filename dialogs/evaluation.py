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
    becomes ``CheckResult.detail``. A check that says why it failed in the learner's language raises
    ``AssertionError({"say": "<name>", **values})`` (e.g. ``assert ok, {"say": "grad", "name": "x",
    "got": g.tolist(), ...}``): ``say`` names a wording of the tutor's (``dialogs.runs.DETAIL_KEYS``),
    the values fill it in. A gradcheck Jacobian mismatch among the values (or raised by the check
    itself) comes back as data: the two matrices, cut to a readable size.
    """

    id: str
    code: str


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict. ``detail`` is the check's message as plain text (for logs, and for the
    learner when there is nothing better); ``say`` and ``values``, when the check gave them, are the
    same message as data, worded by the tutor in the learner's language. Every value came out of the
    learner's process: it is shown literally."""

    id: str
    passed: bool
    detail: str = ""
    say: str = ""
    values: dict[str, Any] = field(default_factory=dict)


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

    ``error`` is for logs and, when it is the learner's own traceback, for the learner. What the
    sandbox did to a run is also data, worded for the learner by ``dialogs.runs``: ``extra["why"]``
    is ``"wall"`` / ``"cpu"`` (a time limit, ``extra["limit"]`` seconds), ``"output"`` (``limit``
    bytes printed), ``"code_size"`` (``limit`` bytes of code), ``"exit"`` (the code called
    ``sys.exit``), ``"killed"`` or ``"report"`` (the run broke the sandbox's reporting); a crash
    names ``extra["signal"]`` or ``extra["exit_code"]``.
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
            "checks": [{"id": c.id, "passed": c.passed, "detail": c.detail, "say": c.say, "values": c.values}
                       for c in self.checks],
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
            CheckResult(id=str(c["id"]), passed=bool(c["passed"]), detail=str(c.get("detail", "")),
                        say=str(c.get("say") or ""),
                        values=dict(c["values"]) if isinstance(c.get("values"), dict) else {})
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

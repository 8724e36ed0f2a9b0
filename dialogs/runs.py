"""Code the learner sends to the sandbox (a code task's answer, a ``/graph``), and the words for what
can happen to a run."""

from __future__ import annotations

from dialogs import answers
from dialogs.context import Host, Out
from dialogs.evaluation import EvalOutcome
from dialogs.state import LearnerState

MAX_CODE_CHARS = 20_000
#: UI keys of what can happen to a run, named once each.
STATUS_KEYS = {"ok": "status_ok", "error": "status_error", "timeout": "status_timeout", "memory": "status_memory",
               "crashed": "status_crashed", "output_limit": "status_output_limit",
               "unavailable": "status_unavailable", "busy": "busy_queue"}


def code_of(host: Host, s: LearnerState, text: str, empty_key: str, out: Out) -> str | None:
    """The code in a message (fences removed), or None after telling the learner what is wrong."""
    code = answers.extract_code(text)
    if not code.strip():
        out.say(host.t(s, empty_key))
        return None
    if len(code) > MAX_CODE_CHARS:
        out.say(host.t(s, "code_too_long", limit=MAX_CODE_CHARS, got=len(code)))
        return None
    return code


def busy_key(outcome: EvalOutcome) -> str:
    """The UI string for a run that was not started: the learner's own run is still going, or the
    sandbox's queue is full."""
    return "busy_learner" if outcome.extra.get("busy") == "learner" else "busy_queue"

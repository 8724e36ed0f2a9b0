"""Code the learner sends to the sandbox (a code task's answer, a ``/graph``), and the words for what
can happen to a run.

The sandbox answers with data (``EvalOutcome``: a status, ``extra["why"]`` and its limit, a failed
check's ``say`` and values); this module words that data in the learner's language. What the
learner's own code produced (a traceback, a value, a name) is shown literally, never translated.
"""

from __future__ import annotations

import math
import re
from typing import Any

from dialogs import answers, markup
from dialogs.context import Host, Out, error_block
from dialogs.evaluation import CheckResult, EvalOutcome
from dialogs.state import LearnerState

MAX_CODE_CHARS = 20_000
#: UI keys of what can happen to a run, named once each.
STATUS_KEYS = {"ok": "status_ok", "error": "status_error", "timeout": "status_timeout", "memory": "status_memory",
               "crashed": "status_crashed", "output_limit": "status_output_limit",
               "unavailable": "status_unavailable", "busy": "busy_queue"}
#: What the sandbox did to a run (``extra["why"]``), worded for the learner.
RUN_KEYS = {"wall": "run_wall", "cpu": "run_cpu", "output": "run_output", "code_size": "run_code_size",
            "exit": "run_exit", "killed": "run_killed", "report": "run_report"}
#: What a signal that killed the learner's process usually means.
SIGNAL_KEYS = {"SIGSEGV": "signal_segv", "SIGABRT": "signal_abrt", "SIGBUS": "signal_bus", "SIGFPE": "signal_fpe",
               "SIGILL": "signal_ill"}
#: The wordings a check may ask for by raising ``AssertionError({"say": name, **values})`` (content/README.md).
DETAIL_KEYS = {
    "missing": "detail_missing", "not_function": "detail_not_function", "returned": "detail_returned",
    "not_tensor": "detail_not_tensor", "numel": "detail_numel", "forward": "detail_forward",
    "grad_fn": "detail_grad_fn", "grad_none": "detail_grad_none", "grad": "detail_grad",
    "grad_set": "detail_grad_set", "gradcheck_false": "detail_gradcheck_false", "not_leaf": "detail_not_leaf",
    "no_requires_grad": "detail_no_requires_grad", "value": "detail_value",
    "losses_missing": "detail_losses_missing", "loss_drop": "detail_loss_drop", "optimizer": "detail_optimizer",
}
#: The widest a value may be in a sentence, and a plain check message on its line.
VALUE_CHARS = 160
DETAIL_CHARS = 300
#: gradcheck's default tolerances: a Jacobian entry beyond them is marked as differing.
_ATOL, _RTOL = 1e-5, 1e-3


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


# -------------------------------------------------------------------------- a run that did not finish


#: What Python prints first for code that does not compile: ``  File "<your code>", line 3`` (a runtime
#: error's traceback starts with "Traceback" instead, even when the learner's code raised a SyntaxError).
_PARSE_WHERE = re.compile(r'\s*File "[^"\n]*", line (\d{1,7})\b')
_PARSE_ERROR = re.compile(r"^(?:SyntaxError|IndentationError|TabError)\b")


def syntax_error_line(o: EvalOutcome) -> int | None:
    """The line on which the learner's code failed to parse, as the sandbox reports it; None when the
    code parsed (whatever it raised then)."""
    if o.status != "error":
        return None
    lines = [line for line in o.error.splitlines() if line.strip()]
    if not lines or not _PARSE_ERROR.match(lines[-1]):
        return None
    where = _PARSE_WHERE.match(lines[0])
    return int(where.group(1)) if where else None


def run_problem(host: Host, s: LearnerState, o: EvalOutcome) -> str:
    """Why a run never got to its checks, in the learner's language: the status line, what the sandbox
    did (from its data), and the learner's own traceback as a literal block. A sandbox that says
    nothing as data (``why``) is quoted as it is."""
    why = o.extra.get("why")
    if why == "code_size":
        return _fill(host, s, RUN_KEYS[why], limit=_limit(o.extra.get("limit")))
    parse_error = o.status == "error" and syntax_error_line(o) is not None
    text = host.t(s, "status_syntax" if parse_error else STATUS_KEYS[o.status])
    if o.status in ("error", "memory"):
        text += error_block(o.error)  # their own exception: literal, untranslated
        return text + ("\n" + host.t(s, RUN_KEYS["exit"]) if why == "exit" else "")
    if o.status == "unavailable":
        return text  # our fault: the why is in the operator's log
    if why in RUN_KEYS:
        return text + "\n" + _fill(host, s, RUN_KEYS[why], limit=_limit(o.extra.get("limit")))
    signal, code = o.extra.get("signal"), o.extra.get("exit_code")
    if o.status == "crashed" and isinstance(signal, str) and signal:
        name = "`" + markup.literal(_clip(signal, 40)) + "`"
        return text + "\n" + (_fill(host, s, SIGNAL_KEYS[signal], signal=name) if signal in SIGNAL_KEYS else name)
    if o.status == "crashed" and isinstance(code, int) and not isinstance(code, bool):
        return text + "\n" + host.t(s, "run_exit_code", code=code)
    return text + error_block(o.error)


def _limit(value: object) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return f"{value:g}" if isinstance(value, float) else str(value)
    return "?"


# ------------------------------------------------------------------------------- a failed check


def check_detail(host: Host, s: LearnerState, res: CheckResult | None) -> str:
    """What a failed check found, to put under its line: the check's message worded in the learner's
    language when it gave one as data (its values shown literally; a gradcheck Jacobian as two
    matrices in a block), else its plain message as one literal code span; nothing when it said
    nothing."""
    if res is None:
        return "\n   " + host.t(s, "check_missing")
    try:
        worded = _worded(host, s, res.say, res.values)
    except (TypeError, ValueError, KeyError, IndexError, AttributeError):
        worded = None  # data we cannot read: the plain message will do
    if worded is not None:
        return "\n   " + worded
    flat = " ".join(res.detail.split())
    return f"\n   `{markup.literal(_clip(flat, DETAIL_CHARS))}`" if flat else ""


def _worded(host: Host, s: LearnerState, say: str, values: dict[str, Any]) -> str | None:
    if say == "gradcheck":
        inputs = values.get("inputs")
        head = (host.t(s, "detail_gradcheck", inputs=_value(inputs)) if inputs is not None
                else host.t(s, "detail_gradcheck_bare"))
        error = values.get("error")
        head += "" if head.endswith("：") else " "  # a full-width colon has its space built in
        if isinstance(error, dict) and error.get("kind") == "jacobian":
            return (head + host.t(s, "detail_jacobian", output=_value(error.get("output")),
                                  input=_value(error.get("input")))
                    + "\n" + jacobian_block(error))
        return head + (f"`{_value(error)}`" if error is not None else "")
    if say not in DETAIL_KEYS:
        return None
    return _fill(host, s, DETAIL_KEYS[say], **{k: _value(v) for k, v in values.items()})


def _fill(host: Host, s: LearnerState, key: str, **values: Any) -> str:
    """``host.t`` with every placeholder filled: one the values lack shows as ``?``."""
    for _ in range(12):
        try:
            return host.t(s, key, **values)
        except KeyError as missing:
            name = str(missing.args[0])
            if name in values:
                raise
            values[name] = "?"
    return host.t(s, key, **dict.fromkeys(values, "?"))


def _value(value: object) -> str:
    """A value from the learner's process for a sentence: literal, on one line, cut between items."""
    return markup.literal(_clip(show(value), VALUE_CHARS))


def show(value: object) -> str:
    """A value as Python would write it, floats short (``30.0``, ``0.1``, ``-5.55112e-11``)."""
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, list):
        return "[" + ", ".join(show(v) for v in value) + "]"
    return str(value)


def _float(v: float) -> str:
    if not math.isfinite(v):
        return str(v)
    return f"{v:.1f}" if v.is_integer() and abs(v) < 1e15 else f"{v:.6g}"


def _clip(text: str, limit: int) -> str:
    """``text`` at most about ``limit`` characters, cut after a space or a comma (never inside a number
    or a word when there is a break to cut at), with "…" where it was cut."""
    if len(text) <= limit:
        return text
    cut = max(text.rfind(" ", 0, limit), text.rfind(",", 0, limit) + 1)
    if cut < limit // 2:
        cut = limit
    return text[:cut].rstrip(" ,") + " …"


# ------------------------------------------------------------------------------- gradcheck's matrices


def jacobian_block(j: dict[str, Any]) -> str:
    """gradcheck's numerical and analytical Jacobians as a code block, one matrix row per line, the
    numbers aligned; rows or columns the sandbox left out show as "…" (whole numbers only), and a
    row where the two matrices differ is marked in the analytical one."""
    rows, cols = [int(r) for r in j["rows"]], [int(c) for c in j["cols"]]
    total_rows, total_cols = (int(n) for n in j["shape"])
    matrices = {which: [list(row) for row in j[which]] for which in ("numerical", "analytical")}
    numbers = [v for m in matrices.values() for row in m for v in row if isinstance(v, int | float)]
    fixed = all(abs(v) < 1e4 for v in numbers)
    cells = {which: [[_cell(v, fixed) for v in row] for row in m] for which, m in matrices.items()}
    width = max((len(c) for m in cells.values() for row in m for c in row), default=1)
    differ = [any(_differs(a, n) for a, n in zip(ar, nr, strict=True))
              for ar, nr in zip(matrices["analytical"], matrices["numerical"], strict=True)]
    lines: list[str] = []
    for which in ("numerical", "analytical"):
        lines.append(f"{which}:")
        previous = -1
        for i, (r, row) in enumerate(zip(rows, cells[which], strict=True)):
            if r != previous + 1:
                lines.append("  …")
            line = ""
            last = -1
            for c, cell in zip(cols, row, strict=True):
                line += ("  …" if c != last + 1 else "") + "  " + cell.rjust(width)
                last = c
            line += "  …" if last != total_cols - 1 else ""
            lines.append(line + ("   ≠" if which == "analytical" and differ[i] else ""))
            previous = r
        if previous != total_rows - 1:
            lines.append("  …")
    return markup.block("\n".join(lines))


def _cell(v: object, fixed: bool) -> str:
    if not isinstance(v, int | float) or isinstance(v, bool):
        return str(v)
    if fixed:
        text = f"{v:.4f}"
        return "0.0000" if text == "-0.0000" else text
    return f"{v:.4g}"


def _differs(a: object, n: object) -> bool:
    if not isinstance(a, int | float) or not isinstance(n, int | float):
        return a != n
    if math.isnan(a) or math.isnan(n):
        return not (math.isnan(a) and math.isnan(n))
    return abs(a - n) > _ATOL + _RTOL * abs(n)

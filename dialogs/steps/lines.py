"""The tutor's stock lines after an answer — praise, "not yet", what went wrong with a prediction or a
code run — chosen to fit what happened, and varied so that one learner never reads the same line of a
key twice in a row.

A UI string may hold variants separated by ``||``. :func:`vary` picks one from the state alone (no
randomness): the first use of a key by ``seq``; every later use any variant but the one used last,
which ``LearnerState.said`` remembers (key -> index of the variant said last).
"""

from __future__ import annotations

import re
from typing import Any

from dialogs import answers
from dialogs.context import Host
from dialogs.evaluation import EvalOutcome
from dialogs.runs import syntax_error_line
from dialogs.state import LearnerState

#: Praise by how many wrong tries came before: none, one, several.
PRAISE_KEYS = {"first": "praise", "retry": "praise_retry", "persist": "praise_persist"}
#: A wrong answer with nothing more specific to say: the first miss, a later one.
WRONG_KEYS = {"first": "wrong", "again": "wrong_again"}
#: A wrong prediction of a printed value, by how it differs from the real output.
PREDICT_KEYS = {"none": "predict_not_none", "error": "predict_no_error", "words": "predict_no_numbers",
                "more": "predict_too_many", "fewer": "predict_too_few", "values": "predict_other_values"}
#: A failed code run: it did not parse; some checks passed; anything else.
CODE_KEYS = {"syntax": "code_syntax", "partial": "code_partial", "failed": "code_failed"}
#: Lists in a sentence ("2 and 3", "2、3").
LIST_KEYS = {"sep": "list_sep", "last": "list_last"}


def vary(host: Host, s: LearnerState, key: str, **values: Any) -> tuple[str, LearnerState]:
    """One variant of a UI string, never the one this learner got from ``key`` last time, and the state
    that remembers it."""
    variants = [v.strip() for v in host.t(s, key, **values).split("||")]
    n = len(variants)
    last = s.said.get(key)
    # the first time by seq; then a step of 1..n-1 from the last one: any other variant, which one by seq
    index = s.seq % n if last is None or n == 1 else (last % n + 1 + s.seq % (n - 1)) % n
    return variants[index], s.but(said={**s.said, key: index})


def praise(host: Host, s: LearnerState) -> tuple[str, LearnerState]:
    """Right: first time, after one miss, or after several (``s.attempts`` wrong tries so far)."""
    which = "first" if s.attempts == 0 else "retry" if s.attempts == 1 else "persist"
    return vary(host, s, PRAISE_KEYS[which], tries=s.attempts + 1)


def not_yet(host: Host, s: LearnerState) -> tuple[str, LearnerState]:
    """Wrong, with nothing more specific to say: a first miss or another one."""
    return vary(host, s, WRONG_KEYS["first" if s.attempts == 0 else "again"])


# ------------------------------------------------------------------------------------------- predict

_ERROR_WORDS = re.compile(r"error|exception|traceback|\braises?\b|报错|错误|异常|抛出", re.I)
_DIGIT = re.compile(r"\d", re.ASCII)


def predict_miss(typed: str, answer: str, match: str) -> str | None:
    """How a wrong prediction differs from the real output, as a ``PREDICT_KEYS`` key; None when there is
    nothing specific (and true) to say.

    Only for outputs compared by their numbers (``match: numbers``): such an output is numbers (or
    booleans) in tensor formatting, printed by code that the content tests run without an error.
    """
    if match != "numbers":
        return None
    want = answers.numbers_in(answer)
    if not want:
        return None
    if _ERROR_WORDS.search(answers.normalise(typed)):
        return "error"
    got = answers.numbers_in(typed)
    if got is None:
        return "none"
    if not got:  # words only: say so where the real output shows digits (not for True/False outputs)
        return "words" if _DIGIT.search(answer) else None
    if len(got) != len(want):
        return "more" if len(got) > len(want) else "fewer"
    return "values"


def predict_wrong(host: Host, s: LearnerState, typed: str, answer: str, match: str) -> tuple[str, LearnerState]:
    """The line for a wrong prediction: what differs when that can be said, else a plain "not yet"."""
    miss = predict_miss(typed, answer, match)
    if miss is None:
        return not_yet(host, s)
    return vary(host, s, PREDICT_KEYS[miss])


# ---------------------------------------------------------------------------------------------- code

def code_failed(host: Host, s: LearnerState, o: EvalOutcome) -> tuple[str, LearnerState]:
    """The first line after a run that did not pass: it did not parse (and where), some checks passed
    (how many), or plainly not yet."""
    line = syntax_error_line(o)
    if line is not None:
        return vary(host, s, CODE_KEYS["syntax"], line=line)
    passed = sum(c.passed for c in o.checks)
    if o.status == "ok" and 0 < passed < len(o.checks):
        return vary(host, s, CODE_KEYS["partial"], passed=passed, total=len(o.checks))
    return vary(host, s, CODE_KEYS["failed"])


# --------------------------------------------------------------------------------------------- lists

def listing(host: Host, s: LearnerState, items: list[str]) -> str:
    """``2``, ``2 and 3``, ``2, 3 and 5`` (``2、3、5`` in Chinese)."""
    if len(items) < 2:
        return "".join(items)
    return host.t(s, LIST_KEYS["sep"]).join(items[:-1]) + host.t(s, LIST_KEYS["last"]) + items[-1]

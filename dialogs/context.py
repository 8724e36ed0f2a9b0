"""What the engine's parts share while one turn is computed: the collector of replies and effects
(``Out``), the engine's services they may call (``Host``, a typed contract), and small text helpers.

Modules of plain functions (``steps/``, ``deck``, ``quiz``, ``settings``, ``daily``) take a ``Host`` and
an ``Out``; none of them imports the engine.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from dialogs import markup, numbers
from dialogs.messages import Button, Effect, QuizPoll, Reply, Say

if TYPE_CHECKING:
    from dialogs.course import Course
    from dialogs.state import LearnerState

LETTERS = "ABCDEFGH"
MAX_ECHO = 60

Keyboard = tuple[tuple[Button, ...], ...]


class Out:
    """Collects what one turn says and does."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.replies: list[Reply] = []
        self.effects: list[Effect] = []
        self.toast = ""  # a note for the tapped button (see Turn.toast)

    def say(self, text: str, buttons: Keyboard = (), anchor: str | None = None, seq: int = 0,
            poll: QuizPoll | None = None) -> None:
        self.replies.append(Say(text, buttons, anchor, seq, poll))


class Host(Protocol):
    """The engine's services, for the modules that handle parts of a turn."""

    course: Course

    def t(self, s: LearnerState, key: str, **values: Any) -> str: ...

    def stale(self, s: LearnerState, out: Out) -> None: ...

    def section_label(self, section_id: str) -> str: ...

    def go_button(self, s: LearnerState, label_key: str = "btn_go") -> Keyboard: ...

    def resend(self, s: LearnerState, out: Out) -> LearnerState: ...

    def ask(self, s: LearnerState, step: Any, out: Out) -> LearnerState: ...

    def complete(self, s: LearnerState, out: Out) -> LearnerState: ...


# -- text made from what learners and their code produce: literal, never markup -----------------

_MARKS = re.compile(r"^(?:[✅❌✔✗✘❎☑️]\ufe0f?\s*)+")


def feedback(text: str) -> str:
    """Feedback without a leading verdict mark: the engine puts its own ✅/❌ in front."""
    return _MARKS.sub("", text.lstrip())


def literal(text: str, limit: int) -> str:
    """Learner text for a sentence: whitespace runs made one space, cut at ``limit``, a literal span."""
    flat = " ".join(str(text).split())
    return markup.literal(flat if len(flat) <= limit else flat[:limit] + "…")


def odd_digits_note(host: Host, s: LearnerState, text: str) -> str:
    """Where a number was refused: a line naming what only looks like a digit in ``text`` (``²``, ``①``,
    ``٣``) and asking for 0-9, to put before the usual hint; nothing when there is no such character."""
    odd = numbers.odd_digits(text)
    return host.t(s, "number_odd_digits", chars=literal(odd, 12)) + "\n" if odd else ""


def error_block(error: str) -> str:
    """A traceback's last 1500 characters as a code block, after a newline; nothing for no error."""
    return "\n" + markup.block(error.rstrip()[-1500:]) if error.strip() else ""


def output_block(stdout: str) -> str:
    """What the code printed (its first 1500 characters) as a code block."""
    shown = stdout.rstrip()
    return markup.block(shown if len(shown) <= 1500 else shown[:1500] + "\n…")

"""Events in, replies and effects out: the engine's vocabulary, as frozen dataclasses.

Replies carry text in the course's small markup (``**bold**``, `` `code` ``, fenced code blocks,
``| a | b |`` tables) already in the learner's language; each renderer (terminal, Telegram) turns one
reply into one output call. Text from the learner's code is in it only as literal text (see
``dialogs.markup``: ``block``, ``literal``, ``visible``), never as markup.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dialogs.evaluation import CheckSpec, EvalOutcome

# --------------------------------------------------------------------------------------------- events


@dataclass(frozen=True)
class Start:
    """/start, or the first contact."""


@dataclass(frozen=True)
class Text:
    """Anything typed that is not a command: an answer, a 'go', code..."""

    text: str


@dataclass(frozen=True)
class Command:
    name: str  # without the slash, lower case
    args: str = ""


@dataclass(frozen=True)
class Press:
    """A button press. ``seq`` is the state version the button was made for (stale check)."""

    action: str
    arg: str = ""
    seq: int | None = None


@dataclass(frozen=True)
class EvalResult:
    request: str
    outcome: EvalOutcome


@dataclass(frozen=True)
class Push:
    """The learner's daily push time has come (``force``: an operator asked for it now)."""

    force: bool = False


@dataclass(frozen=True)
class Unsupported:
    """A sticker, photo, voice note... something we cannot read as an answer."""

    what: str


Event = Start | Text | Command | Press | EvalResult | Push | Unsupported

# -------------------------------------------------------------------------------------------- replies


@dataclass(frozen=True)
class Button:
    label: str
    action: str
    arg: str = ""


@dataclass(frozen=True)
class QuizPoll:
    """A single-choice question that fits a Telegram quiz poll (plain text, within its limits)."""

    question: str
    options: tuple[str, ...]
    correct: int
    explanation: str


@dataclass(frozen=True)
class Say:
    """A message. ``anchor`` names it so that a later ``Edit`` can change it (question messages).

    ``poll``: the same question as a native quiz poll, for renderers that have one (answers come back
    as ``Press("pick", index, seq)``).
    """

    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    anchor: str | None = None
    seq: int = 0  # the state version buttons are made for
    poll: QuizPoll | None = None


@dataclass(frozen=True)
class Edit:
    """Change an anchored message (e.g. show the chosen answer and drop its keyboard).

    ``note``: what the learner is told about it (the verdict and feedback on an answer). A chat shows it
    under the edited message, in the same message when it fits; a terminal, which cannot edit what has
    scrolled by, prints it."""

    anchor: str
    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    seq: int = 0
    note: str = ""


@dataclass(frozen=True)
class Photo:
    """A picture: a file shipped with the content (``path``), or PNG bytes a lesson's code drew in the
    sandbox (``data``: checked there to be a small PNG, never decoded by the bot)."""

    path: str
    caption: str = ""
    data: bytes = b""


@dataclass(frozen=True)
class GraphView:
    """An autograd graph (the sandbox's JSON, see ``dialogs.graph``): a picture where the renderer can
    draw one, else ``tree`` (text) with ``no_picture`` in front. ``caption`` is short markup (≤ 1024)."""

    graph: dict[str, Any]
    caption: str
    tree: str
    no_picture: str = ""
    saved_as: str = ""  # "{path}" template for a renderer that saves the picture (terminal)


Reply = Say | Edit | Photo | GraphView

# -------------------------------------------------------------------------------------------- effects


@dataclass(frozen=True)
class LogAnswer:
    step: str
    answer: str
    verdict: str  # "right", "partial", "wrong", "revealed", "error"...
    correct: bool
    tags: tuple[str, ...] = ()
    section: str | None = None  # the step's section (a quiz asks questions of other sections)


@dataclass(frozen=True)
class LogReview:
    """A flashcard was rated; ``record`` is fsrs's review log (card id, rating, time)."""

    card: str
    rating: int
    record: dict[str, Any]


@dataclass(frozen=True)
class Evaluate:
    """Run ``code`` in the sandbox. With ``graph`` set (a variable name, or ``""`` for the last tensor
    assigned) it is a graph request: the sandbox reads the autograd graph instead of running checks,
    and the result may be cached by (code, graph) when ``cacheable`` (lesson code). With ``pictures``
    it asks for the pictures the code draws instead (a lesson step with ``picture: true``)."""

    request: str
    code: str
    checks: tuple[CheckSpec, ...]
    graph: str | None = None
    cacheable: bool = False
    pictures: bool = False  # bring back the pictures the code draws (``Sandbox.pictures``), no checks


@dataclass(frozen=True)
class SectionDone:
    section: str


@dataclass(frozen=True)
class Quit:
    """The learner asked to leave (terminal)."""


Effect = LogAnswer | LogReview | Evaluate | SectionDone | Quit


@dataclass(frozen=True)
class Turn:
    """What one event did: the new state, what to show, what to do.

    ``toast``: a short note for the tapped button itself (Telegram shows it over the chat), ``""`` for
    none. ``keyboard_stale``: after a button press, whether the keyboard it was on belongs to the past
    now (the shell takes it away, unless a reply of this turn edited that message)."""

    state: Any  # LearnerState (kept Any here to avoid an import cycle)
    replies: tuple[Reply, ...] = ()
    effects: tuple[Effect, ...] = field(default_factory=tuple)
    toast: str = ""
    keyboard_stale: bool = False

"""The learner's state: one small, versioned, JSON-serialisable record."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from dialogs.migrations.card_ids import CARD_IDS

STATE_VERSION = 2
TUPLES = ("selected", "judged", "done_sections", "recent", "quiz_asked", "trail", "skipped", "ask_hits")

Phase = Literal[
    "new",  # never greeted
    "map",  # the course map was shown; waiting for "go"
    "explain",  # an explanation is on screen; waiting for "go"
    "question",  # a question is asked; waiting for an answer
    "retry",  # a wrong answer; waiting for another try or "show me"
    "evaluating",  # code sent to the sandbox; waiting for its result
    "section_end",  # the section's flashcards are on screen; waiting for "go"
    "done",  # the course is finished
]


@dataclass(frozen=True)
class LearnerState:
    version: int = STATE_VERSION
    lang: str = "en"
    lang_chosen: bool = False
    phase: Phase = "new"
    section: str | None = None
    step: str | None = None
    seq: int = 0  # bumped on every change of step/phase: buttons carry it (stale button check)
    attempts: int = 0  # wrong attempts at the current question
    hints: int = 0  # hints shown for the current question
    selected: tuple[int, ...] = ()  # options toggled so far (multi-select buttons)
    judged: tuple[int, ...] = ()  # statements judged one by one so far: -1 unknown, 0 false, 1 true
    done_sections: tuple[str, ...] = ()
    recent: tuple[str, ...] = ()  # step ids completed since the last recap
    pending: str | None = None  # evaluation request id we are waiting for
    confirm_reset: bool = False
    evals: int = 0  # counter used to make evaluation request ids
    said: dict[str, int] = field(default_factory=dict)  # UI key -> variant said last (none twice in a row)
    trail: tuple[str, ...] = ()  # where the learner was before each move ("phase|section|step"), for /back
    skipped: tuple[str, ...] = ()  # sections passed over with /skip (not done)
    ask_hits: tuple[str, ...] = ()  # the passages (step/card ids) of the last free answer: /goto 1..3

    # Reviews: flashcards and quizzes run "beside" the course; the course position is kept in `saved`.
    mode: Literal["course", "cards", "quiz"] = "course"
    saved: dict[str, Any] | None = None
    deck: dict[str, dict[str, Any]] = field(default_factory=dict)  # card id -> fsrs card record
    card: str | None = None  # the card under review
    card_shown: bool = False  # its answer is revealed
    quiz_left: int = 0  # questions still to ask after the current one
    quiz_asked: tuple[str, ...] = ()  # recently asked quiz questions (no repeats in a row)
    quiz_total: int = 0  # questions in the quiz under way (its "i/n" header and summary)
    quiz_right: int = 0  # of them, answered right at the first try so far
    mastery: dict[str, list[int]] = field(default_factory=dict)  # concept tag -> [right, total]

    # Daily rhythm (local time of the learner)
    tz: str = "UTC"
    push_time: str = "19:00"
    paused: bool = False
    daily_max: int = 20
    reviews_day: str | None = None  # local date (ISO) of reviews_today
    reviews_today: int = 0
    streak: int = 0
    best_streak: int = 0
    last_day: str | None = None  # local date (ISO) of the last activity
    push_due: str | None = None  # UTC instant (ISO) of the next daily push; None: no push planned

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in TUPLES:
            data[key] = list(data[key])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LearnerState:
        data = migrate(dict(data))
        known = {f for f in cls.__dataclass_fields__}
        clean = {k: v for k, v in data.items() if k in known}
        for key in TUPLES:
            if key in clean:
                clean[key] = tuple(clean[key])
        return cls(**clean)

    def moved(self, **changes: Any) -> LearnerState:
        """A new state at a new version (old buttons become stale)."""
        return replace(self, seq=self.seq + 1, **changes)

    def but(self, **changes: Any) -> LearnerState:
        return replace(self, **changes)


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Bring an older stored state up to STATE_VERSION (one entry per version bump)."""
    version = int(data.get("version", 1))
    if version > STATE_VERSION:
        raise ValueError(f"state version {version} is newer than this program ({STATE_VERSION})")
    # Step/section id renames go here as {old: new} maps, e.g. RENAMED_STEPS = {...}.
    if version < 2:
        data = _cards_by_yaml_id(data)
    data["version"] = STATE_VERSION
    return data


#: What a review (flashcards, quiz) saves of the course position, to put it back afterwards.
COURSE_FIELDS = ("phase", "section", "step", "recent", "attempts", "hints", "selected", "judged")


def _cards_by_yaml_id(data: dict[str, Any]) -> dict[str, Any]:
    """Version 2 (issue 11): flashcards are keyed by their YAML id, not ``<section id>#<index>``.

    The deck keeps every FSRS record, under the card's new id (the fixed table ``CARD_IDS``); an id
    the table does not know (a card deleted since) is dropped. The card under review is renamed too;
    when it is gone, the review ends as if the learner had left it: back to the saved course position.
    """
    deck = data.get("deck") or {}
    data["deck"] = {CARD_IDS[cid]: record for cid, record in deck.items() if cid in CARD_IDS}
    card = data.get("card")
    if card in CARD_IDS:
        data["card"] = CARD_IDS[card]
    elif card is not None:
        data.update(card=None, card_shown=False)
        if data.get("mode") == "cards":
            saved = data.get("saved") or {}
            data.update({k: v for k, v in saved.items() if k in COURSE_FIELDS}, mode="course", saved=None)
            data["seq"] = int(data.get("seq", 0)) + 1  # its buttons are stale now
    return data

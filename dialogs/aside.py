"""Reviews (flashcards, quizzes) run beside the course: entering one keeps the course position in
``state.saved``; leaving puts it back and shows the lesson again."""

from __future__ import annotations

from dialogs.context import Host, Out
from dialogs.state import COURSE_FIELDS, LearnerState


def save(s: LearnerState) -> LearnerState:
    """Enter a review: keep the course position (once)."""
    if s.mode != "course":
        return s
    return s.but(saved={k: getattr(s, k) for k in COURSE_FIELDS})


def back(s: LearnerState) -> LearnerState:
    """Leave a review: the course position as it was (nothing said)."""
    saved = dict(s.saved or {})
    for key in ("recent", "selected", "judged"):
        saved[key] = tuple(saved.get(key, ()))
    return s.moved(mode="course", saved=None, card=None, card_shown=False, quiz_left=0, **saved)


def restore(host: Host, s: LearnerState, out: Out, note: str) -> LearnerState:
    """Leave a review with a note (``note`` is a UI key) and show the lesson again."""
    s = back(s)
    if s.phase in ("new", "done"):
        out.say(host.t(s, note))
        return s
    out.say(host.t(s, note) + ("" if s.lang == "zh" else " ") + host.t(s, "back_to_lesson"))
    return host.resend(s, out)

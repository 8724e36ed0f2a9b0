"""Tables. The learner's state is a versioned JSON blob plus a few indexed columns."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class Learner(SQLModel, table=True):
    id: str = Field(primary_key=True)  # "tg:<chat id>" or "console:<name>"
    chat_id: int | None = Field(default=None, index=True)
    lang: str = "en"
    section: str | None = Field(default=None, index=True)
    step: str | None = None
    state: str  # LearnerState.to_dict() as JSON
    state_version: int = 1
    active: bool = Field(default=True, index=True)
    push_due: datetime | None = Field(default=None, index=True)  # when the daily push is next due
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class AnswerLog(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    learner_id: str = Field(index=True)
    at: datetime = Field(default_factory=utcnow)
    section: str | None = None
    step: str
    answer: str
    verdict: str
    correct: bool
    tags: str = ""  # comma-separated concept tags


class ReviewLog(SQLModel, table=True):
    """One flashcard rating (fsrs's review log)."""

    id: int | None = Field(default=None, primary_key=True)
    learner_id: str = Field(index=True)
    at: datetime = Field(default_factory=utcnow)
    card: str
    rating: int


class ProcessedUpdate(SQLModel, table=True):
    """Telegram update ids already applied: a redelivered update is not applied twice."""

    update_id: int = Field(primary_key=True)
    learner_id: str
    at: datetime = Field(default_factory=utcnow)


class MessageAnchor(SQLModel, table=True):
    """Which sent message carries an anchored reply (so a later Edit finds it after a restart)."""

    learner_id: str = Field(primary_key=True)
    anchor: str = Field(primary_key=True)
    message_id: int


class PollRef(SQLModel, table=True):
    """A quiz poll we sent: a poll answer carries only the poll's id, this finds the learner."""

    poll_id: str = Field(primary_key=True)
    learner_id: str
    chat_id: int
    seq: int

"""Tables. The learner's state is a versioned JSON blob plus a few indexed columns.

The schema is made and changed by the Alembic migrations in ``bot/storage/migrations`` (never by
``create_all``); a test checks that the migrated schema is exactly this one. Telegram's ids (chats,
updates, messages) are 64-bit: ``BigInteger`` (PostgreSQL's ``integer`` has 32 bits; SQLite's has 64).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, Index
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class Learner(SQLModel, table=True):
    id: str = Field(primary_key=True)  # "tg:<chat id>" or "console:<name>"
    chat_id: int | None = Field(default=None, index=True, sa_type=BigInteger)
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

    update_id: int = Field(primary_key=True, sa_type=BigInteger)
    learner_id: str
    at: datetime = Field(default_factory=utcnow)


class MessageAnchor(SQLModel, table=True):
    """Which sent message carries an anchored reply (so a later Edit finds it after a restart)."""

    learner_id: str = Field(primary_key=True)
    anchor: str = Field(primary_key=True)
    message_id: int = Field(sa_type=BigInteger)


class PollRef(SQLModel, table=True):
    """A quiz poll we sent: a poll answer carries only the poll's id, this finds the learner."""

    poll_id: str = Field(primary_key=True)
    learner_id: str
    chat_id: int = Field(sa_type=BigInteger)
    seq: int


class InboxUpdate(SQLModel, table=True):
    """A Telegram update, written (and committed) before Telegram is told we have it.

    ``status``: ``new`` (to handle), ``done`` (handled: its turn, its replies and this mark were one
    transaction), ``bad`` (the library could not read it: kept with its raw body, skipped),
    ``failed`` (its handler raised; the learner got an apology). ``chat_id`` orders the work: one chat's
    updates are handled one at a time, in ``update_id`` order.
    """

    __tablename__ = "inbox"
    __table_args__ = (Index("ix_inbox_status_chat", "status", "chat_id", "update_id"),)

    update_id: int = Field(primary_key=True, sa_type=BigInteger)
    chat_id: int | None = Field(default=None, sa_type=BigInteger)
    body: str  # the update's JSON exactly as Telegram sent it
    received_at: datetime = Field(default_factory=utcnow)
    status: str = "new"
    done_at: datetime | None = None
    error: str | None = None


class OutboxMessage(SQLModel, table=True):
    """One Bot API call to make (a reply, an edit, a callback answer...), stored in the same transaction as
    the turn that produced it and sent by ``bot.telegram.sender`` afterwards.

    ``status``: ``pending`` -> ``sent``; ``unknown`` (the request may or may not have been carried out
    and is not repeated), ``failed`` (Telegram refused it), ``expired`` (a callback answer refused: answered
    before a restart, or too old), ``dropped`` (the learner blocked the bot).
    ``attempts`` counts requests started: a ``pending`` row with attempts > 0 after a restart was in
    flight when the process died. ``progress``: chunks already sent of a message split in several.
    ``message_id``: the message it sent or edited. ``claimed_until``: a sender (this process, or
    ``push --now`` beside it) holds the row while it calls; a serving bot frees every claim at start-up
    (what a dead process held).
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_chat", "status", "chat_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    chat_id: int = Field(sa_type=BigInteger)
    learner_id: str | None = None
    origin: int | None = Field(default=None, index=True, sa_type=BigInteger)  # the update answered (None: a push)
    kind: str  # say | edit | photo | graph | answer | unkeyboard | text
    payload: str  # JSON
    status: str = "pending"
    attempts: int = 0
    progress: int = 0
    message_id: int | None = Field(default=None, sa_type=BigInteger)
    not_before: datetime | None = None
    claimed_until: datetime | None = None  # a sender is making its call (another one keeps off until then)
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    error: str | None = None


class RunningEval(SQLModel, table=True):
    """A sandbox run a turn asked for and whose result is not stored yet. Rows left at start-up belong to
    a process that died: the learner is told it was interrupted."""

    __tablename__ = "running_eval"

    request: str = Field(primary_key=True)
    learner_id: str = Field(index=True)
    chat_id: int | None = Field(default=None, sa_type=BigInteger)
    origin: int | None = Field(default=None, sa_type=BigInteger)
    started_at: datetime = Field(default_factory=utcnow)

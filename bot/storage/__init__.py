"""Persistence: sqlmodel tables and a small repository (SQLite by default, any SQLAlchemy URL)."""

from bot.storage.models import (
    AnswerLog,
    InboxUpdate,
    Learner,
    MessageAnchor,
    OutboxMessage,
    PollRef,
    ProcessedUpdate,
    ReviewLog,
    RunningEval,
)
from bot.storage.repo import Incoming, Outgoing, Repository

__all__ = [
    "AnswerLog",
    "InboxUpdate",
    "Incoming",
    "Learner",
    "MessageAnchor",
    "OutboxMessage",
    "Outgoing",
    "PollRef",
    "ProcessedUpdate",
    "Repository",
    "ReviewLog",
    "RunningEval",
]

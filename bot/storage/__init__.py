"""Persistence: sqlmodel tables and a small repository (SQLite by default, any SQLAlchemy URL)."""

from bot.storage.models import AnswerLog, Learner, MessageAnchor, PollRef, ProcessedUpdate, ReviewLog
from bot.storage.repo import Repository

__all__ = ["AnswerLog", "Learner", "MessageAnchor", "PollRef", "ProcessedUpdate", "Repository", "ReviewLog"]

"""The repository: load a learner, apply one turn atomically, read the answer log."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, col, create_engine, select

from bot.storage.models import AnswerLog, Learner, ProcessedUpdate, ReviewLog, utcnow
from dialogs.messages import Effect, LogAnswer, LogReview
from dialogs.migrations.card_ids import CARD_IDS
from dialogs.state import LearnerState


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


class Repository:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        # SQLite has one writer at a time; queueing writers here is far cheaper than its busy-wait backoff.
        self._write = threading.Lock()  # SQLite writers of this process, one at a time
        SQLModel.metadata.create_all(self.engine)
        self._migrate_review_cards()

    def _migrate_review_cards(self) -> None:
        """Data migration (issue 11), run at start-up: review logs written before cards had YAML ids name
        them ``<section id>#<index>``; rename them with the fixed table ``CARD_IDS``, like learners'
        decks (``dialogs.state.migrate``).

        Idempotent and cheap once done: new ids have no ``#``, so later start-ups find nothing to do
        (one scan of the column), and processes starting together write the same values. A positional
        id the table does not know (a card deleted before the table was made) is kept as it was: the
        log is history. Schema changes are Alembic's; this only rewrites data.
        """
        with self._write, Session(self.engine) as db:
            card = col(ReviewLog.card)
            old = set(db.exec(select(card).where(card.contains("#")).distinct()))
            for cid in sorted(old & CARD_IDS.keys()):
                db.exec(update(ReviewLog).where(card == cid).values(card=CARD_IDS[cid]))
            db.commit()

    @property
    def write_lock(self) -> threading.Lock:
        """Held while writing (other writers of the same database in this process share it)."""
        return self._write

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------------------------ learners

    def load(self, learner_id: str) -> LearnerState | None:
        with Session(self.engine) as db:
            row = db.get(Learner, learner_id)
            return None if row is None else LearnerState.from_dict(json.loads(row.state))

    def learner(self, learner_id: str) -> Learner | None:
        with Session(self.engine) as db:
            return db.get(Learner, learner_id)

    def is_processed(self, update_id: int) -> bool:
        with Session(self.engine) as db:
            return db.get(ProcessedUpdate, update_id) is not None

    def save_turn(self, learner_id: str, state: LearnerState, effects: Iterable[Effect], now: datetime,
                  update_id: int | None = None, chat_id: int | None = None) -> bool:
        """Store the new state, the answer log and the update id in one transaction.

        Returns False (and changes nothing) when ``update_id`` was already applied.
        """
        with self._write, Session(self.engine) as db:
            if update_id is not None:
                if db.get(ProcessedUpdate, update_id) is not None:
                    return False
                db.add(ProcessedUpdate(update_id=update_id, learner_id=learner_id, at=now))
            row = db.get(Learner, learner_id)
            blob = json.dumps(state.to_dict(), ensure_ascii=False)
            if row is None:
                row = Learner(id=learner_id, chat_id=chat_id, state=blob, created_at=now)
            row.state = blob
            row.state_version = state.version
            row.lang = state.lang
            row.section = state.section
            row.step = state.step
            row.updated_at = now
            row.active = True
            row.push_due = datetime.fromisoformat(state.push_due) if state.push_due else None
            if chat_id is not None:
                row.chat_id = chat_id
            db.add(row)
            for eff in effects:
                if isinstance(eff, LogAnswer):
                    db.add(AnswerLog(learner_id=learner_id, at=now, section=state.section, step=eff.step,
                                     answer=eff.answer, verdict=eff.verdict, correct=eff.correct,
                                     tags=",".join(eff.tags)))
                elif isinstance(eff, LogReview):
                    db.add(ReviewLog(learner_id=learner_id, at=now, card=eff.card, rating=eff.rating))
            try:
                db.commit()
            except IntegrityError:  # a concurrent process applied the same update first
                db.rollback()
                return False
        return True

    def set_active(self, learner_id: str, active: bool) -> None:
        with self._write, Session(self.engine) as db:
            row = db.get(Learner, learner_id)
            if row is not None:
                row.active = active
                row.updated_at = utcnow()
                db.add(row)
                db.commit()

    def due_pushes(self, now: datetime, limit: int = 10_000) -> list[tuple[str, int]]:
        """(learner id, chat id) of active Telegram learners whose daily push is due at ``now``."""
        with Session(self.engine) as db:
            rows = db.exec(
                select(Learner.id, Learner.chat_id)
                .where(Learner.active, Learner.chat_id.is_not(None), Learner.push_due <= now)  # type: ignore[union-attr,operator]
                .order_by(col(Learner.push_due))
                .limit(limit)
            )
            return [(lid, int(cid)) for lid, cid in rows if cid is not None]

    def chats(self, active_only: bool = True) -> list[tuple[str, int]]:
        with Session(self.engine) as db:
            query = select(Learner.id, Learner.chat_id).where(Learner.chat_id.is_not(None))  # type: ignore[union-attr]
            if active_only:
                query = query.where(Learner.active)
            return [(lid, int(cid)) for lid, cid in db.exec(query) if cid is not None]

    def reviews(self, learner_id: str) -> list[ReviewLog]:
        with Session(self.engine) as db:
            return list(db.exec(select(ReviewLog).where(ReviewLog.learner_id == learner_id)
                                .order_by(col(ReviewLog.id))))

    def answers(self, learner_id: str) -> list[AnswerLog]:
        with Session(self.engine) as db:
            rows = db.exec(select(AnswerLog).where(AnswerLog.learner_id == learner_id).order_by(col(AnswerLog.id)))
            return list(rows)

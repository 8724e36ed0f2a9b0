"""The repository: load a learner, apply one turn atomically, read the answer log."""

from __future__ import annotations

import json
import threading
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, event, func, insert, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, col, create_engine, select

from bot.storage import schema
from bot.storage.models import (
    AnswerLog,
    InboxUpdate,
    Learner,
    OutboxMessage,
    ProcessedUpdate,
    ReviewLog,
    RunningEval,
    utcnow,
)
from dialogs.messages import Effect, Evaluate, LogAnswer, LogReview
from dialogs.migrations.card_ids import CARD_IDS
from dialogs.state import LearnerState


class StorageUnavailable(Exception):
    """The database cannot be opened at start-up: an unreachable server, a wrong URL, a failed migration."""


class _NoLock:
    """``with`` support and nothing else: the write lock where the database orders writers itself."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


@dataclass(frozen=True)
class Outgoing:
    """An outbox row to store with a turn: one Bot API call for ``chat_id`` (see ``OutboxMessage``)."""

    chat_id: int
    kind: str
    payload: dict[str, Any] = field(default_factory=dict)
    learner_id: str | None = None
    origin: int | None = None

    def values(self, now: datetime) -> dict[str, Any]:
        """The row's columns (inserted with SQLAlchemy Core: many per turn, no ORM object needed)."""
        return {"chat_id": self.chat_id, "learner_id": self.learner_id, "origin": self.origin, "kind": self.kind,
                "payload": json.dumps(self.payload, ensure_ascii=False), "status": "pending", "attempts": 0,
                "progress": 0, "created_at": now}


def _insert_outbox(db: Session, outbox: Sequence[Outgoing]) -> None:
    if outbox:
        now = utcnow()  # real time, not the tutor's clock: the sender paces by it
        db.exec(insert(OutboxMessage), params=[out.values(now) for out in outbox])


@dataclass(frozen=True)
class Incoming:
    """An update as received: its id, the chat that orders it (None: no chat), its raw JSON, and
    ``new`` or ``bad`` (the library cannot read it)."""

    update_id: int
    chat_id: int | None
    body: str
    status: str = "new"
    error: str | None = None


@dataclass(frozen=True)
class Pool:
    """Connections to a database server (PostgreSQL): at most ``size + overflow`` at once; a request waits
    ``timeout`` seconds for one, then fails (the learner is asked to try again)."""

    size: int = 5
    overflow: int = 10
    timeout: float = 10.0
    connect_timeout: int = 5


def make_engine(url: str, pool: Pool = Pool()) -> Engine:
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    connect_args: dict[str, Any] = {}
    if url.startswith("postgresql"):
        # times are stored as naive UTC (as on SQLite): the session's zone must not shift them
        connect_args = {"options": "-c timezone=UTC", "connect_timeout": pool.connect_timeout}
    return create_engine(url, pool_pre_ping=True, pool_size=pool.size, max_overflow=pool.overflow,
                         pool_timeout=pool.timeout, connect_args=connect_args)


class Repository:
    def __init__(self, url: str, pool: Pool = Pool()) -> None:
        self.url = url
        self.engine = make_engine(url, pool)
        self.safe_url = self.engine.url.render_as_string(hide_password=True)  # for logs
        self._sqlite = url.startswith("sqlite")
        # SQLite has one writer at a time; queueing writers here is far cheaper than its busy-wait backoff.
        # A database server takes concurrent writers: no lock of ours (a lock that is never contended).
        self._write: Any = threading.Lock() if self._sqlite else _NoLock()
        try:
            self.schema = schema.upgrade(self.engine)  # (revision before, after): pending migrations run now
        except OperationalError as exc:
            self.engine.dispose()
            reason = str(exc.orig or exc).strip().splitlines()[0][:300]
            raise StorageUnavailable(f"cannot open the database at {self.safe_url}: {reason}") from exc
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

    def _insert_new(self, table: Any, key: str) -> Any:
        """``INSERT`` that skips rows whose ``key`` is taken (SQLite and PostgreSQL both say it this way)."""
        if self._sqlite:
            return sqlite_insert(table).on_conflict_do_nothing(index_elements=[key])
        return postgresql_insert(table).on_conflict_do_nothing(index_elements=[key])

    @property
    def write_lock(self) -> Any:
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
                  update_id: int | None = None, chat_id: int | None = None, *,
                  outbox: Sequence[Outgoing] = (), finished: str | None = None, origin: int | None = None) -> bool:
        """Store, in one transaction: the new state, the answer and review logs, the update as applied
        (``update_id``: its inbox row is marked done), the replies to send (``outbox``), the sandbox runs the
        turn starts (``Evaluate`` effects) and the end of the run whose result this turn is (``finished``).

        Returns False (and changes nothing) when ``update_id`` was already applied.
        """
        with self._write, Session(self.engine) as db:
            if update_id is not None:
                if db.get(ProcessedUpdate, update_id) is not None:
                    return False
                db.add(ProcessedUpdate(update_id=update_id, learner_id=learner_id, at=now))
                db.exec(update(InboxUpdate).where(col(InboxUpdate.update_id) == update_id)
                        .values(status="done", done_at=now))
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
            origin = update_id if origin is None else origin
            for eff in effects:
                if isinstance(eff, LogAnswer):
                    db.add(AnswerLog(learner_id=learner_id, at=now, section=eff.section, step=eff.step,
                                     answer=eff.answer, verdict=eff.verdict, correct=eff.correct,
                                     tags=",".join(eff.tags)))
                elif isinstance(eff, LogReview):
                    db.add(ReviewLog(learner_id=learner_id, at=now, card=eff.card, rating=eff.rating))
                elif isinstance(eff, Evaluate) and eff.request != finished:
                    db.merge(RunningEval(request=eff.request, learner_id=learner_id, chat_id=row.chat_id,
                                         origin=origin, started_at=now))
            if finished is not None:
                db.exec(delete(RunningEval).where(col(RunningEval.request) == finished))
            _insert_outbox(db, outbox)
            try:
                db.commit()
            except IntegrityError:  # a concurrent process applied the same update first
                db.rollback()
                return False
        return True

    def enqueue(self, outbox: Sequence[Outgoing]) -> None:
        """Store replies that belong to no turn (a "your code is queued" note, an apology...)."""
        if not outbox:
            return
        with self._write, Session(self.engine) as db:
            _insert_outbox(db, outbox)
            db.commit()

    # ------------------------------------------------------------------------------------ the inbox

    def ingest(self, updates: Sequence[Incoming], now: datetime | None = None) -> int:
        """Store updates not seen before (a redelivered id is ignored), durably: the commit is synced to
        disk (SQLite: ``synchronous=FULL`` for this commit) before the caller confirms them to Telegram.
        Returns how many were new."""
        if not updates:
            return 0
        now = now or utcnow()
        ids = [u.update_id for u in updates]
        with self._write, Session(self.engine) as db:
            if self._sqlite:
                db.exec(text("PRAGMA synchronous=FULL"))  # type: ignore[call-overload]
            try:
                seen = set(db.exec(select(InboxUpdate.update_id).where(col(InboxUpdate.update_id).in_(ids))))
                fresh = {u.update_id: u for u in updates if u.update_id not in seen}
                stored = 0
                if fresh:
                    # another process may store the same ids meanwhile: theirs stand, ours are skipped
                    rows = [{"update_id": u.update_id, "chat_id": u.chat_id, "body": u.body, "received_at": now,
                             "status": u.status, "error": u.error, "done_at": now if u.status != "new" else None}
                            for u in fresh.values()]
                    insert_new = self._insert_new(InboxUpdate, "update_id").returning(col(InboxUpdate.update_id))
                    stored = len(db.connection().execute(insert_new, rows).all())
                db.commit()
            finally:
                if self._sqlite:
                    db.exec(text("PRAGMA synchronous=NORMAL"))  # type: ignore[call-overload]
        return stored

    def inbox_heads(self, busy: Collection[int | None], limit: int) -> list[int | None]:
        """Chats with updates to handle, none of ``busy``, those waiting longest first (None: updates of
        no chat)."""
        with Session(self.engine) as db:
            first = func.min(InboxUpdate.update_id)
            query = (select(InboxUpdate.chat_id, first).where(InboxUpdate.status == "new")
                     .group_by(col(InboxUpdate.chat_id)).order_by(first).limit(limit + len(busy)))
            heads = [chat for chat, _ in db.exec(query) if chat not in busy]
            return heads[:limit]

    def next_update(self, chat_id: int | None) -> tuple[int, str] | None:
        """The oldest update of this chat still to handle: (update id, raw JSON)."""
        with Session(self.engine) as db:
            chat = col(InboxUpdate.chat_id)
            query = (select(InboxUpdate.update_id, InboxUpdate.body)
                     .where(InboxUpdate.status == "new", chat.is_(None) if chat_id is None else chat == chat_id)
                     .order_by(col(InboxUpdate.update_id)).limit(1))
            found = db.exec(query).first()
            return None if found is None else (int(found[0]), str(found[1]))

    def finish_update(self, update_id: int, status: str = "done", error: str | None = None,
                      outbox: Sequence[Outgoing] = ()) -> None:
        """Mark a handled update (if its turn did not already) and store what it still has to send."""
        now = utcnow()
        with self._write, Session(self.engine) as db:
            db.exec(update(InboxUpdate).where(col(InboxUpdate.update_id) == update_id, col(InboxUpdate.status) == "new")
                    .values(status=status, error=error, done_at=now))
            _insert_outbox(db, outbox)
            db.commit()

    def inbox_counts(self) -> dict[str, int]:
        with Session(self.engine) as db:
            rows = db.exec(select(InboxUpdate.status, func.count()).group_by(col(InboxUpdate.status)))
            return {status: int(n) for status, n in rows}

    def last_update_id(self) -> int | None:
        with Session(self.engine) as db:
            found = db.exec(select(func.max(InboxUpdate.update_id))).first()
            return None if found is None else int(found)

    def inbox_row(self, update_id: int) -> InboxUpdate | None:
        with Session(self.engine) as db:
            return db.get(InboxUpdate, update_id)

    # ------------------------------------------------------------------------------------ the outbox

    def outbox_heads(self, busy: Collection[int], limit: int, now: datetime) -> list[int]:
        """Chats with messages due to send, none of ``busy``, oldest first (callback answers excluded:
        ``pending_answers``)."""
        with Session(self.engine) as db:
            first = func.min(OutboxMessage.id)
            due = (col(OutboxMessage.not_before).is_(None)) | (col(OutboxMessage.not_before) <= now)
            free = col(OutboxMessage.claimed_until).is_(None) | (col(OutboxMessage.claimed_until) < now)
            query = (select(OutboxMessage.chat_id, first)
                     .where(OutboxMessage.status == "pending", OutboxMessage.kind != "answer", due, free)
                     .group_by(col(OutboxMessage.chat_id)).order_by(first).limit(limit + len(busy)))
            heads = [int(chat) for chat, _ in db.exec(query) if chat not in busy]
            return heads[:limit]

    @staticmethod
    def _head(chat_id: int) -> Any:
        """The oldest message of a chat still to send (callback answers go on their own)."""
        return (select(OutboxMessage)
                .where(OutboxMessage.status == "pending", OutboxMessage.kind != "answer",
                       OutboxMessage.chat_id == chat_id)
                .order_by(col(OutboxMessage.id)).limit(1))

    def next_outbox(self, chat_id: int) -> OutboxMessage | None:
        """The oldest message of this chat still to send (in order: a later one waits for it)."""
        with Session(self.engine) as db:
            return db.exec(self._head(chat_id)).first()

    def claim_next(self, chat_id: int, now: datetime, lease: float = 120.0) -> OutboxMessage | None:
        """Take the oldest message of this chat still to send (``claim``), in one transaction. None when
        there is none, or it waits for a retry, or another sender holds it: the chat's later rows wait too."""
        with self._write, Session(self.engine) as db:
            row = self._claim_head(db, chat_id, now, lease)
            db.commit()
            return row

    def sent_and_claim_next(self, row_id: int, message_id: int | None, chat_id: int, now: datetime,
                            lease: float = 120.0) -> OutboxMessage | None:
        """Mark a row sent and take the chat's next one, in one transaction (the common case: one commit
        per message instead of two)."""
        with self._write, Session(self.engine) as db:
            db.exec(update(OutboxMessage).where(col(OutboxMessage.id) == row_id)
                    .values(status="sent", sent_at=now, claimed_until=None, message_id=message_id))
            row = self._claim_head(db, chat_id, now, lease)
            db.commit()
            return row

    def _claim_head(self, db: Session, chat_id: int, now: datetime, lease: float) -> OutboxMessage | None:
        row = db.exec(self._head(chat_id)).first()
        if row is None or (row.not_before is not None and row.not_before.replace(tzinfo=UTC) > now):
            return None
        if row.claimed_until is not None and row.claimed_until.replace(tzinfo=UTC) >= now:
            return None
        db.expunge(row)
        db.exec(update(OutboxMessage).where(col(OutboxMessage.id) == row.id)
                .values(attempts=OutboxMessage.attempts + 1, claimed_until=now + timedelta(seconds=lease)))
        return row

    def pending_answers(self, busy: Collection[int], limit: int, now: datetime,
                        stored_before: datetime | None = None) -> list[OutboxMessage]:
        """Callback answers to send (they wait for nothing), stored before ``stored_before`` (younger ones are
        being answered right away)."""
        with Session(self.engine) as db:
            due = (col(OutboxMessage.not_before).is_(None)) | (col(OutboxMessage.not_before) <= now)
            free = col(OutboxMessage.claimed_until).is_(None) | (col(OutboxMessage.claimed_until) < now)
            query = (select(OutboxMessage)
                     .where(OutboxMessage.status == "pending", OutboxMessage.kind == "answer", due, free)
                     .order_by(col(OutboxMessage.id)).limit(limit + len(busy)))
            if stored_before is not None:
                query = query.where(col(OutboxMessage.created_at) < stored_before)
            return [row for row in db.exec(query) if row.id not in busy][:limit]

    def outbox_update(self, row_id: int, **values: Any) -> None:
        """Change one outbox row (``attempts``, ``status``, ``progress``, ``message_id``, ``not_before``...)."""
        with self._write, Session(self.engine) as db:
            db.exec(update(OutboxMessage).where(col(OutboxMessage.id) == row_id).values(**values))
            db.commit()

    def claim(self, row_id: int, now: datetime, lease: float = 120.0) -> bool:
        """Take a row to send (counting the attempt): False when it is sent, or another sender holds it.
        From here on a crash leaves its fate unknown."""
        with self._write, Session(self.engine) as db:
            free = col(OutboxMessage.claimed_until).is_(None) | (col(OutboxMessage.claimed_until) < now)
            result = db.exec(update(OutboxMessage)
                             .where(col(OutboxMessage.id) == row_id, col(OutboxMessage.status) == "pending", free)
                             .values(attempts=OutboxMessage.attempts + 1,
                                     claimed_until=now + timedelta(seconds=lease)))
            db.commit()
            return bool(result.rowcount)

    def release_claims(self) -> int:
        """A serving bot starts: the claims in the outbox were a dead process's."""
        with self._write, Session(self.engine) as db:
            result = db.exec(update(OutboxMessage).where(col(OutboxMessage.claimed_until).is_not(None))
                             .values(claimed_until=None))
            db.commit()
            return int(result.rowcount or 0)

    def answer_done(self, query_id: str, origin: int | None, status: str, error: str | None = None) -> None:
        """The fast path answered (or was refused) a tap: its pending answer row is settled."""
        with self._write, Session(self.engine) as db:
            rows = db.exec(select(OutboxMessage).where(OutboxMessage.kind == "answer", OutboxMessage.origin == origin,
                                                       OutboxMessage.status == "pending"))
            for row in rows:
                if json.loads(row.payload).get("query_id") == query_id:
                    row.status, row.error, row.sent_at = status, error, utcnow()
                    db.add(row)
            db.commit()

    def drop_outbox(self, chat_id: int, reason: str) -> int:
        """The learner blocked the bot: nothing more is sent to them."""
        with self._write, Session(self.engine) as db:
            result = db.exec(update(OutboxMessage)
                             .where(col(OutboxMessage.chat_id) == chat_id, col(OutboxMessage.status) == "pending")
                             .values(status="dropped", error=reason))
            db.commit()
            return int(result.rowcount or 0)

    def edited_by(self, origin: int | None, message_id: int) -> bool:
        """Did a reply to the same update edit this message (so its keyboard is the new one)?"""
        if origin is None:
            return False
        with Session(self.engine) as db:
            query = select(OutboxMessage.id).where(OutboxMessage.origin == origin, OutboxMessage.kind == "edit",
                                                   OutboxMessage.message_id == message_id,
                                                   OutboxMessage.status == "sent")
            return db.exec(query).first() is not None

    def outbox_counts(self) -> dict[str, int]:
        with Session(self.engine) as db:
            rows = db.exec(select(OutboxMessage.status, func.count()).group_by(col(OutboxMessage.status)))
            return {status: int(n) for status, n in rows}

    def in_flight(self) -> list[OutboxMessage]:
        """Rows a dead process had started to send (pending, attempts > 0): their fate is unknown."""
        with Session(self.engine) as db:
            return list(db.exec(select(OutboxMessage).where(OutboxMessage.status == "pending",
                                                            OutboxMessage.attempts > 0)))

    # ------------------------------------------------------------------------------------ runs, upkeep

    def running_evals(self) -> list[RunningEval]:
        with Session(self.engine) as db:
            return list(db.exec(select(RunningEval).order_by(col(RunningEval.started_at))))

    def forget_run(self, request: str) -> None:
        with self._write, Session(self.engine) as db:
            db.exec(delete(RunningEval).where(col(RunningEval.request) == request))
            db.commit()

    def settled(self, update_ids: Collection[int]) -> bool:
        """Are these updates handled, with everything they caused sent (runs included)?"""
        ids = list(update_ids)
        with Session(self.engine) as db:
            handled = db.exec(select(func.count()).select_from(InboxUpdate)
                              .where(col(InboxUpdate.update_id).in_(ids), InboxUpdate.status != "new")).one()
            if handled < len(set(ids)):
                return False
            sending = db.exec(select(OutboxMessage.id).where(col(OutboxMessage.origin).in_(ids),
                                                             OutboxMessage.status == "pending")).first()
            running = db.exec(select(RunningEval.request).where(col(RunningEval.origin).in_(ids))).first()
            return sending is None and running is None

    def prune(self, before: datetime) -> tuple[int, int]:
        """Forget handled updates (their inbox rows and applied ids) and finished outbox rows older than
        ``before``. Telegram keeps an unconfirmed update for 24 hours at most, so an id older than that can
        never come again."""
        with self._write, Session(self.engine) as db:
            inbox = db.exec(delete(InboxUpdate).where(col(InboxUpdate.status) != "new",
                                                      col(InboxUpdate.received_at) < before))
            db.exec(delete(ProcessedUpdate).where(col(ProcessedUpdate.at) < before))
            outbox = db.exec(delete(OutboxMessage).where(col(OutboxMessage.status) != "pending",
                                                         col(OutboxMessage.created_at) < before))
            db.commit()
            return int(inbox.rowcount or 0), int(outbox.rowcount or 0)

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

"""The repository on both databases (issue 15): SQLite (the default) and PostgreSQL (``db_url``).

- the schema is made by the Alembic migrations, and is exactly the models' schema;
- a database made by the landed version before migrations existed (``tests/fixtures/landed-v2.db``,
  made by ``make_landed_v2_db.py``; and issue 11's ``landed-v1.db``) is upgraded with nothing lost, and
  its learners resume where they were;
- Telegram's 64-bit ids, time zones, and two processes storing the same updates at once.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlmodel import SQLModel

from bot.content import default_content_dir, load_course
from bot.service import Tutor
from bot.storage import Incoming, Outgoing, Repository, schema
from dialogs.messages import Start
from dialogs.state import LearnerState
from tests.conftest import postgres_database
from tests.support.driver import Inbox

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TABLES = ("learner", "answerlog", "reviewlog", "processedupdate", "messageanchor", "pollref", "inbox", "outbox",
          "running_eval")
BIG_CHAT = 2**40 + 7  # Telegram's ids need more than 32 bits


def test_the_migrations_make_exactly_the_models_schema(db_url: str) -> None:
    repo = Repository(db_url)
    try:
        assert repo.schema == (None, schema.head())
        with repo.engine.connect() as db:
            context = MigrationContext.configure(db, opts={"compare_type": schema.compare_type})
            assert compare_metadata(context, SQLModel.metadata) == []
            assert set(inspect(db).get_table_names()) == {*TABLES, "alembic_version"}
    finally:
        repo.close()
    again = Repository(db_url)  # a second start-up finds nothing to do
    assert again.schema == (schema.head(), schema.head())
    again.close()


def rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(path) as db:
        present = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        return {t: sorted(db.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in TABLES if t in present}


@pytest.mark.parametrize(("fixture", "stamped"), [("landed-v2.db", "0002"), ("landed-v1.db", "0001")])
async def test_a_database_of_the_landed_version_upgrades_with_nothing_lost(tmp_path: Path, fixture: str,
                                                                           stamped: str) -> None:
    path = tmp_path / "tutor.db"
    shutil.copy(FIXTURES / fixture, path)
    before = rows(path)
    assert before["learner"] and before["answerlog"]
    repo = Repository(f"sqlite:///{path}")
    try:
        assert repo.schema == (stamped, schema.head())
        after = rows(path)
        for table, content in before.items():
            if table != "reviewlog":  # landed-v1's positional card ids are renamed (tests/test_card_ids.py)
                assert after[table] == content, table
        assert len(after["reviewlog"]) == len(before["reviewlog"])
        if fixture == "landed-v2.db":
            # the learners resume exactly where they were
            course = load_course(default_content_dir())
            for lid, section, step in [("tg:1001", "p3.ctx", "p3.ctx.order"),
                                       ("tg:1002", "p1.requires-grad", "p1.requires-grad.q-which-raises")]:
                state = repo.load(lid)
                assert state is not None and (state.section, state.step) == (section, step)
                inbox = Inbox()
                await Tutor(course, repo, None).handle(lid, Start(), inbox)
                assert "Welcome back" in inbox.text()
                assert repo.load(lid) is not None
            assert len(repo.answers("tg:1001")) == sum(1 for r in before["answerlog"] if r[1] == "tg:1001")
    finally:
        repo.close()


def test_big_telegram_ids_and_naive_utc_times(db_url: str) -> None:
    repo = Repository(db_url)
    try:
        if db_url.startswith("postgresql"):  # a server in another zone must not shift stored times
            with repo.engine.connect() as db:
                db.execute(text(f"ALTER DATABASE {repo.engine.url.database} SET timezone TO 'Asia/Shanghai'"))
                db.commit()
            repo.close()
            repo = Repository(db_url)
        due = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
        state = LearnerState(lang="en", push_due=due.isoformat())
        assert repo.save_turn("tg:big", state, [], due - timedelta(hours=1), update_id=BIG_CHAT + 1,
                              chat_id=BIG_CHAT, outbox=[Outgoing(BIG_CHAT, "say", {"text": "hi"}, origin=BIG_CHAT + 1)])
        assert repo.due_pushes(due - timedelta(seconds=1)) == []
        assert repo.due_pushes(due) == [("tg:big", BIG_CHAT)]
        assert repo.outbox_heads([], 5, due) == [BIG_CHAT]
        row = repo.claim_next(BIG_CHAT, due)
        assert row is not None and row.origin == BIG_CHAT + 1
        assert not repo.save_turn("tg:big", state, [], due, update_id=BIG_CHAT + 1)  # applied once
    finally:
        repo.close()


def test_two_processes_store_the_same_updates_once(db_url: str) -> None:
    """Two bot processes (two repositories) storing overlapping batches at the same moment."""
    first, second = Repository(db_url), Repository(db_url)
    batches = [[Incoming(i, i % 7, f'{{"update_id": {i}}}') for i in range(start, start + 60)] for start in (0, 30)]
    stored: list[int] = []
    errors: list[BaseException] = []
    gate = threading.Barrier(2)

    def ingest(repo: Repository, batch: list[Incoming]) -> None:
        try:
            gate.wait()
            stored.append(repo.ingest(batch))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ingest, args=(r, b)) for r, b in zip((first, second), batches, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert first.inbox_counts() == {"new": 90} and sum(stored) == 90
    finally:
        first.close()
        second.close()


def test_postgres_database_fixture_is_empty_and_dropped() -> None:
    with postgres_database() as url:
        engine = create_engine(url)
        with engine.connect() as db:
            assert inspect(db).get_table_names() == []
        engine.dispose()
    name = url.rsplit("/", 1)[1]
    admin = create_engine(url.rsplit("/", 1)[0] + "/postgres")
    with admin.connect() as db:
        assert db.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first() is None
    admin.dispose()


def test_an_unreachable_database_is_a_clear_message_without_the_password() -> None:
    from bot.storage.repo import StorageUnavailable

    with pytest.raises(StorageUnavailable) as caught:
        Repository("postgresql+psycopg://tutor:s3cret@127.0.0.1:1/tutor")
    message = str(caught.value)
    assert message.startswith("cannot open the database at postgresql+psycopg://tutor:***@127.0.0.1:1/tutor: ")
    assert "s3cret" not in message

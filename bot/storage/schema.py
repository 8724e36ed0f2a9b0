"""The database schema, made and changed by Alembic migrations (``bot/storage/migrations/versions``).

``upgrade(engine)`` runs at every start-up (``Repository``): a new database is created by the
migrations, an older one is brought to the newest revision, and one made before migrations existed
(no ``alembic_version`` table) is first stamped with the revision its tables show: ``0001`` without
an ``inbox`` table (issue 11's landed schema), ``0002`` with one (issue 12's). Nothing in it is lost:
migrations only add.

Processes starting together take turns: on PostgreSQL a transaction-level advisory lock is held
while migrating; on SQLite the migration's write transaction serialises them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import DateTime, TypeDecorator, inspect, text
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: pg_advisory_xact_lock key while migrating ("tutor" + 1, any constant shared by our processes).
MIGRATION_LOCK = 0x7475746F72_01


def compare_type(context: Any, inspected_column: Any, metadata_column: Any, inspected_type: Any,
                 metadata_type: Any) -> bool | None:
    """Alembic's type comparison, told about sqlmodel's ``UTCDateTime`` (a ``DateTime(timezone=True)``
    decorator): a ``timestamptz`` on PostgreSQL, any ``DATETIME`` on SQLite (which keeps no zone)."""
    if isinstance(metadata_type, TypeDecorator) and isinstance(metadata_type.impl_instance, DateTime):
        if not isinstance(inspected_type, DateTime):
            return True
        return context.dialect.name == "postgresql" and not inspected_type.timezone
    return None  # Alembic's own comparison


def config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    """The newest revision."""
    found = ScriptDirectory.from_config(config()).get_current_head()
    assert found is not None
    return found


def current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _before_migrations(connection: Connection) -> str | None:
    """The revision a database made before migrations existed is at (None: no tables of ours)."""
    tables = set(inspect(connection).get_table_names())
    if "alembic_version" in tables or "learner" not in tables:
        return None
    return "0002" if "inbox" in tables else "0001"


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the database to the newest revision; (revision before, revision after)."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        cfg = config(connection)
        stamped = _before_migrations(connection)
        if stamped is not None:
            command.stamp(cfg, stamped)
            log.info("database made before migrations: its tables are revision %s", stamped)
        before = current(connection)
        target = head()
        if before != target:
            command.upgrade(cfg, "head")
            log.info("database schema upgraded: %s -> %s", before or "empty", target)
    return before, target

"""Alembic's environment for the tutor's database: run by ``bot.storage.schema.upgrade`` on a connection
it holds (the URL comes from ``DATABASE_URL`` when run through the ``alembic`` command instead)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import bot.storage.models  # noqa: F401  (the tables, for comparisons and autogenerate)
from bot.storage.schema import compare_type

target_metadata = SQLModel.metadata


def run(connection: Connection) -> None:
    # render_as_batch: SQLite alters a table by copying it; Alembic's batch mode does that for us
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True,
                      compare_type=compare_type)
    with context.begin_transaction():
        context.run_migrations()


given = context.config.attributes.get("connection")
if given is not None:
    run(given)
else:
    from bot.config import Settings

    engine = create_engine(context.config.get_main_option("sqlalchemy.url") or Settings().db_url)
    with engine.connect() as connection:
        run(connection)

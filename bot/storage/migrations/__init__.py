"""Alembic migrations of the tutor's database (see ``bot.storage.schema``)."""

"""The tables before Alembic (issue 11's landed schema): learners, answer and review logs, applied
update ids, message anchors, quiz polls.

A database made before migrations existed holds exactly these when it has no ``inbox`` table; it is
stamped at this revision by ``bot.storage.schema`` and upgraded from here.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "learner",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=True),
        sa.Column("lang", sa.String(), nullable=False),
        sa.Column("section", sa.String(), nullable=True),
        sa.Column("step", sa.String(), nullable=True),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("state_version", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("push_due", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    for column in ("chat_id", "section", "push_due", "active"):
        op.create_index(f"ix_learner_{column}", "learner", [column])
    op.create_table(
        "answerlog",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("learner_id", sa.String(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("section", sa.String(), nullable=True),
        sa.Column("step", sa.String(), nullable=False),
        sa.Column("answer", sa.String(), nullable=False),
        sa.Column("verdict", sa.String(), nullable=False),
        sa.Column("correct", sa.Boolean(), nullable=False),
        sa.Column("tags", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_answerlog_learner_id", "answerlog", ["learner_id"])
    op.create_table(
        "reviewlog",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("learner_id", sa.String(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("card", sa.String(), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_reviewlog_learner_id", "reviewlog", ["learner_id"])
    op.create_table(
        "processedupdate",
        sa.Column("update_id", sa.BigInteger(), nullable=False),
        sa.Column("learner_id", sa.String(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("update_id"),
    )
    op.create_table(
        "messageanchor",
        sa.Column("learner_id", sa.String(), nullable=False),
        sa.Column("anchor", sa.String(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("learner_id", "anchor"),
    )
    op.create_table(
        "pollref",
        sa.Column("poll_id", sa.String(), nullable=False),
        sa.Column("learner_id", sa.String(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("poll_id"),
    )


def downgrade() -> None:
    for table in ("pollref", "messageanchor", "processedupdate", "reviewlog", "answerlog", "learner"):
        op.drop_table(table)

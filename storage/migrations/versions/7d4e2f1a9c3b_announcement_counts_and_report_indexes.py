"""announcement and team member counts kept by triggers, indexes the reports and lists read

Revision ID: 7d4e2f1a9c3b
Revises: 7c4e2b9d1f60
Create Date: 2026-12-08 01:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.announcement_counts import DROP_TRIGGERS, REBUILD, trigger_statements

revision: str = "7d4e2f1a9c3b"
down_revision: str | None = "7c4e2b9d1f60"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ANNOUNCED = sa.text("announcement_id IS NOT NULL")
# storage/models.py SUPPORTER_ACTIVITY, as of this revision.
_ACTIVITY = (
    "(CASE WHEN (last_attended_at > COALESCE(last_inbound_at, created_at))"
    " THEN last_attended_at ELSE COALESCE(last_inbound_at, created_at) END)"
)


def upgrade() -> None:
    op.create_table(
        "announcement_counts",
        sa.Column("announcement_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("segments", sa.Integer(), nullable=False),
        sa.Column("fallback", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["announcement_id"], ["announcements.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("announcement_id", "status", "channel"),
    )
    op.create_table(
        "announcement_count_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("announcement_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("segments", sa.Integer(), nullable=False),
        sa.Column("fallback", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_announcement_count_changes_announcement",
        "announcement_count_changes",
        ["announcement_id"],
    )
    op.create_index(
        "ix_messages_announcement_status",
        "messages",
        ["announcement_id", "status", "id"],
        sqlite_where=_ANNOUNCED,
        postgresql_where=_ANNOUNCED,
    )
    one_on_ones = sa.text("kind = 'one_on_one' AND direction = 'outbound'")
    op.create_index(
        "ix_messages_one_on_one",
        "messages",
        ["supporter_id", "created_at"],
        sqlite_where=one_on_ones,
        postgresql_where=one_on_ones,
    )
    op.create_index("ix_supporters_quiet", "supporters", ["opted_out", sa.text(_ACTIVITY), "id"])
    op.add_column(
        "teams", sa.Column("member_count", sa.Integer(), server_default="0", nullable=False)
    )
    # Backfill in set-based SQL, then keep counting from here on.
    for statement in REBUILD:
        op.execute(statement)
    for statement in trigger_statements(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    for statement in DROP_TRIGGERS[op.get_bind().dialect.name]:
        op.execute(statement)
    with op.batch_alter_table("teams") as batch_op:
        batch_op.drop_column("member_count")
    op.drop_index("ix_supporters_quiet", table_name="supporters")
    op.drop_index("ix_messages_one_on_one", table_name="messages")
    op.drop_index("ix_messages_announcement_status", table_name="messages")
    op.drop_index(
        "ix_announcement_count_changes_announcement", table_name="announcement_count_changes"
    )
    op.drop_table("announcement_count_changes")
    op.drop_table("announcement_counts")

"""GET /metrics totals kept by triggers (metric_counts, metric_count_changes)

Revision ID: b5e8d3a1c7f2
Revises: 5e8b1d4c7a92
Create Date: 2026-12-08 02:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.metric_counts import DROP_TRIGGERS, REBUILD, TRIGGERS

revision: str = "b5e8d3a1c7f2"
down_revision: str | None = "5e8b1d4c7a92"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "metric_counts",
        sa.Column("metric", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("metric", "channel", "status"),
    )
    op.create_table(
        "metric_count_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    # Backfill in set-based SQL, then keep counting from here on.
    for statement in REBUILD:
        op.execute(statement)
    for statement in TRIGGERS[op.get_bind().dialect.name]:
        op.execute(statement)


def downgrade() -> None:
    for statement in DROP_TRIGGERS[op.get_bind().dialect.name]:
        op.execute(statement)
    op.drop_table("metric_count_changes")
    op.drop_table("metric_counts")

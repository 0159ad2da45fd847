"""inbox order indexes on conversations

Revision ID: 1ab7d83ccf3d
Revises: 9dffd9f9b2e6
Create Date: 2026-12-07 19:48:41.512743
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '1ab7d83ccf3d'
down_revision: str | None = '9dffd9f9b2e6'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The inbox sorts by this expression (gateway/api/conversations.py); SQLite and PostgreSQL
# use an index on it for ORDER BY ... LIMIT when the index holds the same expression.
ACTIVITY = "coalesce(last_message_at, created_at)"


def upgrade() -> None:
    # The unread index becomes (unread, activity, id): the same lookups, and the unread
    # filter's order without a sort.
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversations_unread"))
    op.create_index("ix_conversations_activity", "conversations", [sa.text(ACTIVITY), "id"])
    op.create_index(
        "ix_conversations_unread_activity", "conversations", ["unread", sa.text(ACTIVITY), "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_conversations_unread_activity", table_name="conversations")
    op.drop_index("ix_conversations_activity", table_name="conversations")
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_conversations_unread"), ["unread"], unique=False)

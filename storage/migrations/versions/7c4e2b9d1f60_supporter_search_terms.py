"""supporter search terms (a word-prefix / phone-ending index that works with encryption),
conversation status and assignee indexes in inbox order

Revision ID: 7c4e2b9d1f60
Revises: a7d4e2f9c1b8
Create Date: 2026-12-08 01:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7c4e2b9d1f60"
down_revision: str | None = "a7d4e2f9c1b8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The inbox's order (gateway/api/conversations.py, storage/models.py).
ACTIVITY = "coalesce(last_message_at, created_at)"


def upgrade() -> None:
    op.create_table(
        "supporter_search_terms",
        sa.Column("term", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("supporter_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.ForeignKeyConstraint(["supporter_id"], ["supporters.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("term", "supporter_id"),
        sqlite_with_rowid=False,
    )
    op.create_index(
        "ix_supporter_search_terms_supporter_id", "supporter_search_terms", ["supporter_id"]
    )
    # The name-prefix tokens kept beside sealed names are the search terms' job now. Not
    # in batch mode: SQLite (3.35+) drops it in place, where a rebuilt table would lose
    # its AUTOINCREMENT.
    op.execute("ALTER TABLE supporters DROP COLUMN name_index")
    _backfill()
    # (status, activity, id) and (assignee, activity, id): the filtered inbox pages read in
    # order; their lookups by status and assignee too, so the one-column indexes go.
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_index("ix_conversations_status")
        batch_op.drop_index("ix_conversations_assigned_user_id")
    op.create_index(
        "ix_conversations_status_activity", "conversations", ["status", sa.text(ACTIVITY), "id"]
    )
    op.create_index(
        "ix_conversations_assigned_activity",
        "conversations",
        ["assigned_user_id", sa.text(ACTIVITY), "id"],
    )


def _backfill() -> None:
    """Every supporter's terms (`storage.search_terms.rebuild_sync`: set-based, in batches
    through a temporary table), when the names can be read here: not when they are
    encrypted (the keys come at start-up, and `storage.crypto_setup.setup_encryption`
    builds the index then)."""
    from storage.crypto import active
    from storage.search_terms import rebuild_sync

    bind = op.get_bind()
    sealed = bind.execute(sa.text("SELECT 1 FROM supporters WHERE name LIKE 'e1:%' LIMIT 1"))
    if active() is None and sealed.first() is None:
        rebuild_sync(bind)


def downgrade() -> None:
    op.drop_index("ix_conversations_assigned_activity", table_name="conversations")
    op.drop_index("ix_conversations_status_activity", table_name="conversations")
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.create_index("ix_conversations_assigned_user_id", ["assigned_user_id"])
        batch_op.create_index("ix_conversations_status", ["status"])
    op.add_column("supporters", sa.Column("name_index", sa.Text(), nullable=True))
    op.drop_index("ix_supporter_search_terms_supporter_id", table_name="supporter_search_terms")
    op.drop_table("supporter_search_terms")

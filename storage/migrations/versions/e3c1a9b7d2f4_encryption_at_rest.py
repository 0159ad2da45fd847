"""encryption at rest: sealed columns, the address blind index, supporters never reuse ids

Revision ID: e3c1a9b7d2f4
Revises: fc503713df39
Create Date: 2026-12-07 22:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e3c1a9b7d2f4"
down_revision: str | None = "fc503713df39"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Sealed values (storage/crypto.py) are longer than the text they hold: these columns
# become TEXT (SQLite ignores lengths; PostgreSQL would refuse a long value).
_TO_TEXT = (
    ("supporters", "name", sa.String(200), False),
    ("messages", "address", sa.String(320), True),
    ("messages", "subject", sa.String(), True),
    ("message_attempts", "address", sa.String(320), False),
)


def upgrade() -> None:
    with op.batch_alter_table("supporter_addresses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("address_sealed", sa.Text(), nullable=True))
    with op.batch_alter_table("supporters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("name_index", sa.Text(), nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        # An erased supporter's id must never name someone new (AUTOINCREMENT); SQLite can
        # only rebuild the table (storage/migrate.py runs this with foreign keys off).
        with op.batch_alter_table(
            "supporters", recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ):
            pass
        return
    for table, column, old, nullable in _TO_TEXT:
        op.alter_column(table, column, type_=sa.Text(), existing_type=old,
                        existing_nullable=nullable)
    # JSON as text: sealed attachments are not JSON to the database.
    op.alter_column("messages", "attachments", type_=sa.Text(), existing_type=sa.JSON(),
                    postgresql_using="attachments::text")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("messages", "attachments", type_=sa.JSON(), existing_type=sa.Text(),
                        postgresql_using="attachments::json")
        for table, column, old, nullable in _TO_TEXT:
            op.alter_column(table, column, type_=old, existing_type=sa.Text(),
                            existing_nullable=nullable)
    with op.batch_alter_table("supporter_addresses", schema=None) as batch_op:
        batch_op.drop_column("address_sealed")
    with op.batch_alter_table("supporters", schema=None) as batch_op:
        batch_op.drop_column("name_index")

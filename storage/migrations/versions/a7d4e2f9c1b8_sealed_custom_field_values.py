"""sealed custom field values: supporter_field_values.value_sealed

Revision ID: a7d4e2f9c1b8
Revises: e3c1a9b7d2f4
Create Date: 2026-12-08 01:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a7d4e2f9c1b8"
down_revision: str | None = "e3c1a9b7d2f4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # With keys, `value` holds the blind index and this column the sealed value
    # (storage/field_values.py); existing plaintext values are sealed by
    # `rallypoint keys rotate-encryption`.
    with op.batch_alter_table("supporter_field_values", schema=None) as batch_op:
        batch_op.add_column(sa.Column("value_sealed", sa.Text(), nullable=True))
    # Start-up with keys looks for a value still in plaintext: index only those.
    op.create_index(
        "ix_supporter_field_values_plain",
        "supporter_field_values",
        ["supporter_id"],
        unique=False,
        sqlite_where=sa.text("value_sealed IS NULL"),
        postgresql_where=sa.text("value_sealed IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_supporter_field_values_plain", table_name="supporter_field_values")
    with op.batch_alter_table("supporter_field_values", schema=None) as batch_op:
        batch_op.drop_column("value_sealed")

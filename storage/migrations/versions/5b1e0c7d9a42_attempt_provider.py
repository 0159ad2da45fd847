"""message attempt provider

Revision ID: 5b1e0c7d9a42
Revises: 5e1f0a7c3b2d
Create Date: 2026-12-07 22:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '5b1e0c7d9a42'
down_revision: str | None = '5e1f0a7c3b2d'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('message_attempts', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('provider', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table('message_attempts', schema=None) as batch_op:
        batch_op.drop_column('provider')

"""reach: fallback on silence, data-saver supporters, outbound media

Revision ID: 5e1f0a7c3b2d
Revises: 4039adf7d70f
Create Date: 2026-12-07 22:05:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '5e1f0a7c3b2d'
down_revision: str | None = '4039adf7d70f'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('outbound_media',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('content_type', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('filename', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('supporters', schema=None) as batch_op:
        batch_op.add_column(sa.Column('data_saver', sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table('announcements', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fallback_after', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('attachments', sa.JSON(), nullable=True))
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fallback_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('fallback_after', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('fallback_from', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        batch_op.add_column(sa.Column('public_token', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.create_index('uq_messages_public_token', ['public_token'], unique=True)
        batch_op.create_index('ix_messages_fallback_at', ['fallback_at'], unique=False, sqlite_where=sa.text('fallback_at IS NOT NULL'), postgresql_where=sa.text('fallback_at IS NOT NULL'))


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_fallback_at', sqlite_where=sa.text('fallback_at IS NOT NULL'), postgresql_where=sa.text('fallback_at IS NOT NULL'))
        batch_op.drop_index('uq_messages_public_token')
        batch_op.drop_column('public_token')
        batch_op.drop_column('fallback_from')
        batch_op.drop_column('fallback_after')
        batch_op.drop_column('fallback_at')
    with op.batch_alter_table('announcements', schema=None) as batch_op:
        batch_op.drop_column('attachments')
        batch_op.drop_column('fallback_after')
    with op.batch_alter_table('supporters', schema=None) as batch_op:
        batch_op.drop_column('data_saver')
    op.drop_table('outbound_media')

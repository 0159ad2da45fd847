"""event RSVP indexes: the RSVP list in id order (an event's, of one answer, of one
occurrence) and the counts by answer and channel from the index alone

Revision ID: 5e8b1d4c7a92
Revises: 7d4e2f1a9c3b
Create Date: 2026-12-08 02:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "5e8b1d4c7a92"
down_revision: str | None = "7d4e2f1a9c3b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_event_rsvps_event_answer", table_name="event_rsvps")
    op.create_index(
        "ix_event_rsvps_event_answer", "event_rsvps", ["event_id", "answer", "id"], unique=False
    )
    op.create_index("ix_event_rsvps_event_order", "event_rsvps", ["event_id", "id"], unique=False)
    op.create_index(
        "ix_event_rsvps_occurrence_order", "event_rsvps", ["occurrence_id", "id"], unique=False
    )
    op.create_index(
        "ix_event_rsvps_tally",
        "event_rsvps",
        ["occurrence_id", "answer", "channel", "attended"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_event_rsvps_tally", table_name="event_rsvps")
    op.drop_index("ix_event_rsvps_occurrence_order", table_name="event_rsvps")
    op.drop_index("ix_event_rsvps_event_order", table_name="event_rsvps")
    op.drop_index("ix_event_rsvps_event_answer", table_name="event_rsvps")
    op.create_index(
        "ix_event_rsvps_event_answer", "event_rsvps", ["event_id", "answer"], unique=False
    )

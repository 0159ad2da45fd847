from __future__ import annotations

import warnings

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (registers the tables)

# SQLite batch migrations copy a table by reflecting it (and the tables its keys name);
# SQLAlchemy cannot reflect expression indexes and says so, though the migrations that
# made them recreate them. That note is noise on every `rallypoint` command's stderr.
warnings.filterwarnings("ignore", message="Skipped unsupported reflection of expression-based")

config = context.config
target_metadata = SQLModel.metadata


def run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through storage.migrate (rallypoint migrate)")
run_with(connection)

"""Developer helper: autogenerate a migration from the models (`python -m storage.revision MSG`)."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from alembic import command
from sqlalchemy.engine import Connection

from storage.db import make_engine
from storage.migrate import alembic_config


def _revise(connection: Connection, url: str, message: str) -> None:
    config = alembic_config(url)
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
    command.revision(config, message=message, autogenerate=True)


async def main(message: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'revision.db'}"
        engine = make_engine(url)
        async with engine.begin() as connection:
            await connection.run_sync(_revise, url, message)
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(" ".join(sys.argv[1:]) or "change"))

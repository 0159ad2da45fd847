"""How `rallypoint` commands fail: one `error:` line on stderr and a non-zero exit, for a
usage mistake as for a database that is not there."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NoReturn


def sqlite_folder(database_url: str) -> Path | None:
    """The directory a SQLite database file is in (None for another database)."""
    from sqlalchemy.engine import make_url

    from storage.db import is_sqlite

    if not is_sqlite(database_url):
        return None
    database = make_url(database_url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).parent


class OneLineErrors(argparse.ArgumentParser):
    """A usage mistake is one `error:` line (and exit 2), as every other failure is."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")

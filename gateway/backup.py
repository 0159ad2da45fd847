"""`rallypoint backup PATH`: a consistent copy of the SQLite database while the service
runs, by SQLite's online backup API (one step: one read transaction, so the copy is the
database as of one moment; in WAL mode writers go on meanwhile)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url

from storage.db import is_sqlite


class BackupRefused(Exception):
    """What to tell the operator (one line); `code` is the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def sqlite_file(database_url: str) -> Path:
    if not is_sqlite(database_url):
        raise BackupRefused(
            "backup copies a SQLite database; for PostgreSQL use pg_dump "
            '(e.g. pg_dump --format=custom --file=rallypoint.dump "$DATABASE_URL")',
            2,
        )
    database = make_url(database_url).database
    if not database or database == ":memory:":
        raise BackupRefused("RALLYPOINT_DATABASE_URL names no database file", 2)
    path = Path(database)
    if not path.is_file():
        raise BackupRefused(f"{path}: no such database file")
    return path


def backup(database_url: str, target: Path) -> int:
    """Copy the database to `target` (which must not exist); the copy's size in bytes.
    The copy is written beside `target` and renamed: a failed backup leaves nothing."""
    source_path = sqlite_file(database_url)
    if target.exists():
        raise BackupRefused(f"{target} exists; give a new file name")
    if not target.parent.is_dir():
        raise BackupRefused(f"{target.parent}: no such directory")
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    try:
        source = sqlite3.connect(source_path, timeout=30)
        try:
            copy = sqlite3.connect(partial)
            try:
                source.backup(copy)  # every page in one step: one snapshot
                # The copy stands alone: no -wal file beside it is needed to read it.
                copy.execute("PRAGMA journal_mode=DELETE")
                (verdict,) = copy.execute("PRAGMA integrity_check").fetchone()
            finally:
                copy.close()
        finally:
            source.close()
        if verdict != "ok":
            raise BackupRefused(f"the copy failed its integrity check: {verdict}")
        os.replace(partial, target)
    except sqlite3.Error as exc:
        raise BackupRefused(f"backup failed: {exc}") from None
    finally:
        partial.unlink(missing_ok=True)
    return target.stat().st_size

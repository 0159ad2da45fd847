"""`rallypoint backup PATH` as a process, while another connection keeps writing: the copy
opens, passes `PRAGMA integrity_check`, and holds whole transactions only."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

from tests.gateway.cli_process import rallypoint

ROWS_PER_TRANSACTION = 2


def make_database(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE filler (id INTEGER PRIMARY KEY, data BLOB)")
    db.execute("CREATE TABLE probe (id INTEGER PRIMARY KEY, batch INTEGER)")
    # Some megabytes, so that the copy takes a while.
    db.executemany("INSERT INTO filler (data) VALUES (?)", [(bytes(4096),)] * 4000)
    db.commit()
    db.close()


class Writer(threading.Thread):
    """Commits transactions of ROWS_PER_TRANSACTION rows until told to stop."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.stop = threading.Event()
        self.started_writing = threading.Event()
        self.batches = 0

    def run(self) -> None:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            while not self.stop.is_set():
                with db:
                    db.executemany(
                        "INSERT INTO probe (batch) VALUES (?)",
                        [(self.batches,)] * ROWS_PER_TRANSACTION,
                    )
                    db.execute(
                        "UPDATE filler SET data = randomblob(4096) WHERE id = ?",
                        (self.batches % 4000 + 1,),
                    )
                self.batches += 1
                self.started_writing.set()
        finally:
            db.close()


async def test_backup_while_another_connection_writes(tmp_path: Path) -> None:
    source = tmp_path / "rallypoint.db"
    make_database(source)
    writer = Writer(source)
    writer.start()
    try:
        assert await asyncio.to_thread(writer.started_writing.wait, 30)
        before = writer.batches
        target = tmp_path / "copies" / "rallypoint-backup.db"
        target.parent.mkdir()
        ran = await rallypoint(
            "backup",
            str(target),
            cwd=tmp_path,
            env={"RALLYPOINT_DATABASE_URL": f"sqlite:///{source}"},
        )
        during = writer.batches
    finally:
        writer.stop.set()
        await asyncio.to_thread(writer.join, 30)
    assert ran.code == 0, ran.output
    assert ran.stdout.startswith(f"backed up the database to {target} (")
    assert during > before  # the writer went on while the command ran
    copy = sqlite3.connect(target)
    try:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rows, batches = copy.execute("SELECT count(*), count(DISTINCT batch) FROM probe").fetchone()
        assert copy.execute("SELECT count(*) FROM filler").fetchone() == (4000,)
    finally:
        copy.close()
    assert rows == batches * ROWS_PER_TRANSACTION  # whole transactions only
    assert before <= batches <= writer.batches
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no partial file


async def test_backup_refuses_to_overwrite(tmp_path: Path) -> None:
    source = tmp_path / "rallypoint.db"
    make_database(source)
    target = tmp_path / "exists.db"
    target.write_bytes(b"keep me")
    env = {"RALLYPOINT_DATABASE_URL": f"sqlite:///{source}"}
    ran = await rallypoint("backup", str(target), cwd=tmp_path, env=env)
    assert (ran.code, ran.stdout) == (1, "")
    assert ran.stderr.splitlines() == [f"error: {target} exists; give a new file name"]
    assert target.read_bytes() == b"keep me"


async def test_backup_on_postgresql_points_to_pg_dump(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://rallypoint:db-password-secret@db.internal:5432/rallypoint"
    ran = await rallypoint(
        "backup", str(tmp_path / "x.db"), cwd=tmp_path, env={"RALLYPOINT_DATABASE_URL": url}
    )
    assert (ran.code, ran.stdout) == (2, "")
    (line,) = ran.stderr.splitlines()
    assert line.startswith("error: backup copies a SQLite database; for PostgreSQL use pg_dump")
    assert "db-password-secret" not in ran.output
    assert not (tmp_path / "x.db").exists()

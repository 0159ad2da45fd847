"""Spool files: inbound requests the database could not take in time, kept on local disk.

One record a line: `<crc32, 8 hex> <arrival, unix ms> <payload>\\n`, the checksum over
everything after it; a payload never holds a newline (the caller's JSON), so a torn or
overwritten record spoils only its own line. With RALLYPOINT_ENCRYPTION_KEYS set the
payload is sealed (`seal_payload`: `e1:<key id>:<base64>`, the spool and the arrival time
bound in as associated data); replay opens sealed and plaintext records alike.

Each process appends to its own file (`<ms>-<pid>-<random>.spool`), with one `write` on
an O_APPEND descriptor and an fsync before `append` returns. The file is made under a
`.tmp` name, locked (flock) and only then renamed, so a replayer never sees a file its
writer does not hold yet.

A replayer claims a file by taking its lock without waiting and checking that the name
still leads to the same file (another replayer may have finished and deleted it); a
live writer's file stays locked, so it is never taken. A claimed file is deleted once
replayed, or moved to `aside/` when some of it could not be read. flock needs a local
filesystem: the spool directory must not be on NFS.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from storage.crypto import SEALED_PREFIX, UndecryptableError, active

SUFFIX = ".spool"
ASIDE = "aside"
# The associated data of a sealed record: the spool, and the record's arrival time.
RECORD_AAD = "inbound_spool.record|%d"


class SealedRecordError(ValueError):
    """A sealed record that the configured keys do not open (or no keys are set)."""


def seal_payload(payload: bytes, at_ms: int) -> bytes:
    """`payload` as written to the spool: sealed (AES-256-GCM, a fresh nonce, the spool and
    arrival time bound in) when RALLYPOINT_ENCRYPTION_KEYS is set, as it is otherwise."""
    crypto = active()
    if crypto is None:
        return payload
    return crypto.seal(RECORD_AAD % at_ms, payload.decode()).encode()


def open_payload(record: SpoolRecord) -> bytes:
    """A record's payload in plaintext: a sealed one opened, an unsealed one (written
    without keys, or before records were sealed) as it is."""
    if not record.payload.startswith(SEALED_PREFIX.encode()):
        return record.payload
    crypto = active()
    if crypto is None:
        raise SealedRecordError("a sealed spool record and RALLYPOINT_ENCRYPTION_KEYS is unset")
    try:
        return crypto.open(RECORD_AAD % record.at_ms, record.payload.decode()).encode()
    except UndecryptableError as exc:
        raise SealedRecordError(str(exc)) from None


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def frame(payload: bytes, at_ms: int) -> bytes:
    """One record's line."""
    if b"\n" in payload:
        raise ValueError("a spool payload cannot hold a newline")
    rest = b"%d %s" % (at_ms, payload)
    return b"%08x %s\n" % (zlib.crc32(rest), rest)


class SpoolWriter:
    """This process's spool file: `append` writes a record and fsyncs it (blocking: call
    it from a thread). `rotate` closes the file so a replayer may take it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._fd: int | None = None
        self.path: Path | None = None

    def append(self, payload: bytes, at_ms: int) -> None:
        line = frame(payload, at_ms)
        fd = self._fd if self._fd is not None else self._open()
        try:
            written = os.write(fd, line)
            if written != len(line):
                raise OSError(f"short write to the spool ({written} of {len(line)} bytes)")
            os.fsync(fd)
        except OSError:
            # What is in the file may end in a torn record: never write after it.
            self.rotate()
            raise

    def rotate(self) -> None:
        """Close the current file (the next append starts a new one)."""
        if self._fd is not None:
            os.close(self._fd)  # closing releases the lock
            self._fd = None
            self.path = None

    close = rotate

    def _open(self) -> int:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{now_ms():015d}-{os.getpid()}-{secrets.token_hex(4)}"
        temporary = self.directory / f"{name}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            path = temporary.with_suffix(SUFFIX)
            os.rename(temporary, path)
            _fsync_directory(self.directory)
        except OSError:
            os.close(fd)
            raise
        self._fd, self.path = fd, path
        return fd


@dataclass(frozen=True)
class SpoolRecord:
    at_ms: int
    payload: bytes


@dataclass
class ClaimedFile:
    """A spool file this process holds (locked) until it is `finish`ed or `release`d."""

    path: Path
    fd: int
    records: list[SpoolRecord] = field(default_factory=list)
    unreadable: int = 0  # lines whose checksum or layout is wrong, a torn last one included
    replayed: int = 0  # how many of `records` are stored (a replay that stopped resumes there)

    def finish(self) -> Path | None:
        """Everything readable was replayed: delete the file, or move it to `aside/` when
        some of it could not be read (the path it went to)."""
        moved: Path | None = None
        if self.unreadable:
            aside = self.path.parent / ASIDE
            aside.mkdir(exist_ok=True)
            moved = aside / (self.path.stem + ".corrupt")
            os.rename(self.path, moved)
        else:
            os.unlink(self.path)
        self.release()
        return moved

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def claim(path: Path) -> ClaimedFile | None:
    """Take `path` if no one holds it (None otherwise), with its records read."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.fstat(fd).st_ino != os.stat(path).st_ino:
            raise FileNotFoundError(path)  # replayed and deleted, the name taken again
    except (BlockingIOError, FileNotFoundError):
        os.close(fd)
        return None
    claimed = ClaimedFile(path, fd)
    with os.fdopen(os.dup(fd), "rb") as file:
        data = file.read()
    read_records(data, claimed)
    return claimed


def read_records(data: bytes, into: ClaimedFile) -> None:
    lines = data.split(b"\n")
    if lines[-1]:
        into.unreadable += 1  # a torn last record
    for line in lines[:-1]:
        record = parse_line(line)
        if record is None:
            into.unreadable += 1
        else:
            into.records.append(record)


def parse_line(line: bytes) -> SpoolRecord | None:
    checksum, _, rest = line.partition(b" ")
    at, _, payload = rest.partition(b" ")
    try:
        if len(checksum) != 8 or int(checksum, 16) != zlib.crc32(rest):
            return None
        return SpoolRecord(int(at), payload)
    except ValueError:
        return None


def claim_all(directory: Path) -> list[ClaimedFile]:
    """Every spool file in `directory` that no process holds, oldest first."""
    return [c for path in spool_files(directory) if (c := claim(path)) is not None]


def spool_files(directory: Path) -> list[Path]:
    try:
        return sorted(directory.glob(f"*{SUFFIX}"))
    except OSError:
        return []


def set_aside(directory: Path, name: str, payload: bytes, at_ms: int) -> Path:
    """Keep a record that was read but could not be stored, in `aside/<name>.rejected`."""
    aside = directory / ASIDE
    aside.mkdir(parents=True, exist_ok=True)
    path = aside / f"{name}.rejected"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, frame(payload, at_ms))
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


@dataclass(frozen=True)
class SpoolStats:
    files: int = 0
    records: int = 0
    bytes: int = 0
    oldest_ms: int | None = None  # arrival of the oldest record waiting


def spool_stats(directory: Path) -> SpoolStats:
    """What waits in `directory` (all processes' files, read without locking)."""
    files = records = size = 0
    oldest: int | None = None
    for path in spool_files(directory):
        try:
            data = path.read_bytes()
        except OSError:
            continue
        files, size, records = files + 1, size + len(data), records + data.count(b"\n")
        first = parse_line(data.partition(b"\n")[0])
        if first is not None and (oldest is None or first.at_ms < oldest):
            oldest = first.at_ms
    return SpoolStats(files, records, size, oldest)


def _fsync_directory(directory: Path) -> None:
    # The new name must survive a crash too, or the fsync'd records are unreachable.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

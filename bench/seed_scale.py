"""A campaign-sized SQLite database for the console benchmark, built once and cached.

100,000 supporters in 200 teams with tags, addresses on several channels, one conversation
each, 1,000,000 messages (a few threads of 600, announcements to a fifth of everyone),
attempts, consent events, announcements, and a console user and an API key for each
role. Everything comes from one `random.Random(seed)`, written with the stdlib sqlite3
driver (executemany), so the same parameters give the same rows. The file is kept under
bench/.data/ (gitignored), named by the parameters and a hash of the schema and of this
module's VERSION, so a re-run reuses it and a schema change rebuilds it.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import sqlite3
import time
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import seed
from bench.servers import ROOT
from storage.announcement_counts import DROP_TRIGGERS, REBUILD, SQLITE_TRIGGERS

DATA = ROOT / "bench" / ".data"
# Part of the cached file's name with the parameters and the models' hash: raise it when
# the rows this module writes change.
VERSION = 2
PASSWORD = "bench-console-password"  # noqa: S105  (a throwaway local database)
ROLES = ("admin", "coordinator", "team_lead")
END = datetime(2026, 12, 1, tzinfo=UTC)  # fixed, so the rows do not depend on the day
YEAR = 365 * 24 * 3600
CHUNK = 50_000
FIRST = (
    "Maria Jose Wei Aisha Carlos Fatima Liam Olivia Noah Emma Ava Mateo Sofia Yusuf Amara"
    " Kenji Priya Diego Chloe Omar Lucia Ethan Zara Tomas Ines Hana Kwame Leila Ivan Nora"
    " Samuel Grace Ahmed Elena Jamal Rosa Daniel Mei Pedro Anya"
).split()
LAST = (
    "Okafor Garcia Chen Nguyen Smith Johnson Patel Kim Rossi Silva Novak Haddad Mendoza"
    " Tanaka Ivanova Diallo Murphy Larsen Costa Ali Kowalski Osei Moreau Fischer Romero"
    " Yilmaz Khan Santos Brown Dubois Herrera Cohen Bianchi Sato Mensah Petrov Lopez Reyes"
    " Ward Quinn"
).split()
TAGS = (
    "canvasser phonebank driver host spanish-speaker student retiree nurse teacher steward"
    " donor volunteer-lead social-media data-entry childcare translator union-member"
    " first-timer weekend-only evening-only"
).split()
CITIES = (
    "Austin Boston Chicago Denver Detroit Fresno Houston Miami Oakland Phoenix Portland"
    " Raleigh Seattle Tampa Tucson"
).split()
INBOUND = (
    "Count me in for Saturday",
    "Can't make it this week, sorry",
    "What time do we start?",
    "YES",
    "Where is the meeting point?",
    "I can drive two people",
    "Thanks!",
    "Is there parking near the office?",
    "I'll bring flyers",
    "Running 10 minutes late",
)
OUTBOUND = (
    "Hi {n}, thanks for joining! Can you canvass on Saturday at 10am?",
    "See you Saturday at the union hall, {n}.",
    "Great work today, {n}. Same time next week?",
    "{n}, the phone bank moved to 6pm Thursday.",
    "Reminder: training call tonight at 7pm. Link in your email.",
)
STATUSES = ("delivered",) * 14 + ("sent",) * 3 + ("read",) * 2 + ("failed",)


@dataclass(frozen=True)
class Scale:
    supporters: int
    teams: int
    messages: int
    long_threads: int  # conversations with `long_length` messages each
    long_length: int
    announcements: int
    announcement_share: float  # of all supporters, per announcement
    seed: int = 20261207


SCALES = {
    "full": Scale(100_000, 200, 1_000_000, 20, 600, 5, 0.2),
    "small": Scale(10_000, 20, 100_000, 3, 600, 3, 0.2),
}


def api_key(role: str, scale: Scale) -> str:
    """The seeded API key of `role`: derived from the seed, stored only as its hash."""
    return f"rp_bench{scale.seed}{role.replace('_', '')}" + "k" * 16


def email(role: str) -> str:
    return f"{role.replace('_', '-')}@bench.example"


def fmt(t: datetime) -> str:
    # SQLAlchemy's SQLite DateTime text (aware UTC stored naive), as bench/seed.py writes.
    return t.strftime("%Y-%m-%d %H:%M:%S.%f")


def at(offset: int) -> str:
    """The time `offset` seconds into the seeded year."""
    return fmt(END - timedelta(seconds=YEAR - offset))


def _fingerprint(scale: Scale) -> str:
    digest = hashlib.sha256(repr((VERSION, sorted(asdict(scale).items()))).encode())
    digest.update((ROOT / "storage" / "models.py").read_bytes())
    return digest.hexdigest()[:12]


def path_for(scale: Scale) -> Path:
    return DATA / f"console-{scale.supporters}-{scale.messages}-{_fingerprint(scale)}.db"


def ensure(scale: Scale) -> Path:
    """The cached database for `scale`, built first when missing (or outdated)."""
    db = path_for(scale)
    if db.exists():
        return db
    DATA.mkdir(parents=True, exist_ok=True)
    for old in DATA.glob(f"console-{scale.supporters}-{scale.messages}-*.db"):
        old.unlink()  # an older schema's file
    tmp = db.with_suffix(".building")
    tmp.unlink(missing_ok=True)
    started = time.monotonic()
    print(f"  building {db.name} (once; cached in bench/.data/)", flush=True)
    build(tmp, scale)
    tmp.rename(db)
    print(f"  built in {time.monotonic() - started:.0f} s", flush=True)
    return db


class Writer:
    """executemany into one table, filling the columns the seed does not name with the
    model's own default (so a new column with a default does not break the seed)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        extra = _defaults(table, columns)
        names = [*columns, *extra]
        sql = (
            f"INSERT INTO {table} ({', '.join(names)}) VALUES"  # noqa: S608 (our own names)
            f" ({', '.join('?' * len(names))})"
        )
        tail = tuple(extra.values())
        batch: list[Sequence[Any]] = []
        for row in rows:
            batch.append((*row, *tail) if tail else row)
            if len(batch) >= CHUNK:
                self.conn.executemany(sql, batch)
                batch.clear()
        if batch:
            self.conn.executemany(sql, batch)


def _defaults(table: str, given: Sequence[str]) -> dict[str, Any]:
    """Bound values of the NOT NULL columns the seed leaves out, from the models."""
    from sqlalchemy.dialects import sqlite
    from sqlmodel import SQLModel

    import storage.models  # noqa: F401  (registers the tables)

    dialect = sqlite.dialect()
    out: dict[str, Any] = {}
    for column in SQLModel.metadata.tables[table].columns:
        if column.name in given or column.nullable or column.primary_key:
            continue
        default = column.default
        if default is None or not getattr(default, "is_scalar", False):
            if default is not None and getattr(default, "is_callable", False):
                value = default.arg({})  # type: ignore[attr-defined]
            elif column.server_default is not None:
                continue
            else:
                raise RuntimeError(f"bench seed: {table}.{column.name} needs a value")
        else:
            value = default.arg  # type: ignore[attr-defined]
        process = column.type.bind_processor(dialect)
        out[column.name] = process(value) if process else value
    return out


def build(db: Path, scale: Scale) -> None:
    seed.migrate(db)
    rng = random.Random(scale.seed)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-400000")
    w = Writer(conn)
    # Load without the announcement counters' triggers (a row trigger per message), then
    # count once in set-based SQL and put the triggers back, as a deployment's would be.
    for statement in DROP_TRIGGERS["sqlite"]:
        conn.execute(statement)
    with conn:
        people = _people(w, rng, scale)
        _messages(w, rng, scale, people)
        _accounts(w, scale)
    with conn:
        for statement in (*REBUILD, *SQLITE_TRIGGERS):
            conn.execute(statement)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


@dataclass
class People:
    names: list[str]
    channels: list[tuple[str, ...]]  # per supporter (index = id - 1), sms first


def _people(w: Writer, rng: random.Random, scale: Scale) -> People:
    n = scale.supporters
    start = at(0)
    w.insert(
        "teams",
        ("id", "name", "description", "created_at"),
        (
            (
                t,
                f"{CITIES[t % len(CITIES)]} {t:03d}",
                f"Volunteers around {CITIES[t % len(CITIES)]}",
                start,
            )
            for t in range(1, scale.teams + 1)
        ),
    )
    names = [f"{rng.choice(FIRST)} {rng.choice(LAST)}" for _ in range(n)]
    channels: list[tuple[str, ...]] = []
    for _ in range(n):
        kinds = ["sms"]
        if rng.random() < 0.25:
            kinds.append("whatsapp")
        if rng.random() < 0.4:
            kinds.append("email")
        if rng.random() < 0.1:
            kinds.append("telegram")
        channels.append(tuple(kinds))
    joined = [rng.randrange(0, YEAR // 2) for _ in range(n)]
    opted = [rng.random() < 0.03 for _ in range(n)]
    w.insert(
        "supporters",
        (
            "id",
            "name",
            "preferred_channels",
            "opted_out",
            "opted_out_at",
            "source",
            "assigned_to",
            "created_at",
            "updated_at",
        ),
        (
            (
                i + 1,
                names[i],
                '["whatsapp", "sms"]' if "whatsapp" in channels[i] else "[]",
                int(opted[i]),
                at(joined[i] + 86_400) if opted[i] else None,
                "import",
                "user:2" if i % 50 == 0 else None,
                at(joined[i]),
                at(joined[i]),
            )
            for i in range(n)
        ),
    )

    def addresses() -> Iterator[tuple[Any, ...]]:
        row = 0
        for i in range(n):
            sid = i + 1
            for kind in channels[i]:
                row += 1
                if kind in ("sms", "whatsapp"):
                    address = seed.phone(sid)
                elif kind == "email":
                    first, last = names[i].lower().split(" ")
                    address = f"{first}.{last}{sid}@example.org"
                else:
                    address = str(1_000_000_000 + sid)
                yield row, sid, kind, address, 0

    w.insert(
        "supporter_addresses",
        ("id", "supporter_id", "channel", "address", "opted_out"),
        addresses(),
    )

    def memberships() -> Iterator[tuple[int, int]]:
        for sid in range(1, n + 1):
            roll = rng.random()
            if roll < 0.05:
                continue
            first = rng.randrange(1, scale.teams + 1)
            yield sid, first
            if roll > 0.9:
                second = rng.randrange(1, scale.teams + 1)
                if second != first:
                    yield sid, second

    w.insert("team_memberships", ("supporter_id", "team_id"), memberships())
    w.insert(
        "supporter_tags",
        ("supporter_id", "tag"),
        ((sid, tag) for sid in range(1, n + 1) for tag in rng.sample(TAGS, rng.randrange(0, 4))),
    )

    def consent() -> Iterator[tuple[Any, ...]]:
        row = 0
        for i in range(n):
            if rng.random() < 0.2:
                row += 1
                yield row, i + 1, "opt_in", "sms", "signup form", at(joined[i])
            if opted[i]:
                row += 1
                yield row, i + 1, "opt_out", "sms", "STOP", at(joined[i] + 86_400)

    w.insert(
        "consent_events",
        ("id", "supporter_id", "action", "channel", "reason", "created_at"),
        consent(),
    )
    return People(names, channels)


def _plan(rng: random.Random, scale: Scale) -> tuple[array[int], list[tuple[int, int, int]]]:
    """Every message as one sortable int: (seconds into the year << 32) | (conversation
    << 8) | announcement number (0: a one-on-one or an inbound). Sorted, so ids follow
    time as they do in a live database."""
    n = scale.supporters
    keys = array("q")
    announcements = []
    for a in range(1, scale.announcements + 1):
        when = YEAR // 2 + a * (YEAR // 2) // (scale.announcements + 1)
        chosen = rng.sample(range(1, n + 1), int(n * scale.announcement_share))
        announcements.append((a, when, len(chosen)))
        keys.extend((when + k // 50 << 32) | (c << 8) | a for k, c in enumerate(chosen))
    for c in range(1, scale.long_threads + 1):
        long_id = c * (n // (scale.long_threads + 1))
        keys.extend(
            (rng.randrange(YEAR // 2, YEAR) << 32) | (long_id << 8)
            for _ in range(scale.long_length)
        )
    rest = scale.messages - len(keys)
    # A few supporters talk a lot and most a little: a heavy-tailed weight per conversation.
    weights = [min(rng.paretovariate(1.5), 30.0) for _ in range(n)]
    for c in rng.choices(range(1, n + 1), weights=weights, k=rest):
        keys.append((rng.randrange(YEAR // 2, YEAR) << 32) | (c << 8))
    return array("q", sorted(keys)), announcements


def _messages(w: Writer, rng: random.Random, scale: Scale, people: People) -> None:
    keys, announcements = _plan(rng, scale)
    n = scale.supporters
    last = array("q", [-1]) * (n + 1)
    last_in = array("q", [-1]) * (n + 1)
    last_out = array("q", [-1]) * (n + 1)
    last_one = array("q", [-1]) * (n + 1)
    unread = array("q", [0]) * (n + 1)
    attempts: list[tuple[Any, ...]] = []
    w.insert(
        "announcements",
        ("id", "body", "audience", "recipients", "state", "kind", "fanout_cursor", "created_at"),
        (
            (
                a,
                f"Announcement {a}: rally at city hall",
                '{"all": true}',
                count,
                "fanned_out",
                "announcement",
                0,
                at(when),
            )
            for a, when, count in announcements
        ),
    )

    def rows() -> Iterator[tuple[Any, ...]]:
        for mid, key in enumerate(keys, start=1):
            when, conv, ann = key >> 32, (key >> 8) & 0xFFFFFF, key & 0xFF
            stamp = at(when)
            name = people.names[conv - 1]
            kinds = people.channels[conv - 1]
            channel = rng.choice(kinds)
            address = _address(conv, channel, name)
            last[conv] = when
            if ann == 0 and rng.random() < 0.45:
                last_in[conv] = when
                unread[conv] = unread[conv] + 1 if rng.random() < 0.3 else 0
                yield (
                    mid,
                    conv,
                    conv,
                    "inbound",
                    "inbound",
                    channel,
                    address,
                    rng.choice(INBOUND),
                    "received",
                    f"IN{mid:030x}",
                    None,
                    None,
                    None,
                    stamp,
                    stamp,
                    None,
                )
                continue
            unread[conv] = 0
            status = rng.choice(STATUSES)
            failed = status == "failed"
            error = "Unreachable destination handset" if failed else None
            code = "30003" if failed else None
            last_out[conv] = when
            if ann:
                body = f"Announcement {ann}: rally at city hall, Saturday 11am. Reply YES to join."
                kind = "announcement"
            else:
                body = rng.choice(OUTBOUND).format(n=name.split(" ")[0])
                kind = "one_on_one"
                last_one[conv] = when
            pid = f"SM{mid:032x}"
            attempts.append((mid, mid, channel, address, pid, status, error, code, stamp))
            yield (
                mid,
                conv,
                conv,
                "outbound",
                kind,
                channel,
                address,
                body,
                status,
                pid,
                error,
                code,
                ann or None,
                stamp,
                stamp,
                stamp,
            )

    w.insert(
        "messages",
        (
            "id",
            "conversation_id",
            "supporter_id",
            "direction",
            "kind",
            "channel",
            "address",
            "body",
            "status",
            "provider_message_id",
            "error",
            "error_code",
            "announcement_id",
            "created_at",
            "updated_at",
            "sent_at",
        ),
        rows(),
    )
    w.insert(
        "message_attempts",
        (
            "id",
            "message_id",
            "channel",
            "address",
            "provider_message_id",
            "status",
            "error",
            "error_code",
            "created_at",
        ),
        attempts,
    )
    attempts.clear()
    w.insert(
        "conversations",
        ("id", "supporter_id", "last_message_at", "unread", "unread_count", "created_at"),
        (
            (c, c, at(last[c]) if last[c] >= 0 else None, int(unread[c] > 0), unread[c], at(0))
            for c in range(1, n + 1)
        ),
    )
    w.conn.executemany(
        "UPDATE supporters SET last_inbound_at = ?, last_outbound_at = ?,"
        " last_one_on_one_at = ? WHERE id = ?",
        (
            (
                at(last_in[c]) if last_in[c] >= 0 else None,
                at(last_out[c]) if last_out[c] >= 0 else None,
                at(last_one[c]) if last_one[c] >= 0 else None,
                c,
            )
            for c in range(1, n + 1)
            if last[c] >= 0
        ),
    )


def _address(sid: int, channel: str, name: str) -> str:
    if channel in ("sms", "whatsapp"):
        return seed.phone(sid)
    if channel == "email":
        first, last = name.lower().split(" ")
        return f"{first}.{last}{sid}@example.org"
    return str(1_000_000_000 + sid)


def _accounts(w: Writer, scale: Scale) -> None:
    """A console user and an API key per role (the team lead's on team 1)."""
    from gateway.auth import hash_key
    from gateway.passwords import hash_password

    hashed = asyncio.run(hash_password(PASSWORD))
    stamp = at(0)
    w.insert(
        "users",
        ("id", "email", "name", "role", "team_id", "password_hash", "active", "created_at"),
        (
            (
                i,
                email(role),
                f"Bench {role}",
                role,
                1 if role == "team_lead" else None,
                hashed,
                1,
                stamp,
            )
            for i, role in enumerate(ROLES, start=1)
        ),
    )
    w.insert(
        "api_keys",
        ("id", "key_hash", "prefix", "role", "team_id", "name", "created_at"),
        (
            (
                i,
                hash_key(api_key(role, scale)),
                api_key(role, scale)[:8],
                role,
                1 if role == "team_lead" else None,
                f"bench {role}",
                stamp,
            )
            for i, role in enumerate(ROLES, start=1)
        ),
    )


def long_threads(db: Path, length: int) -> list[int]:
    """Conversations with at least `length` messages, longest first."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT conversation_id FROM messages GROUP BY conversation_id"
            " HAVING count(*) >= ? ORDER BY count(*) DESC",
            (length,),
        ).fetchall()
    return [int(r[0]) for r in rows]

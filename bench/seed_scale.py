"""Campaign-sized SQLite databases for the console and data-scale benchmarks, built once
and cached.

Supporters in teams with tags, custom fields and addresses on several channels, one
conversation each, messages (a few threads of 600, announcements: one to a share of
everyone, the others to a team's worth), attempts, consent events, polls and answers,
events and RSVPs, check-ins, audit events, outgoing webhook deliveries, and a console user
and an API key for each role. Everything comes from one `random.Random(seed)`, written with
the stdlib sqlite3 driver (executemany, indexes dropped during the load and rebuilt after),
so the same parameters give the same rows. The schema is the project's migrations
(storage/migrate.py upgrade), so the file is what `serve` runs. It is kept under
bench/.data/ (gitignored), named by the parameters and a hash of the migrations, this
module's VERSION and the backfills, so a re-run reuses it and a schema change rebuilds it.
Every table is counted at the end against what was written (`Writer.written`).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
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
from storage import metric_counts
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
# Bits of a message plan key (see _plan): announcement number, then conversation id.
ANN_BITS = 11
CONV_BITS = 21
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
    announcement_share: float  # of all supporters, per announcement (when team_sized is 0)
    seed: int = 20261207
    # Announcement 1 reaches this share of everyone when set; the others `team_sized`
    # supporters each when set.
    wide_share: float = 0.0
    team_sized: int = 0
    polls: int = 0
    events: int = 0
    # Answers to poll 1 and invitations to event 1: a share of announcement 1's recipients
    # (10 per other poll or event).
    answered_share: float = 0.1
    fields: int = 5  # custom fields; each supporter has a value for about half of them
    audit_events: int = 0
    webhook_deliveries: int = 0


SCALES = {
    "full": Scale(
        *(100_000, 200, 1_000_000, 20, 600, 5, 0.2),
        **{"polls": 100, "events": 100, "audit_events": 10_000, "webhook_deliveries": 50_000},
    ),
    "small": Scale(
        *(10_000, 20, 100_000, 3, 600, 3, 0.2),
        **{"polls": 10, "events": 10, "audit_events": 1_000, "webhook_deliveries": 5_000},
    ),
}


def data_scale(factor: int) -> Scale:
    """The data-scale benchmark's database at `factor` x (1, 10, 100) of 10,000 supporters
    and 100,000 messages: teams of about 5,000, 10 announcements per 10,000 supporters (one
    to half of everyone, the others to 5,000 each), 100 polls and 100 events per 10,000."""
    n = 10_000 * factor
    return Scale(
        supporters=n,
        teams=2 * factor,
        messages=10 * n,
        long_threads=3 if factor == 1 else 20,
        long_length=600,
        announcements=10 * factor,
        announcement_share=0.0,
        wide_share=0.5,
        team_sized=5_000,
        polls=100 * factor,
        events=100 * factor,
        audit_events=n // 10,
        webhook_deliveries=n // 2,
    )


@dataclass(frozen=True)
class Backfill:
    """A set-based step a feature provides for data loaded in bulk (bench/scale.py's
    BACKFILLS), e.g. filling a table that keeps counts as they change: `sqlite` statements
    run on the loaded file before the indexes are rebuilt and the tables counted (their
    rows are then copied to PostgreSQL with the rest); `postgresql` ones run after that
    copy, for what exists only there. Their text is part of the cache key."""

    name: str
    sqlite: tuple[str, ...]
    postgresql: tuple[str, ...] = ()


def api_key(role: str, scale: Scale) -> str:
    """The seeded API key of `role`: derived from the seed, stored only as its hash."""
    return f"rp_bench{scale.seed}{role.replace('_', '')}" + "k" * 16


def email(role: str) -> str:
    return f"{role.replace('_', '-')}@bench.example"


def fmt(t: datetime) -> str:
    # SQLAlchemy's SQLite DateTime text (aware UTC stored naive), as bench/seed.py writes.
    return t.strftime("%Y-%m-%d %H:%M:%S.%f")


def at(offset: int) -> str:
    """The time `offset` seconds into the seeded year (10 million times per build: the day
    and the time of day come from tables; strftime would be a fifth of the build)."""
    day, second = divmod(offset, 86_400)
    if 0 <= day < len(_DAYS):
        return _DAYS[day] + _SECONDS[second]
    return fmt(END - timedelta(seconds=YEAR - offset))


_DAYS = [f"{END - timedelta(seconds=YEAR - d * 86_400):%Y-%m-%d}" for d in range(2 * 366)]
_SECONDS = [f" {s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}.000000" for s in range(86_400)]


def schema_hash() -> str:
    """The migrations' text: what the file's schema is made of."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "storage" / "migrations" / "versions").glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def fingerprint(scale: Scale, backfills: Sequence[Backfill] = ()) -> str:
    digest = hashlib.sha256(
        repr((VERSION, sorted(asdict(scale).items()), tuple(backfills))).encode()
    )
    digest.update(schema_hash().encode())
    return digest.hexdigest()[:12]


def path_for(scale: Scale, backfills: Sequence[Backfill] = (), prefix: str = "console") -> Path:
    stem = f"{prefix}-{scale.supporters}-{scale.messages}"
    return DATA / f"{stem}-{fingerprint(scale, backfills)}.db"


def ensure(scale: Scale, backfills: Sequence[Backfill] = (), prefix: str = "console") -> Path:
    """The cached database for `scale`, built first when missing (or outdated). Each
    benchmark has its `prefix`: a file of another prefix is never replaced."""
    db = path_for(scale, backfills, prefix)
    if db.exists():
        return db
    DATA.mkdir(parents=True, exist_ok=True)
    for old in DATA.glob(f"{prefix}-{scale.supporters}-{scale.messages}-*.db*"):
        old.unlink()  # an older schema's file (and its -wal and -shm)
    tmp = db.with_suffix(".building")
    tmp.unlink(missing_ok=True)
    started = time.monotonic()
    print(f"  building {db.name} (once; cached in bench/.data/)", flush=True)
    build(tmp, scale, backfills)
    tmp.rename(db)
    print(f"  built in {time.monotonic() - started:.0f} s", flush=True)
    return db


class Writer:
    """executemany into one table in chunks, filling the NOT NULL columns the seed does not
    name with the model's own default (so a new column with a default does not break the
    seed; one without a default fails here, by name). Counts what it wrote per table."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.written: dict[str, int] = {}

    def insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        extra = _defaults(table, columns)
        names = [*columns, *extra]
        sql = (
            f"INSERT INTO {table} ({', '.join(names)}) VALUES"  # noqa: S608 (our own names)
            f" ({', '.join('?' * len(names))})"
        )
        tail = tuple(extra.values())
        batch: list[Sequence[Any]] = []
        count = 0
        for row in rows:
            batch.append((*row, *tail) if tail else row)
            if len(batch) >= CHUNK:
                self.conn.executemany(sql, batch)
                count += len(batch)
                batch.clear()
        if batch:
            self.conn.executemany(sql, batch)
            count += len(batch)
        self.written[table] = self.written.get(table, 0) + count


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


def _search_terms(db: Path) -> None:
    """The supporter search index, made as the migration and key rotation make it
    (`storage.search_terms.rebuild_sync`: the terms are computed in Python, so not a
    Backfill statement)."""
    from sqlalchemy import create_engine

    from storage.search_terms import rebuild_sync

    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as connection:
        rebuild_sync(connection, batch=20_000)
    engine.dispose()


def migrate(db: Path) -> None:
    """The schema from the project's migrations, exactly as `serve` finds it."""
    from storage.migrate import upgrade

    asyncio.run(upgrade(f"sqlite:///{db}"))


def build(db: Path, scale: Scale, backfills: Sequence[Backfill] = ()) -> None:
    migrate(db)
    rng = random.Random(scale.seed)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=OFF")  # a failed build is thrown away
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-400000")
    # Rows go in with only the primary keys; every other index is rebuilt once at the end
    # (one sort each instead of a random B-tree insert per row).
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
    ).fetchall()
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    w = Writer(conn)
    # Load without the announcement and /metrics counters' triggers (a row trigger per
    # message), then count once in set-based SQL and put the triggers back, as a
    # deployment's would be.
    for statement in (*DROP_TRIGGERS["sqlite"], *metric_counts.DROP_TRIGGERS["sqlite"]):
        conn.execute(statement)
    with conn:
        people = _people(w, rng, scale)
        wide = _messages(w, rng, scale, people)
        from bench import seed_organizing

        seed_organizing.seed(w, rng, scale, wide)
        _accounts(w, scale)
        for backfill in backfills:
            for statement in backfill.sqlite:
                conn.execute(statement)
    for _, sql in indexes:
        conn.execute(sql)
    with conn:
        for statement in (
            *REBUILD,
            *SQLITE_TRIGGERS,
            *metric_counts.REBUILD,
            *metric_counts.TRIGGERS["sqlite"],
        ):
            conn.execute(statement)
    conn.close()
    _search_terms(db)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    check_counts(conn, w.written, scale)
    conn.close()


# Tables the seed leaves empty on purpose (runtime state, queues, secrets made at start-up).
LEFT_EMPTY = frozenset(
    {
        "alembic_version",
        "announcement_count_changes",  # PostgreSQL appends here; SQLite counts in place
        "channel_circuits",
        "console_sessions",
        "conversation_notes",
        "dispatchers",
        "do_not_contact",
        "erased_deliveries",
        "event_reminders",
        "message_status_events",
        "metric_count_changes",  # as announcement_count_changes
        "onboarding_states",
        "outbound_media",
        "outbox",
        "pending_statuses",
        "saved_replies",
        "server_secrets",
        "sign_in_throttles",
    }
)


def check_counts(conn: sqlite3.Connection, written: dict[str, int], scale: Scale) -> None:
    """Rows in the file = rows written, the headline sizes are the asked ones, and no table
    of the schema is left empty unless listed in LEFT_EMPTY (a new table needs a seed or a
    backfill, or a word here)."""
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    have = {t: int(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]) for t in tables}
    wrong = [
        f"{t}: {have.get(t)} rows, {n} written" for t, n in written.items() if have.get(t) != n
    ]
    for table, expected in (
        ("supporters", scale.supporters),
        ("conversations", scale.supporters),
        ("messages", scale.messages),
        ("teams", scale.teams),
        ("announcements", scale.announcements),
        ("polls", scale.polls),
        ("events", scale.events),
    ):
        if have.get(table) != expected:
            wrong.append(f"{table}: {have.get(table)} rows, {expected} expected")
    empty = sorted(t for t, n in have.items() if n == 0 and t not in LEFT_EMPTY)
    if empty and (scale.polls or scale.events):
        wrong.append(
            f"empty tables (seed them, add a backfill or list them in LEFT_EMPTY): {empty}"
        )
    if wrong:
        raise RuntimeError("bench seed: " + "; ".join(wrong))


# The channel mixes a supporter can have, sms first; a supporter stores one's index.
MIXES = tuple(
    ("sms", *extra)
    for extra in (
        (),
        ("whatsapp",),
        ("email",),
        ("telegram",),
        ("whatsapp", "email"),
        ("whatsapp", "telegram"),
        ("email", "telegram"),
        ("whatsapp", "email", "telegram"),
    )
)


@dataclass
class People:
    first: bytearray  # per supporter (index = id - 1): FIRST and LAST indexes, MIXES index
    last: bytearray
    mix: bytearray

    def name(self, sid: int) -> str:
        return f"{FIRST[self.first[sid - 1]]} {LAST[self.last[sid - 1]]}"

    def channels(self, sid: int) -> tuple[str, ...]:
        return MIXES[self.mix[sid - 1]]


def _mix(rng: random.Random) -> int:
    extra = []
    if rng.random() < 0.25:
        extra.append("whatsapp")
    if rng.random() < 0.4:
        extra.append("email")
    if rng.random() < 0.1:
        extra.append("telegram")
    return MIXES.index(("sms", *extra))


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
    people = People(
        bytearray(rng.randrange(len(FIRST)) for _ in range(n)),
        bytearray(rng.randrange(len(LAST)) for _ in range(n)),
        bytearray(_mix(rng) for _ in range(n)),
    )
    joined = array("q", (rng.randrange(0, YEAR // 2) for _ in range(n)))
    opted = bytearray(rng.random() < 0.03 for _ in range(n))
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
                people.name(i + 1),
                '["whatsapp", "sms"]' if people.mix[i] in (1, 4, 5, 7) else "[]",
                opted[i],
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
        for sid in range(1, n + 1):
            name = people.name(sid)
            for kind in people.channels(sid):
                row += 1
                yield row, sid, kind, _address(sid, kind, name), 0

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
    return people


def _audience(scale: Scale, a: int) -> int:
    n = scale.supporters
    if a == 1 and scale.wide_share:
        return int(n * scale.wide_share)
    if scale.team_sized:
        return min(scale.team_sized, n)
    return int(n * scale.announcement_share)


def _plan(rng: random.Random, scale: Scale) -> tuple[Any, list[tuple[int, int, int]], list[int]]:
    """Every message as one sortable int: (seconds into the year << 32) | (conversation
    << ANN_BITS) | announcement number (0: a one-on-one or an inbound), in a numpy array.
    Sorted, so ids follow time as they do in a live database. Also each announcement's
    (number, time, recipients) and announcement 1's recipients."""
    import numpy as np

    n = scale.supporters
    if n >= 1 << CONV_BITS or scale.announcements >= 1 << ANN_BITS:
        raise ValueError("bench seed: too many supporters or announcements for the plan key")
    parts = []
    announcements = []
    wide: list[int] = []
    for a in range(1, scale.announcements + 1):
        when = YEAR // 2 + a * (YEAR // 2) // (scale.announcements + 1)
        chosen = rng.sample(range(1, n + 1), _audience(scale, a))
        if a == 1:
            wide = sorted(chosen)
        announcements.append((a, when, len(chosen)))
        ids = np.array(chosen, dtype=np.int64)
        spread = np.arange(len(chosen), dtype=np.int64) // 50
        parts.append(((when + spread) << 32) | (ids << ANN_BITS) | a)
    for c in range(1, scale.long_threads + 1):
        long_id = c * (n // (scale.long_threads + 1))
        times = np.array(
            [rng.randrange(YEAR // 2, YEAR) for _ in range(scale.long_length)], dtype=np.int64
        )
        parts.append((times << 32) | (long_id << ANN_BITS))
    rest = scale.messages - sum(len(p) for p in parts)
    if rest < 0:
        raise ValueError("bench seed: announcements and threads exceed the message count")
    # A few supporters talk a lot and most a little: a heavy-tailed weight per conversation.
    cumulative = list(itertools.accumulate(min(rng.paretovariate(1.5), 30.0) for _ in range(n)))
    population = range(1, n + 1)
    for lo in range(0, rest, CHUNK):
        size = min(CHUNK, rest - lo)
        convs = np.array(rng.choices(population, cum_weights=cumulative, k=size), dtype=np.int64)
        times = np.array([rng.randrange(YEAR // 2, YEAR) for _ in range(size)], dtype=np.int64)
        parts.append((times << 32) | (convs << ANN_BITS))
    del cumulative
    keys = np.sort(np.concatenate(parts))
    return keys, announcements, wide


def _messages(w: Writer, rng: random.Random, scale: Scale, people: People) -> list[int]:
    """The messages, their attempts, the conversations and the supporters' last-message
    times, in chunks of CHUNK; announcement 1's recipients."""
    keys, announcements, wide = _plan(rng, scale)
    n = scale.supporters
    last = array("q", [-1]) * (n + 1)
    last_in = array("q", [-1]) * (n + 1)
    last_out = array("q", [-1]) * (n + 1)
    last_one = array("q", [-1]) * (n + 1)
    unread = array("q", [0]) * (n + 1)
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
    conv_mask = (1 << CONV_BITS) - 1
    ann_mask = (1 << ANN_BITS) - 1
    # Four uniform draws per message from a generator seeded by `rng`: channel, direction,
    # unread or status, text.
    import numpy as np

    draws = np.random.default_rng(rng.getrandbits(64))
    for lo in range(0, len(keys), CHUNK):
        messages: list[tuple[Any, ...]] = []
        attempts: list[tuple[Any, ...]] = []
        chunk = keys[lo : lo + CHUNK].tolist()
        rolls = draws.random((len(chunk), 4)).tolist()
        for mid, key, (r_channel, r_in, r_status, r_text) in zip(
            range(lo + 1, lo + 1 + len(chunk)), chunk, rolls, strict=True
        ):
            when, conv, ann = key >> 32, (key >> ANN_BITS) & conv_mask, key & ann_mask
            stamp = at(when)
            name = people.name(conv)
            kinds = people.channels(conv)
            channel = kinds[int(r_channel * len(kinds))]
            address = _address(conv, channel, name)
            last[conv] = when
            if ann == 0 and r_in < 0.45:
                last_in[conv] = when
                unread[conv] = unread[conv] + 1 if r_status < 0.3 else 0
                messages.append(
                    (
                        *(mid, conv, conv, "inbound", "inbound", channel, address),
                        INBOUND[int(r_text * len(INBOUND))],
                        *("received", f"IN{mid:030x}", None, None, None, stamp, stamp, None),
                    )
                )
                continue
            unread[conv] = 0
            status = STATUSES[int(r_status * len(STATUSES))]
            failed = status == "failed"
            error = "Unreachable destination handset" if failed else None
            code = "30003" if failed else None
            last_out[conv] = when
            if ann:
                body = f"Announcement {ann}: rally at city hall, Saturday 11am. Reply YES to join."
                kind = "announcement"
            else:
                body = OUTBOUND[int(r_text * len(OUTBOUND))].format(n=name.split(" ")[0])
                kind = "one_on_one"
                last_one[conv] = when
            pid = f"SM{mid:032x}"
            attempts.append((mid, mid, channel, address, pid, status, error, code, stamp))
            messages.append(
                (
                    *(mid, conv, conv, "outbound", kind, channel, address, body, status, pid),
                    *(error, code, ann or None, stamp, stamp, stamp),
                )
            )
        w.insert("messages", MESSAGE_COLUMNS, messages)
        w.insert("message_attempts", ATTEMPT_COLUMNS, attempts)
    del keys
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
    return wide


MESSAGE_COLUMNS = (
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
)
ATTEMPT_COLUMNS = (
    "id",
    "message_id",
    "channel",
    "address",
    "provider_message_id",
    "status",
    "error",
    "error_code",
    "created_at",
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

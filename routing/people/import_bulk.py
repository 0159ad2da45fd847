"""The import's bulk path: the new supporters of a chunk of rows written set-based.

A chunk's rows are checked in Python first (the rules `create_supporter` applies, in its
order), their addresses looked up in one indexed query (by blind index when encryption
keys are set) and on the do-not-contact list in another; the rows that make new
supporters are then written with one multi-row INSERT per table. A row that matches an
existing supporter (or, with `merge_duplicates`, repeats an earlier row) goes through the
per-row path (routing/people/importer.py `import_row`) in file order, so both paths give
the same supporters, rejections and counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, select, text
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from routing.people.addresses import PHONE_CHANNELS
from routing.people.do_not_contact import hash_key, hashes_of
from routing.people.fields import FieldValueError, canonical
from routing.people.import_columns import RowData
from routing.people.supporters import (
    FieldError,
    OutsideTeam,
    check_channels,
    check_timezone,
    clean_tags,
    resolve_teams,
)
from routing.webhooks.events import emit_many
from storage.bulk_insert import BulkWriter
from storage.field_values import write_values
from storage.models import (
    ConsentEvent,
    CustomField,
    DoNotContact,
    Supporter,
    SupporterAddress,
    SupporterTag,
    Team,
    TeamMembership,
)
from storage.sealed_types import pair_reader, stored_address
from storage.search_terms import TERMS, term_rows

SUPPORTERS = Supporter.__table__  # type: ignore[attr-defined]
ADDRESSES = SupporterAddress.__table__  # type: ignore[attr-defined]
TAGS = SupporterTag.__table__  # type: ignore[attr-defined]
MEMBERS = TeamMembership.__table__  # type: ignore[attr-defined]
CONSENT = ConsentEvent.__table__  # type: ignore[attr-defined]
# Addresses per look-up query (well under SQLite's and asyncpg's bound-parameter limits).
LOOKUP_BATCH = 2000


def person_key(channel: str, address: str) -> tuple[str, str]:
    """One key per person's address: a phone number is one on sms and whatsapp."""
    return ("phone" if channel in PHONE_CHANNELS else channel, address)


@dataclass
class NewPerson:
    """A checked row that makes a new supporter."""

    number: int
    data: RowData
    given: list[tuple[str, str]]  # canonical (channel, address)
    name: str
    preferred_channels: list[str]
    language: str | None
    timezone: str | None
    data_saver: bool
    tags: list[str]
    team_ids: list[int]
    values: dict[int, str | None] = field(default_factory=dict)
    barred: bool = False  # an address is on the do-not-contact list
    supporter_id: int | None = None

    @property
    def opted_out_addresses(self) -> list[tuple[str, str]]:
        """The addresses the file opts out (a CRM's SMS or email opt-out)."""
        channels = (
            {c for c, _ in self.given if c in PHONE_CHANNELS} if self.data.sms_opted_out else set()
        )
        if self.data.email_opted_out:
            channels |= {c for c, _ in self.given if c == "email"}
        return [(c, a) for c, a in self.given if c in channels]

    @property
    def consent_by_import(self) -> bool:
        """The file's own opt-out is recorded (not when the list already barred them)."""
        return self.data.opted_out and not self.barred

    @property
    def honoured(self) -> bool:
        return self.consent_by_import or bool(self.opted_out_addresses)


async def owners_in(
    session: AsyncSession, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """Who holds each person-address key, in one indexed query per `LOOKUP_BATCH` (the
    address column compares blind indexes when keys are set; the rows found are read by
    their index, not decrypted)."""
    wanted = list(dict.fromkeys(keys))
    owners: dict[tuple[str, str], int] = {}
    for start in range(0, len(wanted), LOOKUP_BATCH):
        batch = wanted[start : start + LOOKUP_BATCH]
        addresses = list({a for _, a in batch})
        kinds = {k for k, _ in batch}
        channels = (kinds - {"phone"}) | (PHONE_CHANNELS if "phone" in kinds else set())
        # Both columns of the unique (channel, address) index, or it is scanned whole.
        rows = await session.execute(
            select(
                ADDRESSES.c.supporter_id, ADDRESSES.c.channel, stored_address(ADDRESSES.c.address)
            ).where(ADDRESSES.c.channel.in_(sorted(channels)), ADDRESSES.c.address.in_(addresses))
        )
        read = pair_reader(ADDRESSES.c.address.type.label, addresses)
        for supporter_id, channel, stored in rows:
            owners.setdefault(person_key(channel, read(stored)), supporter_id)
    return owners


class TeamRefs:
    """Teams named in the file, each looked up once; and custom field values, each cell
    checked once (a file repeats its counties and shifts)."""

    def __init__(self) -> None:
        self._found: dict[str | int, Team | None] = {}
        self._values: dict[tuple[int, str], str | None] = {}

    def values(self, given: dict[str, str], known: dict[str, CustomField]) -> dict[int, str | None]:
        """`check_values` of a row's cells, remembered per field and cell."""
        out: dict[int, str | None] = {}
        for name, raw in given.items():
            found = known.get(name)
            if found is None or found.id is None:
                raise FieldValueError(name, "no such custom field")
            key = (found.id, raw)
            if key not in self._values:
                if len(self._values) > 50_000:
                    self._values.clear()
                self._values[key] = canonical(found, raw)
            out[found.id] = self._values[key]
        return out

    async def resolve(self, session: AsyncSession, refs: Sequence[str]) -> list[Team]:
        return await resolve_teams(session, refs, self._found)


async def check_new(
    session: AsyncSession,
    number: int,
    data: RowData,
    given: list[tuple[str, str]],
    *,
    teams: TeamRefs,
    known: dict[str, CustomField],
    lead_team_id: int | None,
) -> NewPerson:
    """The row's new supporter, checked as `create_supporter` checks (FieldError,
    OutsideTeam); nothing is written."""
    if data.texts.get("timezone"):
        try:
            check_timezone(data.texts["timezone"])
        except ValueError as exc:
            raise FieldError(("timezone",), str(exc)) from exc
    channels = check_channels(data.lists.get("preferred_channels") or [])
    tags = clean_tags(data.lists.get("tags") or [])
    team_ids: list[int] = []
    if "teams" in data.lists:
        found = await teams.resolve(session, data.lists["teams"])
        if lead_team_id is not None and any(t.id != lead_team_id for t in found):
            raise OutsideTeam("a team lead may only add supporters to their own team")
        team_ids = [t.id for t in found if t.id is not None]
    if lead_team_id is not None and lead_team_id not in team_ids:
        team_ids.append(lead_team_id)
    values: dict[int, str | None] = {}
    if data.custom:
        try:
            values = teams.values(data.custom, known)
        except FieldValueError as exc:
            raise FieldError(("fields", exc.field), exc.message) from exc
    return NewPerson(
        number=number,
        data=data,
        given=given,
        name=data.name.strip(),
        preferred_channels=channels,
        language=data.texts.get("language") or None,
        timezone=data.texts.get("timezone") or None,
        data_saver=bool(data.flags.get("data_saver", False)),
        tags=tags,
        team_ids=team_ids,
        values=values,
    )


async def mark_barred(
    session: AsyncSession, people: Sequence[NewPerson], erasure_key: str | None, now: datetime
) -> None:
    """Flag the people with an address on the do-not-contact list (one query)."""
    key = await hash_key(session, erasure_key, now, create=False)
    if key is None:
        return
    by_hash: dict[str, list[NewPerson]] = {}
    for person in people:
        for h in hashes_of(key, person.given):
            by_hash.setdefault(h, []).append(person)
    hashes = list(by_hash)
    for start in range(0, len(hashes), LOOKUP_BATCH):
        found = await session.execute(
            select(col(DoNotContact.address_hash)).where(
                col(DoNotContact.address_hash).in_(hashes[start : start + LOOKUP_BATCH])
            )
        )
        for (h,) in found:
            for person in by_hash[h]:
                person.barred = True


SUPPORTER_COLUMNS = (
    "name",
    "preferred_channels",
    "language",
    "timezone",
    "opted_out",
    "opted_out_at",
    "source",
    "data_saver",
    "created_at",
    "updated_at",
)
ADDRESS_COLUMNS = ("supporter_id", "channel", "address", "address_sealed", "opted_out")


def encoded(
    writer: BulkWriter, table: Table, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]
) -> list[tuple[Any, ...]]:
    """Rows as the driver takes them: each value through its column's bind processor, once
    per distinct value (a timestamp, a flag, an empty list) except in a sealed column,
    which seals every value anew (its own nonce); columns without one as they are."""
    encoders = [_Encoder(writer, table, c) for c in columns]
    if not any(e.encode for e in encoders):
        return list(rows)
    return [tuple(e(v) for e, v in zip(encoders, row, strict=True)) for row in rows]


class _Encoder:
    """One column's bind processor, remembering what it gave for hashable values."""

    def __init__(self, writer: BulkWriter, table: Table, column: str) -> None:
        self.encode = writer.encoder(table, column)
        self.fresh = getattr(table.c[column].type, "fresh_per_value", False)
        self.seen: dict[Any, Any] = {}

    def __call__(self, value: Any) -> Any:
        if self.encode is None or value is None:
            return value
        if self.fresh:
            return self.encode(value)
        key = (type(value), tuple(value) if isinstance(value, list) else value)
        try:
            return self.seen[key]
        except KeyError:
            pass
        except TypeError:  # not hashable
            return self.encode(value)
        if len(self.seen) > 10_000:
            self.seen.clear()
        out = self.seen[key] = self.encode(value)
        return out


async def write(
    writer: BulkWriter, table: Table, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]
) -> None:
    """Insert `rows`, encoded (see `encoded`)."""
    await writer.insert(table, tuple(columns), encoded(writer, table, columns, rows))


async def new_supporter_ids(session: AsyncSession, count: int) -> list[int]:
    """`count` ids for new supporters, taken from PostgreSQL's sequence up front (another
    writer may insert meanwhile)."""
    found = await session.execute(
        text(
            "SELECT nextval(pg_get_serial_sequence('supporters', 'id')) "
            "FROM generate_series(1, :n) ORDER BY 1"
        ),
        {"n": count},
    )
    return [int(i) for (i,) in found]


async def insert_people(session: AsyncSession, people: Sequence[NewPerson], now: datetime) -> None:
    """Insert the supporters and their addresses (names sealed and addresses blind-indexed
    per row when keys are set): the one place the import writes names and addresses.
    Sets each person's `supporter_id`."""
    writer = BulkWriter(await session.connection())
    rows = [
        (
            p.name,
            p.preferred_channels,
            p.language,
            p.timezone,
            p.barred or p.data.opted_out,
            now if p.barred or p.data.opted_out else None,
            "import",
            p.data_saver,
            now,
            now,
        )
        for p in people
    ]
    if writer.dialect.name == "postgresql":
        ids = await new_supporter_ids(session, len(people))
        with_ids = ((i, *row) for i, row in zip(ids, rows, strict=True))
        await write(writer, SUPPORTERS, ("id", *SUPPORTER_COLUMNS), with_ids)
    else:
        await write(writer, SUPPORTERS, SUPPORTER_COLUMNS, rows)
        # SQLite: this transaction holds the database's write lock, so the newest ids are
        # these rows', given in insertion order (AUTOINCREMENT only counts up).
        found = await session.execute(
            select(SUPPORTERS.c.id).order_by(SUPPORTERS.c.id.desc()).limit(len(people))
        )
        ids = sorted(int(i) for (i,) in found)
    for person, supporter_id in zip(people, ids, strict=True):
        person.supporter_id = supporter_id
    addresses: list[tuple[Any, ...]] = []
    for p in people:
        out = set(p.opted_out_addresses)
        addresses.extend(
            (p.supporter_id, channel, address, address, (channel, address) in out)
            for channel, address in p.given
        )
    await write(writer, ADDRESSES, ADDRESS_COLUMNS, addresses)
    terms = [
        (row["term"], row["supporter_id"])
        for p in people
        if p.supporter_id is not None
        for row in term_rows(p.supporter_id, p.name, p.given)
    ]
    await writer.insert(TERMS, ("term", "supporter_id"), terms)


async def create_people(
    session: AsyncSession, people: Sequence[NewPerson], *, erasure_key: str | None, now: datetime
) -> None:
    """Write new supporters with everything the row gave them, as `create_supporter` and
    the import's opt-out rules would, set-based."""
    if not people:
        return
    await mark_barred(session, people, erasure_key, now)
    await insert_people(session, people, now)
    writer = BulkWriter(await session.connection())
    tags = [(p.supporter_id, t) for p in people for t in p.tags]
    await writer.insert(TAGS, ("supporter_id", "tag"), tags)
    members = [(p.supporter_id, t) for p in people for t in p.team_ids]
    await writer.insert(MEMBERS, ("supporter_id", "team_id"), members)
    values = {p.supporter_id: p.values for p in people if p.values and p.supporter_id}
    await write_values(session, values, new_supporters=True)
    consent_columns = ("supporter_id", "action", "reason", "created_at")
    consent = [
        (p.supporter_id, "opt_out", "do_not_contact" if p.barred else "import", now)
        for p in people
        if p.barred or p.consent_by_import
    ]
    await write(writer, CONSENT, consent_columns, consent)
    await emit_many(session, "supporter.created", [_subject(p) for p in people], now)
    await emit_many(
        session, "supporter.opted_out", [_subject(p) for p in people if p.consent_by_import], now
    )


def _subject(person: NewPerson) -> dict[str, Any]:
    return {"supporter_id": person.supporter_id}

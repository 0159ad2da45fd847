"""CSV import of supporters, shared by `POST /supporters/import`, the console and
`rallypoint import`.

A row is matched to an existing supporter by any of its addresses (a phone number on sms
or whatsapp alike) and updates it; otherwise it creates one. Each row runs in its own
SAVEPOINT, so a bad row writes nothing and the good rows around it are kept. Two rows of
one file with the same address are reported, the second rejected naming the first
(`merge_duplicates` makes the second update the first instead). A dry run does all of it
in one transaction and rolls it back. Column names: routing/people/import_columns.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

from sqlalchemy import update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from routing.people.addresses import PHONE_CHANNELS
from routing.people.consent import record_consent
from routing.people.fields import (
    KNOWN_FIELDS,
    FieldValueError,
    check_name,
    define_field,
    fields_by_name,
)
from routing.people.import_bulk import (
    NewPerson,
    TeamRefs,
    check_new,
    create_people,
    owners_in,
    person_key,
)
from routing.people.import_columns import (
    ADDRESS_COLUMNS,
    COLUMNS,
    LIST_COLUMNS,
    TEXT_COLUMNS,
    BadCell,
    ColumnMap,
    RowData,
    map_header,
    read_row,
)
from routing.people.import_file_scan import ImportFileError, read_rows, scan
from routing.people.supporters import (
    AddressTaken,
    FieldError,
    OutsideTeam,
    create_supporter,
    normalize_addresses,
    owners_of,
    update_supporter,
)
from storage.db import SessionFactory
from storage.models import CustomField, Supporter, SupporterAddress, TeamMembership
from storage.queries import addresses_by_supporter

__all__ = [
    "ADDRESS_COLUMNS",
    "COLUMNS",
    "LIST_COLUMNS",
    "TEXT_COLUMNS",
    "ImportFileError",
    "ImportOptions",
    "ImportSummary",
    "import_csv",
]

COMMIT_EVERY = 200  # the per-row path
CHUNK_ROWS = 5000  # the bulk path: rows checked, looked up and written at once
PROGRESS_EVERY = 1000


class RowRejected(Exception):
    pass


# (row number, the file's header, the row's cells, why): a rejected row, for a result file.
OnReject = Callable[[int, Sequence[str], Sequence[str], str], None]


@dataclass
class ImportOptions:
    dry_run: bool = False  # do everything, then roll it back
    create_fields: bool = False  # a column that names no field becomes a text field
    merge_duplicates: bool = False  # a repeated address updates the earlier row's supporter
    partial: bool = False  # import the readable rows of a file with unreadable ones
    progress: Callable[[int], None] | None = None  # told the rows done, now and then
    on_reject: OnReject | None = None
    # New supporters written set-based per chunk (routing/people/import_bulk.py); False:
    # every row by the per-row path (the same results, slower).
    bulk: bool = True


@dataclass
class ImportSummary:
    created: int = 0
    updated: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    opted_out: int = 0  # rows whose opt-out (or an address's) was honoured
    duplicates: int = 0  # rows repeating an earlier row's address
    unmatched_columns: list[str] = field(default_factory=list)  # not imported
    created_fields: list[str] = field(default_factory=list)
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "rejected": self.rejected,
            "opted_out": self.opted_out,
            "duplicates": self.duplicates,
            "unmatched_columns": self.unmatched_columns,
            "created_fields": self.created_fields,
            "dry_run": self.dry_run,
        }

    def audit_target(self) -> str:
        """What the audit trail says of an import: counts only, no names or numbers."""
        return f"created={self.created} updated={self.updated} rejected={len(self.rejected)}"


async def import_csv(
    sessions: SessionFactory,
    stream: IO[bytes],
    *,
    clock: Callable[[], datetime],
    default_region: str | None,
    lead_team_id: int | None = None,
    erasure_key: str | None = None,
    options: ImportOptions | None = None,
) -> ImportSummary:
    """Import every row of `stream`; raise ImportFileError when the file itself is unusable
    (or, unless `options.partial`, has an unreadable row: then nothing is imported)."""
    options = options or ImportOptions()
    shape = scan(stream)
    if shape.problems and not options.partial:
        number, why = next(iter(shape.problems.items()))
        more = len(shape.problems) - 1
        raise ImportFileError(
            f"row {number}: {why}"
            + (f" (and {more} more rows)" if more else "")
            + "; nothing was imported (import the readable rows with --partial)"
        )
    columns = map_header(shape.header)
    if not columns.has_name:
        raise ImportFileError(
            "no name column (name, or first_name and last_name); "
            f"columns are {', '.join(COLUMNS)}, or a CRM export's"
        )
    summary = ImportSummary(dry_run=options.dry_run)
    seen: dict[tuple[str, str], int] = {}
    async with sessions() as session:
        known = await _custom_fields(session, columns, options, summary, clock())
        session.info[KNOWN_FIELDS] = known  # the rows' values are checked against these
        run = _Run(
            session=session,
            header=shape.header,
            problems=shape.problems,
            columns=columns,
            known=known,
            seen=seen,
            summary=summary,
            options=options,
            clock=clock,
            default_region=default_region,
            lead_team_id=lead_team_id,
            erasure_key=erasure_key,
        )
        done = 0
        chunk: list[tuple[int, list[str]]] = []
        for number, cells in read_rows(stream):
            done += 1
            if options.progress is not None and done % PROGRESS_EVERY == 0:
                options.progress(done)
            chunk.append((number, cells))
            if len(chunk) >= (CHUNK_ROWS if options.bulk else COMMIT_EVERY):
                await run.chunk(chunk)
                chunk = []
        await run.chunk(chunk)
        if options.progress is not None:
            options.progress(done)
        if options.dry_run:
            await session.rollback()
        else:
            await session.commit()
    return summary


@dataclass
class _Run:
    """One import's state, and how it imports a chunk of rows."""

    session: AsyncSession
    header: list[str]
    problems: dict[int, str]
    columns: ColumnMap
    known: dict[str, CustomField]
    seen: dict[tuple[str, str], int]
    summary: ImportSummary
    options: ImportOptions
    clock: Callable[[], datetime]
    default_region: str | None
    lead_team_id: int | None
    erasure_key: str | None
    teams: TeamRefs = field(default_factory=TeamRefs)

    def reject(self, number: int, cells: Sequence[str], reason: str) -> None:
        if reason.startswith("duplicate"):
            self.summary.duplicates += 1
        self.summary.rejected.append({"row": number, "reason": reason})
        if self.options.on_reject is not None:
            self.options.on_reject(number, self.header, cells, reason)

    def read(self, number: int, cells: list[str]) -> RowData:
        if number in self.problems:
            raise RowRejected(self.problems[number])
        try:
            data = read_row(self.columns, cells)
        except BadCell as exc:
            raise RowRejected(str(exc)) from exc
        data.custom = {k: v for k, v in data.custom.items() if k in self.known}
        return data

    async def chunk(self, rows: list[tuple[int, list[str]]]) -> None:
        """Import `rows` in file order, then commit (not in a dry run)."""
        if not rows:
            return
        if self.options.bulk:
            await self._bulk(rows)
        else:
            for number, cells in rows:
                try:
                    await self._one(number, cells, self.read(number, cells))
                except RowRejected as exc:
                    self.reject(number, cells, str(exc))
        if not self.options.dry_run:
            await self.session.commit()

    async def _one(self, number: int, cells: list[str], data: RowData) -> None:
        """The per-row path: one SAVEPOINT, `import_row`'s rules."""
        async with self.session.begin_nested():
            created, opted_out = await import_row(
                self.session,
                data,
                seen=self.seen,
                number=number,
                options=self.options,
                known=self.known,
                now=self.clock(),
                default_region=self.default_region,
                lead_team_id=self.lead_team_id,
                erasure_key=self.erasure_key,
            )
        self.summary.created += created
        self.summary.updated += not created
        self.summary.opted_out += opted_out

    async def _bulk(self, rows: list[tuple[int, list[str]]]) -> None:
        """Check every row, look their addresses up at once, then in file order: reject,
        queue a new supporter, or (an existing supporter's row) write the queued ones and
        run the per-row path."""
        read: list[tuple[int, list[str], RowData | str, list[tuple[str, str]]]] = []
        for number, cells in rows:
            try:
                data = self.read(number, cells)
                read.append((number, cells, data, _given(data, self.default_region)))
            except RowRejected as exc:
                read.append((number, cells, str(exc), []))
        owned = await owners_in(self.session, (person_key(*a) for *_, g in read for a in g))
        queued: list[tuple[NewPerson, list[str]]] = []
        for number, cells, read_as, given in read:
            if isinstance(read_as, str):
                self.reject(number, cells, read_as)
                continue
            data = read_as
            keys = [person_key(*a) for a in given]
            if any(k in owned for k in keys) or (
                self.options.merge_duplicates and any(k in self.seen for k in keys)
            ):
                await self._create(queued)
                queued = []
                try:
                    await self._one(number, cells, data)
                except RowRejected as exc:
                    self.reject(number, cells, str(exc))
                continue
            try:
                _check_duplicate(data, given, self.seen)
                person = await check_new(
                    self.session,
                    number,
                    data,
                    given,
                    teams=self.teams,
                    known=self.known,
                    lead_team_id=self.lead_team_id,
                )
            except RowRejected as exc:
                self.reject(number, cells, str(exc))
                continue
            except FieldError as exc:
                self.reject(number, cells, _field_reason(exc, data))
                continue
            except OutsideTeam as exc:
                self.reject(number, cells, f"forbidden (403): {exc}")
                continue
            for key in keys:
                self.seen.setdefault(key, number)
            queued.append((person, cells))
        await self._create(queued)

    async def _create(self, queued: list[tuple[NewPerson, list[str]]]) -> None:
        """Write the queued new supporters at once; should that fail (an address taken
        meanwhile, a value the database refuses), each goes by the per-row path instead."""
        if not queued:
            return
        people = [p for p, _ in queued]
        try:
            async with self.session.begin_nested():
                await create_people(
                    self.session, people, erasure_key=self.erasure_key, now=self.clock()
                )
        except DBAPIError:
            for person, _ in queued:
                for key in (person_key(*a) for a in person.given):
                    if self.seen.get(key) == person.number:
                        del self.seen[key]
            for person, cells in queued:
                try:
                    await self._one(person.number, cells, person.data)
                except RowRejected as exc:
                    self.reject(person.number, cells, str(exc))
            return
        self.summary.created += len(people)
        self.summary.opted_out += sum(p.honoured for p in people)


def _given(data: RowData, default_region: str | None) -> list[tuple[str, str]]:
    """The row's canonical addresses; RowRejected as `import_row` rejects them."""
    columns = [c for c, _ in data.addresses]
    if not data.name:
        raise RowRejected("name: a name is required")
    if not columns:
        raise RowRejected("no address: give at least one of phone, whatsapp, telegram, email")
    try:
        return normalize_addresses(
            [(ADDRESS_COLUMNS[c], cell) for c, cell in data.addresses], default_region
        )
    except FieldError as exc:
        raise RowRejected(_field_reason(exc, data)) from exc


def _check_duplicate(
    data: RowData, given: list[tuple[str, str]], seen: dict[tuple[str, str], int]
) -> None:
    columns = [c for c, _ in data.addresses]
    for column, address in zip(columns, given, strict=True):
        row = seen.get(person_key(*address))
        if row is not None:
            raise RowRejected(f"duplicate of row {row}: the same {column}")


def _field_reason(exc: FieldError, data: RowData) -> str:
    return f"{_column(exc.loc, [c for c, _ in data.addresses])}: {exc.message}"


async def _custom_fields(
    session: AsyncSession,
    columns: ColumnMap,
    options: ImportOptions,
    summary: ImportSummary,
    now: datetime,
) -> dict[str, CustomField]:
    """The custom fields the file's other columns name; with `create_fields`, the missing
    ones are made (as text); otherwise they are reported and not imported."""
    known = await fields_by_name(session)
    for name in columns.custom.values():
        if name in known:
            continue
        try:
            check_name(name)
        except FieldValueError:
            summary.unmatched_columns.append(name)
            continue
        if options.create_fields:
            known[name] = await define_field(session, name, "text", None, now)
            summary.created_fields.append(name)
        else:
            summary.unmatched_columns.append(name)
    return {n: f for n, f in known.items() if n in columns.custom.values()}


async def import_row(
    session: AsyncSession,
    data: RowData,
    *,
    seen: dict[tuple[str, str], int],
    number: int,
    options: ImportOptions,
    known: dict[str, CustomField],
    now: datetime,
    default_region: str | None,
    lead_team_id: int | None,
    erasure_key: str | None = None,
) -> tuple[bool, bool]:
    """Create or update the supporter one row describes: (created, an opt-out honoured)."""
    columns = [c for c, _ in data.addresses]
    fields: dict[str, Any] = {"name": data.name, **data.lists, **data.texts}
    if not data.name:
        raise RowRejected("name: a name is required")
    if not columns:
        raise RowRejected("no address: give at least one of phone, whatsapp, telegram, email")
    if data.custom:
        fields["fields"] = data.custom
    if data.flags:
        fields.update(data.flags)
    try:
        given = normalize_addresses(
            [(ADDRESS_COLUMNS[c], cell) for c, cell in data.addresses], default_region
        )
        earlier = [
            (c, seen[person_key(*a)])
            for c, a in zip(columns, given, strict=True)
            if person_key(*a) in seen
        ]
        if earlier and not options.merge_duplicates:
            column, row = earlier[0]
            raise RowRejected(f"duplicate of row {row}: the same {column}")
        held = await owners_of(session, given)
        owners = set(held.values())
        if len(owners) > 1:
            whose = "; ".join(
                f"{_column_of(channel)} {address} is supporter {owner}'s"
                for (channel, address), owner in held.items()
            )
            raise RowRejected(f"conflict (409): addresses of different supporters: {whose}")
        if not owners:
            fields["addresses"] = given
            supporter = await create_supporter(
                session,
                fields,
                now=now,
                default_region=default_region,
                source="import",
                lead_team_id=lead_team_id,
                erasure_key=erasure_key,
            )
            created = True
        else:
            supporter_id = owners.pop()
            if lead_team_id is not None and not await session.get(
                TeamMembership, (supporter_id, lead_team_id)
            ):
                raise RowRejected(
                    "conflict (409): an address belongs to a supporter outside your team"
                )
            fields["addresses"] = given + _kept(
                (await addresses_by_supporter(session, [supporter_id]))[supporter_id], given
            )
            found = await session.get(Supporter, supporter_id)
            assert found is not None
            supporter = await update_supporter(
                session,
                found,
                fields,
                now=now,
                default_region=default_region,
                lead_team_id=lead_team_id,
                erasure_key=erasure_key,
            )
            created = False
    except FieldError as exc:
        raise RowRejected(f"{_column(exc.loc, columns)}: {exc.message}") from exc
    except AddressTaken as exc:
        raise RowRejected(
            f"conflict (409): {_column_of(exc.channel)} {exc.address} "
            f"belongs to supporter {exc.supporter_id}"
        ) from exc
    except OutsideTeam as exc:
        raise RowRejected(f"forbidden (403): {exc}") from exc
    except IntegrityError as exc:
        raise RowRejected("conflict (409): an address was taken meanwhile") from exc
    for address in given:
        seen.setdefault(person_key(*address), number)
    return created, await _honour_opt_outs(session, supporter, data, given, now)


async def _honour_opt_outs(
    session: AsyncSession,
    supporter: Supporter,
    data: RowData,
    given: list[tuple[str, str]],
    now: datetime,
) -> bool:
    """Apply the file's opt-outs: the supporter's (our export's `opted_out`), or one
    address's (a CRM's SMS or email opt-out). A file never opts anyone back in."""
    assert supporter.id is not None
    honoured = False
    if data.opted_out and not supporter.opted_out:
        await record_consent(session, supporter, "opt_out", now=now, reason="import")
        honoured = True
    channels = {c for c, _ in given if c in PHONE_CHANNELS} if data.sms_opted_out else set()
    if data.email_opted_out:
        channels |= {c for c, _ in given if c == "email"}
    if channels:
        addresses = [a for c, a in given if c in channels]
        await session.execute(
            update(SupporterAddress)
            .where(
                col(SupporterAddress.supporter_id) == supporter.id,
                col(SupporterAddress.channel).in_(channels),
                col(SupporterAddress.address).in_(addresses),
            )
            .values(opted_out=True)
        )
        honoured = True
    return honoured


def _kept(existing: list[SupporterAddress], given: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The supporter's addresses on channels the row does not mention (they stay)."""
    channels = {c for c, _ in given}
    return [(a.channel, a.address) for a in existing if a.channel not in channels]


def _column_of(channel: str) -> str:
    return "phone" if channel == "sms" else channel


def _column(loc: tuple[str | int, ...], address_columns: list[str]) -> str:
    if loc[0] == "addresses" and len(loc) > 1 and isinstance(loc[1], int):
        if loc[1] < len(address_columns):
            return address_columns[loc[1]]
        return "addresses"
    if loc[0] == "fields" and len(loc) > 1:
        return str(loc[1])
    return str(loc[0])

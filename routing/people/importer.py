"""CSV import of supporters, shared by `POST /supporters/import` and `rallypoint import`.

A row is matched to an existing supporter by any of its addresses (a phone number on sms
or whatsapp alike) and updates it; otherwise it creates one. Each row runs in its own
SAVEPOINT, so a bad row writes nothing and the good rows around it are kept.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from routing.people.csv_formulas import unescape_cell
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
from storage.models import Supporter, SupporterAddress, TeamMembership
from storage.queries import addresses_by_supporter

# Column → channel of the address it holds.
ADDRESS_COLUMNS = {
    "phone": "sms",
    "whatsapp": "whatsapp",
    "telegram": "telegram",
    "email": "email",
    "signal": "signal",
}
LIST_COLUMNS = ("preferred_channels", "tags", "teams")
TEXT_COLUMNS = ("language", "timezone")
FLAG_COLUMNS = ("data_saver",)
COLUMNS = ("name", *ADDRESS_COLUMNS, *LIST_COLUMNS, *TEXT_COLUMNS, *FLAG_COLUMNS)
_TRUE = frozenset({"true", "yes", "1", "y"})
_FALSE = frozenset({"false", "no", "0", "n"})
COMMIT_EVERY = 200
_CHUNK = 64 * 1024


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (not UTF-8, no header, no name column)."""


class RowRejected(Exception):
    pass


@dataclass
class ImportSummary:
    created: int = 0
    updated: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"created": self.created, "updated": self.updated, "rejected": self.rejected}

    def audit_target(self) -> str:
        """What the audit trail says of an import: counts only, no names or numbers."""
        return f"created={self.created} updated={self.updated} rejected={len(self.rejected)}"


def check_utf8(stream: IO[bytes]) -> None:
    """Read the whole file once, in chunks, so a bad byte fails the import before any write."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    while True:
        chunk = stream.read(_CHUNK)
        try:
            decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as exc:
            raise ImportFileError(
                f"the file is not UTF-8 text (bad byte at offset {offset + exc.start}); "
                "save it as 'CSV UTF-8'"
            ) from exc
        if not chunk:
            break
        offset += len(chunk)
    stream.seek(0)


def read_rows(stream: IO[bytes]) -> Iterator[tuple[int, dict[str, str]]]:
    """(1-based data row number, {column: cell}) for each non-blank row; a BOM is dropped,
    and so is the quote the export puts before a cell that starts like a formula."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    try:
        reader = csv.reader(text)
        header = next(reader, None)
        if header is None:
            raise ImportFileError("the file is empty; the first row must name the columns")
        names = [h.strip().lower() for h in header]
        if "name" not in names:
            raise ImportFileError(f"no 'name' column; columns are {', '.join(COLUMNS)}")
        for number, cells in enumerate(reader, start=1):
            if not any(c.strip() for c in cells):
                continue
            yield (
                number,
                {n: unescape_cell(c.strip()) for n, c in zip(names, cells, strict=False) if n},
            )
    finally:
        text.detach()


async def import_csv(
    sessions: SessionFactory,
    stream: IO[bytes],
    *,
    clock: Callable[[], datetime],
    default_region: str | None,
    lead_team_id: int | None = None,
    erasure_key: str | None = None,
) -> ImportSummary:
    """Import every row of `stream`; raise ImportFileError when the file itself is unusable."""
    check_utf8(stream)
    summary = ImportSummary()
    async with sessions() as session:
        for number, row in read_rows(stream):
            try:
                async with session.begin_nested():
                    created = await import_row(
                        session,
                        row,
                        now=clock(),
                        default_region=default_region,
                        lead_team_id=lead_team_id,
                        erasure_key=erasure_key,
                    )
            except RowRejected as exc:
                summary.rejected.append({"row": number, "reason": str(exc)})
                continue
            if created:
                summary.created += 1
            else:
                summary.updated += 1
            if number % COMMIT_EVERY == 0:
                await session.commit()
        await session.commit()
    return summary


async def import_row(
    session: AsyncSession,
    row: dict[str, str],
    *,
    now: datetime,
    default_region: str | None,
    lead_team_id: int | None,
    erasure_key: str | None = None,
) -> bool:
    """Create or update the supporter one row describes; True when created."""
    columns = [c for c in ADDRESS_COLUMNS if row.get(c)]
    fields: dict[str, Any] = {"name": row.get("name", "")}
    if not fields["name"]:
        raise RowRejected("name: a name is required")
    if not columns:
        raise RowRejected("no address: give at least one of phone, whatsapp, telegram, email")
    for name in LIST_COLUMNS:
        if row.get(name):
            fields[name] = [part.strip() for part in row[name].split("|") if part.strip()]
    for name in TEXT_COLUMNS:
        if row.get(name):
            fields[name] = row[name]
    for name in FLAG_COLUMNS:
        value = (row.get(name) or "").strip().lower()
        if value in _TRUE or value in _FALSE:
            fields[name] = value in _TRUE
        elif value:
            raise RowRejected(f"{name}: give true or false")
    try:
        given = normalize_addresses([(ADDRESS_COLUMNS[c], row[c]) for c in columns], default_region)
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
            await create_supporter(
                session,
                fields,
                now=now,
                default_region=default_region,
                source="import",
                lead_team_id=lead_team_id,
                erasure_key=erasure_key,
            )
            return True
        supporter_id = owners.pop()
        if lead_team_id is not None and not await session.get(
            TeamMembership, (supporter_id, lead_team_id)
        ):
            raise RowRejected("conflict (409): an address belongs to a supporter outside your team")
        fields["addresses"] = given + _kept(
            (await addresses_by_supporter(session, [supporter_id]))[supporter_id], given
        )
        supporter = await session.get(Supporter, supporter_id)
        assert supporter is not None
        await update_supporter(
            session,
            supporter,
            fields,
            now=now,
            default_region=default_region,
            lead_team_id=lead_team_id,
            erasure_key=erasure_key,
        )
        return False
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
    return str(loc[0])

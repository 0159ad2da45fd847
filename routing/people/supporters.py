"""Creating, changing and forgetting supporters: the rules the REST API, the CSV import and
the CLI share (canonical addresses, one phone number per supporter, teams by id or name)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.base import ALL_CHANNELS
from routing.people.addresses import PHONE_CHANNELS, InvalidAddress, normalize_address
from routing.people.do_not_contact import bar_if_listed
from routing.people.fields import FieldValueError, check_values
from routing.webhooks.events import emit
from storage.field_values import set_values
from storage.models import Supporter, SupporterAddress, SupporterTag, Team, TeamMembership
from storage.queries import find_team

Loc = tuple[str | int, ...]
# Fields a create or patch may carry; a patch replaces exactly the ones it gives.
FIELDS = (
    "name",
    "addresses",
    "preferred_channels",
    "language",
    "timezone",
    "tags",
    "teams",
    "assigned_to",
    "data_saver",
    "fields",  # custom fields: {name: value or None} (routing/people/fields.py)
)


class FieldError(ValueError):
    """An invalid value; `loc` names the field (e.g. ("addresses", 0, "address"))."""

    def __init__(self, loc: Loc, message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


class AddressTaken(Exception):
    """The address (or, for a phone number, its sms/whatsapp twin) is another supporter's."""

    def __init__(self, channel: str, address: str, supporter_id: int) -> None:
        super().__init__(f"{channel} address {address} already belongs to supporter {supporter_id}")
        self.channel = channel
        self.address = address
        self.supporter_id = supporter_id


class OutsideTeam(PermissionError):
    """A team lead tried to put a supporter into a team that is not theirs."""


def check_timezone(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {value!r} (use an IANA name like Africa/Nairobi)"
        ) from exc
    return value


def check_channels(values: Iterable[str], loc: Loc = ("preferred_channels",)) -> list[str]:
    out: list[str] = []
    for i, value in enumerate(values):
        channel = value.strip().lower()
        if channel not in ALL_CHANNELS:
            raise FieldError(
                (*loc, i), f"unknown channel {value!r}; one of {', '.join(ALL_CHANNELS)}"
            )
        if channel not in out:
            out.append(channel)
    return out


def clean_tags(values: Iterable[str]) -> list[str]:
    out: list[str] = []
    for i, value in enumerate(values):
        tag = value.strip()
        if len(tag) > 100:
            raise FieldError(("tags", i), "a tag is at most 100 characters")
        if tag and tag not in out:
            out.append(tag)
    return out


def normalize_addresses(
    raw: Sequence[tuple[str, str]], default_region: str | None
) -> list[tuple[str, str]]:
    """Canonical (channel, address) pairs, at most one per channel."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for i, (channel, address) in enumerate(raw):
        if channel not in ALL_CHANNELS:
            raise FieldError(("addresses", i, "channel"), f"unknown channel {channel!r}")
        if channel in seen:
            raise FieldError(("addresses", i, "channel"), f"more than one {channel} address")
        seen.add(channel)
        try:
            out.append((channel, normalize_address(channel, address, default_region)))
        except InvalidAddress as exc:
            raise FieldError(("addresses", i, "address"), str(exc)) from exc
    return out


async def owners_of(
    session: AsyncSession, addresses: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """Who holds each address; a phone number is held by whoever has it on sms or whatsapp."""
    owners: dict[tuple[str, str], int] = {}
    for channel, address in addresses:
        channels = sorted(PHONE_CHANNELS) if channel in PHONE_CHANNELS else [channel]
        found = (
            await session.exec(
                select(SupporterAddress.supporter_id).where(
                    SupporterAddress.address == address,
                    col(SupporterAddress.channel).in_(channels),
                )
            )
        ).first()
        if found is not None:
            owners[(channel, address)] = found
    return owners


async def check_available(
    session: AsyncSession, addresses: Iterable[tuple[str, str]], supporter_id: int | None
) -> None:
    for (channel, address), owner in (await owners_of(session, addresses)).items():
        if owner != supporter_id:
            raise AddressTaken(channel, address, owner)


async def resolve_teams(
    session: AsyncSession,
    refs: Sequence[str | int],
    found: dict[str | int, Team | None] | None = None,
) -> list[Team]:
    """The teams `refs` name (FieldError naming one that does not exist); `found`: teams
    already looked up, by ref (a long import looks each up once)."""
    teams: list[Team] = []
    for i, ref in enumerate(refs):
        if found is None:
            team = await find_team(session, ref)
        else:
            if ref not in found:
                found[ref] = await find_team(session, ref)
            team = found[ref]
        if team is None:
            raise FieldError(("teams", i), f"no team {ref!r}")
        if all(t.id != team.id for t in teams):
            teams.append(team)
    return teams


async def create_supporter(
    session: AsyncSession,
    fields: Mapping[str, Any],
    *,
    now: datetime,
    default_region: str | None,
    source: str = "api",
    lead_team_id: int | None = None,
    erasure_key: str | None,
) -> Supporter:
    """Add a supporter (flushed, not committed). `lead_team_id`: acting as that team's lead.
    An address on the do-not-contact list makes them opted out (`erasure_key`: its key)."""
    supporter = Supporter(name=fields["name"], source=source, created_at=now, updated_at=now)
    await _validate(session, fields, None, default_region, lead_team_id)
    session.add(supporter)
    await session.flush()
    given = dict(fields)
    if lead_team_id is not None:
        given["teams"] = [*(given.get("teams") or []), lead_team_id]
    await _apply(session, supporter, given, default_region, lead_team_id)
    await _listed(session, supporter, fields, default_region, erasure_key, now)
    await emit(session, "supporter.created", supporter_id=supporter.id, now=now)
    return supporter


async def update_supporter(
    session: AsyncSession,
    supporter: Supporter,
    fields: Mapping[str, Any],
    *,
    now: datetime,
    default_region: str | None,
    lead_team_id: int | None = None,
    erasure_key: str | None,
) -> Supporter:
    """Replace the given fields (an address list replaces the address set)."""
    await _validate(session, fields, supporter.id, default_region, lead_team_id)
    await _apply(session, supporter, fields, default_region, lead_team_id)
    await _listed(session, supporter, fields, default_region, erasure_key, now)
    supporter.updated_at = now
    session.add(supporter)
    await session.flush()
    return supporter


async def _listed(
    session: AsyncSession,
    supporter: Supporter,
    fields: Mapping[str, Any],
    default_region: str | None,
    erasure_key: str | None,
    now: datetime,
) -> None:
    """Opt out a supporter given an address of an erased, opted-out supporter."""
    addresses = normalize_addresses(fields.get("addresses") or [], default_region)
    await bar_if_listed(session, supporter, addresses, erasure_key=erasure_key, now=now)


async def delete_supporter(session: AsyncSession, supporter_id: int) -> None:
    """Forget a supporter: the database cascades to addresses, messages, outbox and the rest."""
    await session.exec(delete(Supporter).where(col(Supporter.id) == supporter_id))


async def _validate(
    session: AsyncSession,
    fields: Mapping[str, Any],
    supporter_id: int | None,
    default_region: str | None,
    lead_team_id: int | None,
) -> None:
    if "name" in fields and not (fields["name"] or "").strip():
        raise FieldError(("name",), "a name is required")
    if fields.get("timezone"):
        try:
            check_timezone(fields["timezone"])
        except ValueError as exc:
            raise FieldError(("timezone",), str(exc)) from exc
    if "preferred_channels" in fields:
        check_channels(fields["preferred_channels"] or [])
    if "tags" in fields:
        clean_tags(fields["tags"] or [])
    if "addresses" in fields:
        addresses = normalize_addresses(fields["addresses"] or [], default_region)
        await check_available(session, addresses, supporter_id)
    if "teams" in fields:
        teams = await resolve_teams(session, fields["teams"] or [])
        if lead_team_id is not None and any(t.id != lead_team_id for t in teams):
            raise OutsideTeam("a team lead may only add supporters to their own team")
    if fields.get("fields"):
        await _field_values(session, fields["fields"])


async def _field_values(session: AsyncSession, given: Mapping[str, Any]) -> dict[int, str | None]:
    try:
        return await check_values(session, given)
    except FieldValueError as exc:
        raise FieldError(("fields", exc.field), exc.message) from exc


async def _apply(
    session: AsyncSession,
    supporter: Supporter,
    fields: Mapping[str, Any],
    default_region: str | None,
    lead_team_id: int | None,
) -> None:
    assert supporter.id is not None
    sid = supporter.id
    if "name" in fields:
        supporter.name = fields["name"].strip()
    if "preferred_channels" in fields:
        supporter.preferred_channels = check_channels(fields["preferred_channels"] or [])
    for name in ("language", "timezone", "assigned_to"):
        if name in fields:
            setattr(supporter, name, fields[name] or None)
    if "data_saver" in fields:
        supporter.data_saver = bool(fields["data_saver"])
    session.add(supporter)
    if "addresses" in fields:
        await _replace_addresses(
            session, sid, normalize_addresses(fields["addresses"] or [], default_region)
        )
    if "tags" in fields:
        await session.exec(delete(SupporterTag).where(col(SupporterTag.supporter_id) == sid))
        for tag in clean_tags(fields["tags"] or []):
            session.add(SupporterTag(supporter_id=sid, tag=tag))
    if "teams" in fields:
        wanted = {t.id for t in await resolve_teams(session, fields["teams"] or [])}
        stale = delete(TeamMembership).where(col(TeamMembership.supporter_id) == sid)
        if lead_team_id is not None:
            # A lead manages membership of their own team only; other teams' stay.
            stale = stale.where(col(TeamMembership.team_id) == lead_team_id)
        await session.exec(stale)
        current = set(
            (
                await session.exec(
                    select(TeamMembership.team_id).where(TeamMembership.supporter_id == sid)
                )
            ).all()
        )
        for team_id in wanted - current:
            assert team_id is not None
            session.add(TeamMembership(supporter_id=sid, team_id=team_id))
    if fields.get("fields"):
        await session.flush()
        await set_values(session, sid, await _field_values(session, fields["fields"]))
    await session.flush()


async def _replace_addresses(
    session: AsyncSession, supporter_id: int, wanted: list[tuple[str, str]]
) -> None:
    # Rows that stay keep their per-channel facts (WhatsApp window, channel opt-out).
    rows = (
        await session.exec(
            select(SupporterAddress).where(SupporterAddress.supporter_id == supporter_id)
        )
    ).all()
    keep = set(wanted)
    for row in rows:
        if (row.channel, row.address) not in keep:
            await session.delete(row)
    await session.flush()
    have = {(row.channel, row.address) for row in rows}
    for channel, address in wanted:
        if (channel, address) not in have:
            session.add(
                SupporterAddress(supporter_id=supporter_id, channel=channel, address=address)
            )

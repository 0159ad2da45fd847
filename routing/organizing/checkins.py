"""Recurring check-ins: a team's weekly prompt, and nudges for members who went quiet.

A check-in's occurrences are at `weekday` (0 = Monday) and `local_time` in its own
timezone, else the organization's (RALLYPOINT_DEFAULT_TIMEZONE), one for the whole team
so the conversation happens together (routing/organizing/checkin_schedule.py). It is due when its
latest occurrence is after its last run (or its creation) and not in the future; a
scheduler that was down for weeks runs it once when it comes back, because only the
latest occurrence counts. The prompt goes out as a team announcement of kind "checkin"
(GET /api/v1/announcements/{id} counts it).

A run's nudges belong to it: they are written in the run's transaction, with `sent_by`
naming the run by its prompt's announcement (`run_sender`), so cancelling that
announcement stops them too (routing/organizing/checkin_cancel.py), and a nudge a cancel
stopped does not count as the member having been nudged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import false, func, literal, literal_column, or_, tuple_, update
from sqlalchemy import select as sa_select
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from routing.context import AppContext
from routing.organizing.checkin_schedule import as_utc, is_due, last_run_is
from routing.outbound.audience import Audience
from routing.outbound.cancel import CANCELLED
from routing.outbound.fanout import fan_out
from routing.outbound.queue import PRIORITY_BULK, queue_message
from storage.models import (
    SUPPORTER_ACTIVITY,
    Announcement,
    Checkin,
    Message,
    Supporter,
    Team,
    TeamMembership,
)

log = logging.getLogger(__name__)

DEFAULT_INACTIVE_DAYS = 14


def org_timezone(ctx: AppContext) -> ZoneInfo:
    return ZoneInfo(ctx.settings.default_timezone)


@dataclass
class CheckinRun:
    checkin_id: int
    announcement_id: int
    prompts: int = 0
    nudges: int = 0


@dataclass
class CheckinReport:
    runs: list[CheckinRun] = field(default_factory=list)


async def team_members(session: AsyncSession, team_id: int) -> list[Supporter]:
    rows = await session.exec(
        select(Supporter)
        .join(TeamMembership, col(TeamMembership.supporter_id) == col(Supporter.id))
        .where(TeamMembership.team_id == team_id)
        .order_by(col(Supporter.id))
    )
    return list(rows.all())


def inactive_since(supporter: Supporter) -> datetime:
    """When the supporter last wrote or came to an event, or when they were added if
    neither."""
    since = as_utc(supporter.last_inbound_at or supporter.created_at)
    if supporter.last_attended_at is not None:
        since = max(since, as_utc(supporter.last_attended_at))
    return since


def run_sender(announcement_id: int) -> str:
    """The `sent_by` of a check-in run's nudges: the run, named by its prompt's id."""
    return f"checkin_run:{announcement_id}"


def run_of(sent_by: str | None) -> int | None:
    """The run (its prompt's announcement id) a nudge's `sent_by` names, if any."""
    prefix, _, number = (sent_by or "").partition(":")
    return int(number) if prefix == "checkin_run" and number.isdecimal() else None


async def nudged_since(session: AsyncSession, supporter_id: int, since: datetime) -> bool:
    found = (
        await session.exec(
            select(Message.id).where(
                Message.supporter_id == supporter_id,
                Message.kind == "nudge",
                col(Message.created_at) > since,
                # A nudge its run's cancel stopped never reached them.
                or_(
                    col(Message.status) != "skipped",
                    func.coalesce(col(Message.error), "") != CANCELLED,
                ),
            )
        )
    ).first()
    return found is not None


async def claim(session: AsyncSession, checkin: Checkin, now: datetime) -> bool:
    """Mark the run in the database first, so two schedulers never both run it, and only
    while its schedule is still the one it was found due by (a PATCH of its timezone, day
    or time committed meanwhile makes the claim fail, to be judged again next round)."""
    result = await session.exec(
        update(Checkin)
        .where(
            col(Checkin.id) == checkin.id,
            last_run_is(checkin.last_run_at),
            col(Checkin.weekday) == checkin.weekday,
            col(Checkin.local_time) == checkin.local_time,
            col(Checkin.timezone).is_(None)
            if checkin.timezone is None
            else col(Checkin.timezone) == checkin.timezone,
        )
        .values(last_run_at=now)
    )
    return bool(result.rowcount == 1)


async def start_checkin(
    session: AsyncSession, ctx: AppContext, checkin: Checkin, now: datetime
) -> CheckinRun:
    """Write the prompt as a team announcement (kind "checkin", fanned out after commit)
    and queue the nudges that are due."""
    assert checkin.id is not None
    announcement = Announcement(
        body=checkin.prompt,
        audience=Audience(teams=(checkin.team_id,)).as_dict(),
        kind="checkin",
        team_scope_id=checkin.team_id,
        created_at=now,
    )
    session.add(announcement)
    await session.flush()
    assert announcement.id is not None
    run = CheckinRun(checkin.id, announcement_id=announcement.id)
    if not checkin.nudge_text:
        return run
    for member in await team_members(session, checkin.team_id):
        if member.opted_out or not await nudge_is_due(session, member, checkin.inactive_days, now):
            continue
        first_name = (member.name.split() or [member.name])[0]
        text = checkin.nudge_text.replace("{name}", first_name)
        await queue_message(
            session,
            ctx,
            member,
            text,
            kind="nudge",
            priority=PRIORITY_BULK,
            sent_by=run_sender(announcement.id),
        )
        run.nudges += 1
    return run


async def nudge_is_due(
    session: AsyncSession, member: Supporter, inactive_days: int, now: datetime
) -> bool:
    """Inactive for `inactive_days` and not nudged since they last wrote (once per lull)."""
    assert member.id is not None
    since = inactive_since(member)
    if now - since < timedelta(days=inactive_days):
        return False
    return not await nudged_since(session, member.id, since)


async def queued_prompts(ctx: AppContext, announcement_id: int) -> int:
    async with ctx.sessions() as session:
        found = await session.exec(
            select(func.count()).where(
                col(Message.announcement_id) == announcement_id, Message.status == "queued"
            )
        )
        return int(found.one())


async def run_due_checkins(ctx: AppContext) -> CheckinReport:
    """Run every check-in that is due now, each claimed in its own transaction.

    The prompt goes out through the announcement fan-out (batched, opted-out members
    counted as skipped); a crash after the claim leaves a pending announcement that the
    fan-out resumes, so the prompt is neither lost nor sent twice.
    """
    report = CheckinReport()
    tz = org_timezone(ctx)
    now = ctx.clock()
    async with ctx.sessions() as session:
        checkins = list((await session.exec(select(Checkin).order_by(col(Checkin.id)))).all())
    for candidate in checkins:
        if not is_due(candidate, tz, now):
            continue
        async with ctx.sessions() as session:
            checkin = await session.get(Checkin, candidate.id)
            if checkin is None or not is_due(checkin, tz, now):
                continue
            if not await claim(session, checkin, now):
                await session.rollback()
                continue
            run = await start_checkin(session, ctx, checkin, now)
            await session.commit()
        await fan_out(ctx, run.announcement_id)
        run.prompts = await queued_prompts(ctx, run.announcement_id)
        log.info("check-in %s ran: prompts=%s nudges=%s", run.checkin_id, run.prompts, run.nudges)
        report.runs.append(run)
    return report


@dataclass(frozen=True)
class InactiveSupporter:
    supporter_id: int
    name: str
    team: str | None
    last_inbound_at: datetime | None
    days_inactive: int
    since: datetime  # the sort key: last inbound or attendance, else when added


def supporter_activity() -> Any:
    """SUPPORTER_ACTIVITY as a column, typed as the times it compares (the index's text)."""
    times = SQLModel.metadata.tables["supporters"].c["created_at"].type
    return literal_column(SUPPORTER_ACTIVITY, times)


async def inactive_supporters(
    session: AsyncSession,
    now: datetime,
    days: int,
    team: Team | None = None,
    *,
    limit: int | None = None,
    after: tuple[datetime, int] | None = None,
) -> list[InactiveSupporter]:
    """Opted-in supporters with no inbound message and no event attended for `days` days,
    quietest first (then by id), after the key `after` (their activity, id); filtered and
    ordered in SQL on ix_supporters_quiet, so a page reads only its own rows."""
    activity = supporter_activity()
    first_team = (
        sa_select(col(Team.name))
        .where(
            col(Team.id)
            == sa_select(func.min(col(TeamMembership.team_id)))
            .where(col(TeamMembership.supporter_id) == col(Supporter.id))
            .correlate(Supporter)
            .scalar_subquery()
        )
        .scalar_subquery()
    )
    query = sa_select(
        col(Supporter.id),
        col(Supporter.name),
        col(Supporter.last_inbound_at),
        activity,
        first_team if team is None else literal(team.name),
    ).where(col(Supporter.opted_out) == false(), activity <= now - timedelta(days=days))
    if team is not None:
        query = query.join(
            TeamMembership,
            (col(TeamMembership.supporter_id) == col(Supporter.id))
            & (col(TeamMembership.team_id) == team.id),
        )
    if after is not None:
        # The plain bound starts the index walk there (SQLite takes the row value only as
        # a filter); the row value then drops the rows of that time already given.
        query = query.where(
            activity >= after[0], tuple_(activity, col(Supporter.id)) > tuple_(*after)
        )
    query = query.order_by(activity, col(Supporter.id))
    if limit is not None:
        query = query.limit(limit)
    return [
        InactiveSupporter(
            supporter_id=supporter_id,
            name=name,
            team=team_name,
            last_inbound_at=as_utc(last_inbound) if last_inbound else None,
            days_inactive=(now - as_utc(since)).days,
            since=as_utc(since),
        )
        for supporter_id, name, last_inbound, since, team_name in await session.execute(query)
    ]


async def default_inactive_days(session: AsyncSession, team: Team | None) -> int:
    """The team's check-in setting (the shortest, if it has several), else 14."""
    if team is None:
        return DEFAULT_INACTIVE_DAYS
    rows = (
        await session.exec(select(Checkin.inactive_days).where(Checkin.team_id == team.id))
    ).all()
    return min(rows) if rows else DEFAULT_INACTIVE_DAYS

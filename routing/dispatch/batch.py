"""Claiming a chunk of outbox rows and getting it ready to send, in ONE transaction.

The rows are leased, everything the send-time checks need (messages, supporters,
addresses) is loaded with one query per table, and a `queued` MessageAttempt is written
for every row that is to go out, all before the commit: the attempt exists before the
provider is called, which is what crash recovery relies on (an attempt left without a
provider id is settled as interrupted and the message is sent again).

Rows that are not to be sent now leave here too: messages no longer queued lose their
outbox row, messages of a cancelled announcement or check-in run (a retry or fallback of
a send that was in flight when it was cancelled, a row whose lease ran out) and of
opted-out supporters are skipped, quiet hours reschedule, and rows whose address can no
longer be used go through `record_failure` (retry, fall back or fail).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, Table, bindparam, delete, or_, update
from sqlalchemy import select as sa_select
from sqlmodel import SQLModel, col
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.base import OutboundMessage
from routing.context import AppContext
from routing.dispatch.claim import lock_due_rows
from routing.dispatch.outcome import INTERRUPTED, address_blocker, finish, record_failure
from routing.organizing.checkins import run_of
from routing.outbound.cancel import CANCELLED
from routing.outbound.compose import compose, prepare_email_threading
from routing.outbound.links import Lighten, lighten, needs_page, new_public_token, page_url
from routing.outbound.quiet_hours import hold_until
from routing.sms_routes import adapter_for
from storage.bulk_insert import BulkWriter
from storage.models import Message, MessageAttempt, OutboxItem

log = logging.getLogger(__name__)

# The STOP confirmation goes to someone who just opted out (queue_message allow_opted_out).
SENT_WHEN_OPTED_OUT = frozenset({"consent"})
ATTEMPTS: Table = SQLModel.metadata.tables["message_attempts"]
OUTBOX: Table = SQLModel.metadata.tables["outbox"]
MESSAGES: Table = SQLModel.metadata.tables["messages"]
SUPPORTERS: Table = SQLModel.metadata.tables["supporters"]
ADDRESSES: Table = SQLModel.metadata.tables["supporter_addresses"]
ANNOUNCEMENTS: Table = SQLModel.metadata.tables["announcements"]


@dataclass(frozen=True)
class Ready:
    """A claimed row whose attempt is stored: hand `outbound` to the provider."""

    outbox_id: int
    message_id: int
    supporter_id: int
    channel: str
    address: str
    attempt_id: int
    lease_until: datetime
    outbound: OutboundMessage
    # The provider that sends it (its attempt records the same): SMS has more than one,
    # picked per number by RALLYPOINT_SMS_ROUTES (routing/sms_routes.py).
    provider: str | None = None
    # The announcement whose cancel stops it (its own, or a nudge's check-in run), checked
    # again just before the send: it may be cancelled meanwhile.
    announcement_id: int | None = None
    # A crash interrupted an earlier try to this same address, started then: the provider
    # may have taken it, so it is asked first where it can say (channels.base.SentLookup).
    interrupted_since: datetime | None = None


@dataclass
class _Plan:
    # (outbox id, message row or Message, use_template, how to lighten it or None, provider)
    send: list[tuple[int, Any, bool, Lighten | None, str | None]]
    held: list[tuple[int, datetime]]
    dead: list[int]
    # Messages with tries settled as interrupted in this claim: (message id, channel,
    # address) -> when the earliest unanswered try there started.
    interrupted: dict[tuple[int, str, str], datetime]


# What the checks and `compose` read: plain rows, not ORM objects, which cost several
# times more to load at a thousand a second.
_MESSAGE_COLUMNS = tuple(
    MESSAGES.c[name]
    for name in (
        "id",
        "supporter_id",
        "status",
        "public_token",
        "kind",
        "channel",
        "address",
        "body",
        "subject",
        "attachments",
        "template",
        "email_message_id",
        "in_reply_to",
        "references",
        "announcement_id",
        "sent_by",
    )
)


def cancelled_with(message: Any) -> int | None:
    """The announcement whose cancel stops this message: its own, or for a check-in nudge
    (which has none) its run's prompt (routing/organizing/checkin_cancel.py)."""
    return run_of(message.sent_by) if message.kind == "nudge" else message.announcement_id


async def claim_ready(
    ctx: AppContext, owner: str, limit: int, lease_seconds: float, *, random: Callable[[], float]
) -> tuple[int, list[Ready]]:
    """Lease up to `limit` due rows (replies first, then oldest due); returns how many
    were claimed and those ready to send, in claim order."""
    if limit <= 0:
        return 0, []
    now = ctx.clock()
    until = now + timedelta(seconds=lease_seconds)
    async with ctx.sessions() as session:
        rows = await lock_due_rows(session, now, limit)
        if not rows:
            await session.rollback()
            return 0, []
        plan = await _check(session, ctx, rows, now, random)
        ready = await _store(session, owner, until, now, plan)
        await session.commit()
    return len(rows), ready


async def _check(
    session: AsyncSession,
    ctx: AppContext,
    rows: Sequence[Row[Any]],
    now: datetime,
    random: Callable[[], float],
) -> _Plan:
    """The send-time checks for every row, with one query per table."""
    message_ids = [row.message_id for row in rows]
    messages = {
        m.id: m
        for m in await session.execute(
            sa_select(*_MESSAGE_COLUMNS, ANNOUNCEMENTS.c.state.label("announcement_state"))
            .select_from(
                MESSAGES.outerjoin(ANNOUNCEMENTS, ANNOUNCEMENTS.c.id == MESSAGES.c.announcement_id)
            )
            .where(MESSAGES.c.id.in_(message_ids))
        )
    }
    cancelled_runs = await _cancelled_runs(session, messages.values())
    supporter_ids = {m.supporter_id for m in messages.values()}
    supporters = {
        s.id: s
        for s in await session.execute(
            sa_select(
                SUPPORTERS.c.id,
                SUPPORTERS.c.opted_out,
                SUPPORTERS.c.timezone,
                SUPPORTERS.c.data_saver,
            ).where(SUPPORTERS.c.id.in_(supporter_ids))
        )
    }
    addresses: dict[int, list[Any]] = {}
    for address in await session.execute(
        sa_select(
            ADDRESSES.c.supporter_id,
            ADDRESSES.c.channel,
            ADDRESSES.c.address,
            ADDRESSES.c.opted_out,
            ADDRESSES.c.last_inbound_at,
        ).where(ADDRESSES.c.supporter_id.in_(supporter_ids))
    ):
        addresses.setdefault(address.supporter_id, []).append(address)
    interrupted = await _settle_interrupted(session, message_ids)

    plan = _Plan(send=[], held=[], dead=[], interrupted=interrupted)
    settings = ctx.settings
    for row in rows:
        message: Any = messages.get(row.message_id)
        if message is None or message.status != "queued" or not message.channel:
            plan.dead.append(row.id)
            continue
        if message.announcement_state == CANCELLED or (
            message.kind == "nudge" and cancelled_with(message) in cancelled_runs
        ):
            await finish(session, ctx, await _orm(session, message.id), "skipped", CANCELLED)
            continue
        supporter = supporters[message.supporter_id]
        if supporter.opted_out and message.kind not in SENT_WHEN_OPTED_OUT:
            await finish(session, ctx, await _orm(session, message.id), "skipped", "opted out")
            continue
        held = hold_until(
            now=now,
            kind=message.kind,
            priority=row.priority,
            timezone=supporter.timezone,
            default_timezone=settings.default_timezone,
            quiet_start=settings.quiet_hours_start,
            quiet_end=settings.quiet_hours_end,
        )
        if held is not None:
            plan.held.append((row.id, held))
            log.info("message %s held for quiet hours until %s", message.id, held)
            continue
        adapter = adapter_for(ctx.registry, settings.sms_routes, message.channel, message.address)
        problem, use_template = address_blocker(
            addresses.get(message.supporter_id, []), message, adapter, now
        )
        if problem is not None:
            orm = await _orm(session, message.id)
            await record_failure(session, ctx, orm, None, problem, random=random)
            continue
        if message.channel == "email":
            message = await _orm(session, message.id)
            await prepare_email_threading(session, message, settings)
        how = None
        attachments = message.attachments or []
        if needs_page(attachments, message.body, message.channel, supporter.data_saver):
            if not message.public_token:
                message = await _orm(session, message.id)
                message.public_token = new_public_token()
                session.add(message)
            assert adapter is not None
            how = Lighten(
                link=page_url(settings.public_url, message.public_token),
                data_saver=bool(supporter.data_saver),
                media_ok=adapter.capabilities(message.channel).media,
            )
        plan.send.append(
            (row.id, message, use_template, how, adapter.provider if adapter else None)
        )
    return plan


async def _cancelled_runs(session: AsyncSession, messages: Iterable[Any]) -> set[int]:
    """The cancelled check-in runs among those of the chunk's nudges (no query without)."""
    runs = {cancelled_with(m) for m in messages if m.kind == "nudge"} - {None}
    if not runs:
        return set()
    found = await session.execute(
        sa_select(ANNOUNCEMENTS.c.id).where(
            ANNOUNCEMENTS.c.id.in_(runs), ANNOUNCEMENTS.c.state == CANCELLED
        )
    )
    return set(found.scalars())


async def _orm(session: AsyncSession, message_id: int) -> Message:
    """The ORM row, for the paths that change more than the outbox (rare)."""
    message = await session.get(Message, message_id)
    assert message is not None
    return message


async def _settle_interrupted(
    session: AsyncSession, message_ids: list[int]
) -> dict[tuple[int, str, str], datetime]:
    """Attempts a crashed dispatcher left without a provider id: their outcome is
    unknown, so they are closed as interrupted and the message is sent again (after asking
    the provider, where it can say). Returns, for each such message and each address it
    was tried at, its earliest try without an answer (this one or one an earlier crash
    interrupted): the provider may have taken any of them."""
    rows = (
        await session.execute(
            sa_select(
                ATTEMPTS.c.id,
                ATTEMPTS.c.message_id,
                ATTEMPTS.c.status,
                ATTEMPTS.c.channel,
                ATTEMPTS.c.address,
                ATTEMPTS.c.created_at,
            )
            .where(
                ATTEMPTS.c.message_id.in_(message_ids),
                ATTEMPTS.c.provider_message_id.is_(None),
                or_(ATTEMPTS.c.status == "queued", ATTEMPTS.c.error == INTERRUPTED),
            )
            .order_by(ATTEMPTS.c.id.desc())
        )
    ).all()
    stale = [row for row in rows if row.status == "queued"]
    if not stale:
        return {}
    for row in stale:
        log.warning("message %s: attempt %s was interrupted", row.message_id, row.id)
    await session.exec(
        update(MessageAttempt)
        .where(col(MessageAttempt.id).in_([row.id for row in stale]))
        .values(status="failed", error=INTERRUPTED)
    )
    now_stale = {row.message_id for row in stale}
    # Newest first: the last one written per message is its earliest.
    return {
        (row.message_id, row.channel, row.address): row.created_at
        for row in rows
        if row.message_id in now_stale
    }


async def _store(
    session: AsyncSession, owner: str, until: datetime, now: datetime, plan: _Plan
) -> list[Ready]:
    if plan.dead:
        await session.exec(delete(OutboxItem).where(col(OutboxItem.id).in_(plan.dead)))
    if plan.held:
        await session.execute(
            update(OUTBOX)
            .where(OUTBOX.c.id == bindparam("row_id"))
            .values(due_at=bindparam("due"), lease_owner=None, lease_until=None),
            [{"row_id": row_id, "due": due} for row_id, due in plan.held],
        )
    if not plan.send:
        await session.flush()
        return []
    # The ORM's pending changes (skips, failures) go first; the rest is set-based.
    await session.flush()
    outbox_ids = [send[0] for send in plan.send]
    await session.execute(
        update(OUTBOX)
        .where(OUTBOX.c.id.in_(outbox_ids))
        .values(lease_owner=owner, lease_until=until, attempts=OUTBOX.c.attempts + 1)
    )
    writer = BulkWriter(await session.connection())
    bind = writer.bind
    created = bind(ATTEMPTS, "created_at", now)
    # Sealed per row when RALLYPOINT_ENCRYPTION_KEYS is set (storage/sealed_types.py).
    seal = writer.encoder(ATTEMPTS, "address") or _as_given
    await writer.insert(
        ATTEMPTS,
        ("message_id", "channel", "address", "provider", "status", "created_at"),
        [
            (m.id, m.channel, seal(m.address or ""), p, "queued", created)
            for _, m, _, _, p in plan.send
        ],
    )
    # The only queued attempts of these messages now: the stale ones were settled above
    # and the rows are ours (locked on PostgreSQL, the write lock on SQLite).
    attempt_ids = dict(
        (
            await session.execute(
                sa_select(ATTEMPTS.c.message_id, ATTEMPTS.c.id).where(
                    ATTEMPTS.c.message_id.in_([send[1].id for send in plan.send]),
                    ATTEMPTS.c.status == "queued",
                    ATTEMPTS.c.provider_message_id.is_(None),
                )
            )
        ).all()
    )
    ready = []
    for outbox_id, message, use_template, how, provider in plan.send:
        started = plan.interrupted.get((message.id, message.channel, message.address or ""))
        outbound = compose(message, use_template=use_template)
        if how is not None:
            outbound = lighten(outbound, message.attachments or [], how)
        ready.append(
            Ready(
                outbox_id=outbox_id,
                message_id=message.id,
                supporter_id=message.supporter_id,
                channel=message.channel,
                address=message.address or "",
                attempt_id=attempt_ids[message.id],
                lease_until=until,
                outbound=outbound,
                provider=provider,
                announcement_id=cancelled_with(message),
                interrupted_since=started,
            )
        )
    return ready


def _as_given(value: Any) -> Any:
    return value

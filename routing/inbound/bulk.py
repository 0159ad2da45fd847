"""Set-based ingestion of many inbound messages in one transaction.

The same outcome as `routing.inbound.store.store_inbound` for each message (dedupe on the
provider id, a supporter per unknown address, one conversation each, the message row,
last-inbound times and unread counts), in a handful of statements instead of a handful
per message. Messages that an automation might act on (a keyword, a join, a supporter
in onboarding or with an open poll, a Telegram deep link) go through `store_inbound`
itself, one by one, in the same transaction, so every reaction still runs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.base import InboundMessage
from channels.graphemes import truncate
from routing.context import AppContext
from routing.inbound.fast_way import Known, match, person_key, slow_people
from routing.inbound.store import store_inbound
from routing.organizing.reactions import AWAITING, awaiting_params
from routing.people.addresses import PHONE_CHANNELS
from routing.people.do_not_contact import barred
from routing.webhooks.events import emit_many
from storage.models import Conversation, Message, Supporter, SupporterAddress
from storage.sealed_types import pair_reader, stored_address
from storage.search_terms import TERMS, term_rows

MESSAGES = Message.__table__  # type: ignore[attr-defined]
SUPPORTERS = Supporter.__table__  # type: ignore[attr-defined]
ADDRESSES = SupporterAddress.__table__  # type: ignore[attr-defined]
CONVERSATIONS = Conversation.__table__  # type: ignore[attr-defined]


@dataclass
class Resolved:
    supporter_id: int
    address_id: int


async def existing_ids(
    session: AsyncSession, events: Sequence[InboundMessage]
) -> set[tuple[str, str]]:
    ids = {e.provider_message_id for e in events}
    # Both columns of the unique (channel, provider_message_id) index, or it is scanned whole.
    rows = await session.execute(
        select(MESSAGES.c.channel, MESSAGES.c.provider_message_id).where(
            MESSAGES.c.channel.in_({e.channel for e in events}),
            MESSAGES.c.provider_message_id.in_(ids),
        )
    )
    return {(r[0], r[1]) for r in rows}


async def known_addresses(session: AsyncSession, events: Sequence[InboundMessage]) -> Known:
    """(channel, address) -> (address id, supporter id) for the senders we know."""
    channels: set[str] = {e.channel for e in events}
    if channels & PHONE_CHANNELS:  # `match` looks a phone up on the other phone channel too
        channels |= PHONE_CHANNELS
    addresses = {e.address for e in events}
    # Both columns of the unique (channel, address) index, or it is scanned whole.
    rows = await session.execute(
        select(
            ADDRESSES.c.channel,
            stored_address(ADDRESSES.c.address),  # read raw: no decryption per row
            ADDRESSES.c.id,
            ADDRESSES.c.supporter_id,
        )
        .where(ADDRESSES.c.channel.in_(channels), ADDRESSES.c.address.in_(addresses))
        .order_by(ADDRESSES.c.id)
    )
    read = pair_reader(ADDRESSES.c.address.type.label, addresses)
    found: Known = {}
    for channel, stored, address_id, supporter_id in rows:
        found.setdefault((channel, read(stored)), (address_id, supporter_id))
    return found


async def awaited_supporters(
    session: AsyncSession, supporter_ids: set[int], now: datetime
) -> set[int]:
    """Those of `supporter_ids` an automation waits on (`reactions.AWAITING`)."""
    if not supporter_ids or AWAITING is None:
        return set()
    rows = await session.execute(AWAITING, awaiting_params(sorted(supporter_ids), now))
    return {int(sid) for sid in rows.scalars()}


async def store_inbound_many(
    session: AsyncSession, ctx: AppContext, events: Sequence[InboundMessage]
) -> list[int | None]:
    """Store `events` (in order); per event its new message id, or None for a duplicate."""
    now = ctx.clock()
    results: list[int | None] = [None] * len(events)
    seen = await existing_ids(session, events)
    fresh: list[int] = []
    for i, event in enumerate(events):
        key = (event.channel, event.provider_message_id)
        if key not in seen:
            seen.add(key)
            fresh.append(i)
    if not fresh:
        return results
    known = await known_addresses(session, [events[i] for i in fresh])
    matched = {i: match(known, events[i]) for i in fresh}
    # Whoever an automation might act on goes the one-by-one way, all of their messages.
    ids = {sid for _, sid in matched.values() if sid is not None}
    awaited = await awaited_supporters(session, ids, now)
    # New senders on the do-not-contact list are created opted out, one by one.
    new = [(events[i].channel, events[i].address) for i in fresh if matched[i][1] is None]
    listed = await barred(session, ctx.settings.erasure_key, new, now)
    people = slow_people([events[i] for i in fresh], known, awaited, ctx.settings, listed)
    slow: list[int] = []
    fast: list[int] = []
    for i in fresh:
        (slow if person_key(events[i]) in people else fast).append(i)
    if fast:
        stored = await _store_fast(session, ctx, [events[i] for i in fast], known, now)
        for i, message_id in zip(fast, stored, strict=True):
            results[i] = message_id
    for i in slow:
        message = await store_inbound(session, ctx, events[i])
        results[i] = message.id if message is not None else None
    return results


async def allocate_ids(session: AsyncSession, table: Any, count: int) -> list[int]:
    """`count` fresh primary keys for `table`, so rows can be inserted with executemany.

    (RETURNING in input order makes SQLAlchemy insert one row at a time on SQLite.)
    On SQLite the transaction holds the write lock from its start (BEGIN IMMEDIATE), so
    max(id) + 1 onwards is ours, as SQLite itself would have chosen them; on PostgreSQL
    the ids come from the column's sequence.
    """
    if count == 0:
        return []
    if (await session.connection()).dialect.name == "postgresql":
        rows = await session.execute(
            text(
                f"SELECT nextval(pg_get_serial_sequence('{table.name}', 'id')) "  # noqa: S608
                "FROM generate_series(1, :n)"
            ),
            {"n": count},
        )
        return [int(r[0]) for r in rows]
    top = (await session.execute(select(func.max(table.c.id)))).scalar() or 0
    return list(range(int(top) + 1, int(top) + 1 + count))


async def _returning_ids(
    session: AsyncSession, table: Any, rows: list[dict[str, Any]]
) -> list[int]:
    """Insert `rows` (executemany); their new ids, in order."""
    ids = await allocate_ids(session, table, len(rows))
    if rows:
        await session.execute(
            insert(table), [{**row, "id": i} for row, i in zip(rows, ids, strict=True)]
        )
    return ids


def new_people(known: Known, events: Sequence[InboundMessage]) -> list[tuple[str, InboundMessage]]:
    """The senders nobody knows yet, once per person (first message each)."""
    people: dict[str, InboundMessage] = {}
    for event in events:
        if match(known, event)[1] is None:
            people.setdefault(person_key(event), event)
    return list(people.items())


def resolve_senders(
    known: Known,
    events: Sequence[InboundMessage],
    person_ids: dict[str, int],
) -> tuple[dict[tuple[str, str], Resolved], list[tuple[tuple[str, str], int]]]:
    """Each sender's supporter and address: a known address, a phone known on the other
    phone channel (a new address for that supporter), or a new person (`person_ids`).
    Returns the resolved (channel, address)es and the addresses still to insert."""
    resolved: dict[tuple[str, str], Resolved] = {}
    new_rows: list[tuple[tuple[str, str], int]] = []
    pending: set[tuple[str, str]] = set()
    for event in events:
        key: tuple[str, str] = (event.channel, event.address)
        if key in resolved or key in pending:
            continue
        address_id, sid = match(known, event)
        sid = sid if sid is not None else person_ids[person_key(event)]
        if address_id is None:
            new_rows.append((key, sid))
            pending.add(key)
        else:
            resolved[key] = Resolved(sid, address_id)
    return resolved, new_rows


async def _store_fast(
    session: AsyncSession,
    ctx: AppContext,
    events: list[InboundMessage],
    known: Known,
    now: datetime,
) -> list[int]:
    people = new_people(known, events)
    new_ids = await _returning_ids(session, SUPPORTERS, [supporter_row(e, now) for _, e in people])
    person_ids = {key: sid for (key, _), sid in zip(people, new_ids, strict=True)}
    resolved, new_rows = resolve_senders(known, events, person_ids)
    address_ids = await _returning_ids(
        session, ADDRESSES, [address_row(s, k[0], k[1]) for k, s in new_rows]
    )
    for (new_key, sid), address_id in zip(new_rows, address_ids, strict=True):
        resolved[new_key] = Resolved(sid, address_id)
    terms = new_term_rows(people, new_ids, new_rows)
    if terms:
        await session.execute(insert(TERMS), terms)
    convos = await _conversations(session, {r.supporter_id for r in resolved.values()}, now)
    senders = [resolved[(e.channel, e.address)] for e in events]
    message_ids = await _returning_ids(
        session,
        MESSAGES,
        [
            message_row(e, s.supporter_id, convos[s.supporter_id], now)
            for e, s in zip(events, senders, strict=True)
        ],
    )
    await emit_many(
        session,
        "message.received",
        [
            {"supporter_id": s.supporter_id, "message_id": i, "channel": e.channel}
            for e, s, i in zip(events, senders, message_ids, strict=True)
        ],
        now,
    )
    await session.execute(
        update(SUPPORTERS)
        .where(SUPPORTERS.c.id.in_({s.supporter_id for s in senders}))
        .values(last_inbound_at=now, updated_at=now)
    )
    await session.execute(
        update(ADDRESSES)
        .where(ADDRESSES.c.id.in_({s.address_id for s in senders}))
        .values(last_inbound_at=now)
    )
    per_convo = Counter(convos[s.supporter_id] for s in senders)
    for count in set(per_convo.values()):
        await session.execute(
            update(CONVERSATIONS)
            .where(CONVERSATIONS.c.id.in_([c for c, n in per_convo.items() if n == count]))
            .values(
                last_message_at=now,
                unread=True,
                unread_count=CONVERSATIONS.c.unread_count + count,
                # A new message reopens a resolved or snoozed conversation.
                status="open",
                snoozed_until=None,
            )
        )
    return message_ids


async def _conversations(
    session: AsyncSession, supporter_ids: set[int], now: datetime
) -> dict[int, int]:
    """supporter id -> conversation id, creating the missing ones."""
    rows = await session.execute(
        select(CONVERSATIONS.c.supporter_id, CONVERSATIONS.c.id).where(
            CONVERSATIONS.c.supporter_id.in_(supporter_ids)
        )
    )
    convos = {int(s): int(c) for s, c in rows}
    missing = sorted(supporter_ids - convos.keys())
    ids = await _returning_ids(
        session,
        CONVERSATIONS,
        [conversation_row(s, now) for s in missing],
    )
    convos.update(zip(missing, ids, strict=True))
    return convos


def supporter_row(event: InboundMessage, now: datetime) -> dict[str, Any]:
    """A new supporter for an unknown sender."""
    return {
        "name": supporter_name(event),
        "preferred_channels": [],
        "source": "inbound",
        "opted_out": False,
        "created_at": now,
        "updated_at": now,
    }


def new_term_rows(
    people: list[tuple[str, InboundMessage]],
    supporter_ids: list[int],
    new_addresses: list[tuple[tuple[str, str], int]],
) -> list[dict[str, int]]:
    """The search terms (storage/search_terms.py) of the supporters made for unknown
    senders. An address added to a known supporter is the other phone channel of a number
    they hold, whose terms they have already."""
    held: dict[int, list[tuple[str, str]]] = {}
    for key, sid in new_addresses:
        held.setdefault(sid, []).append(key)
    return [
        row
        for (_, event), sid in zip(people, supporter_ids, strict=True)
        for row in term_rows(sid, supporter_name(event), held.get(sid, []))
    ]


def supporter_name(event: InboundMessage) -> str:
    return truncate(event.profile_name or event.address, 200)


def address_row(supporter_id: int, channel: str, address: str) -> dict[str, Any]:
    return {
        "supporter_id": supporter_id,
        "channel": channel,
        "address": address,
        "address_sealed": address,  # sealed when RALLYPOINT_ENCRYPTION_KEYS is set, else NULL
        "opted_out": False,
    }


def conversation_row(supporter_id: int, now: datetime) -> dict[str, Any]:
    return {"supporter_id": supporter_id, "created_at": now, "unread": False, "unread_count": 0}


def message_row(
    event: InboundMessage, supporter_id: int, conversation_id: int, now: datetime
) -> dict[str, Any]:
    return {
        "conversation_id": conversation_id,
        "supporter_id": supporter_id,
        "direction": "inbound",
        "kind": "inbound",
        "channel": event.channel,
        "address": event.address,
        "body": event.body,
        "subject": event.subject,
        "status": "received",
        "provider_message_id": event.provider_message_id,
        "attachments": [a.as_dict() for a in event.attachments],
        "channel_choice": {},
        "template": None,
        "email_message_id": event.email_message_id,
        "in_reply_to": event.in_reply_to,
        "references": event.references,
        "raw": event.raw,
        "sender_verified": event.sender_verified,
        "created_at": now,
        "updated_at": now,
    }

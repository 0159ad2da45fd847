"""The webhook batch on SQLite's own lane: plain rows stored in one thread hop.

`routing.inbound.bulk` and `routing.delivery.bulk` store a batch through SQLAlchemy; on
SQLite the same outcome is written here with plain sqlite3 statements on a `SqliteLane`
(storage/sqlite_lane.py), one transaction and one hop for the whole batch. Only what
those modules store set-based comes this way: inbound messages no automation can react
to, and plain progress (no error) on attempts we know. Every request that touches a
person, message or attempt that needs more (a keyword, onboarding, a poll, an error to
act on, an unknown attempt, any other event) is left, whole, to the regular path, which
runs after this lane's commit, so each person's and attempt's events keep their order.
Which requests those are is decided by `routing.inbound.fast_way` (pure); this module
reads the facts it needs and writes. Its SQL is built from the tables (SQLAlchemy Core)
and compiled for SQLite once, at import (`storage.sqlite_lane.Statement`, `Rows`).
The lane can be turned off: RALLYPOINT_SQLITE_LANE=false.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update

from channels.base import InboundMessage, StatusUpdate, WebhookEvent
from routing.context import AppContext
from routing.delivery.bulk import ATTEMPTS, EVENTS, StatusRow, plan_progress, status_subjects
from routing.delivery.status import REACHED
from routing.inbound.bulk import (
    ADDRESSES,
    CONVERSATIONS,
    MESSAGES,
    SUPPORTERS,
    address_row,
    conversation_row,
    message_row,
    new_people,
    new_term_rows,
    resolve_senders,
    supporter_row,
)
from routing.inbound.fast_way import Known, fast_requests, match
from routing.inbound.store import IngestReport
from routing.organizing.reactions import AWAITING, awaiting_params
from routing.people.addresses import PHONE_CHANNELS
from routing.people.do_not_contact import SECRET_NAME, hashes_of
from routing.webhooks.events import DELIVERIES, delivery_rows, subscribed, subscribers_of
from storage.models import DoNotContact, ServerSecret
from storage.sealed_types import pair_reader
from storage.search_terms import TERMS
from storage.sqlite_lane import Rows, Statement


def _ids(name: str) -> Any:
    return bindparam(name, expanding=True)


# Every statement is built from the tables once and compiled for SQLite once.
_SUPPORTER_ROWS = Rows(SUPPORTERS)
_ADDRESS_ROWS = Rows(ADDRESSES)
_TERM_ROWS = Rows(TERMS)
_CONVERSATION_ROWS = Rows(CONVERSATIONS)
_MESSAGE_ROWS = Rows(MESSAGES)
_EVENT_ROWS = Rows(EVENTS)
_DNC = DoNotContact.__table__  # type: ignore[attr-defined]
_SECRETS = ServerSecret.__table__  # type: ignore[attr-defined]
_SECRET = Statement(select(_SECRETS.c.value).where(_SECRETS.c.name == bindparam("name")))
_LISTED = Statement(select(_DNC.c.address_hash).where(_DNC.c.address_hash.in_(_ids("hashes"))))
_DELIVERY_ROWS = Rows(DELIVERIES)
_RECEIVED_SUBSCRIBERS = Statement(subscribers_of("message.received"))
_STATUS_SUBSCRIBERS = Statement(subscribers_of("message.status"))
# Both columns of the unique (channel, provider_message_id) indexes, or they are scanned.
_EXISTING = Statement(
    select(MESSAGES.c.channel, MESSAGES.c.provider_message_id).where(
        MESSAGES.c.channel.in_(_ids("channels")),
        MESSAGES.c.provider_message_id.in_(_ids("provider_ids")),
    )
)
_ATTEMPTS = Statement(
    select(
        ATTEMPTS.c.id,
        ATTEMPTS.c.status,
        ATTEMPTS.c.channel,
        ATTEMPTS.c.provider_message_id,
        ATTEMPTS.c.message_id,
    ).where(
        ATTEMPTS.c.channel.in_(_ids("channels")),
        ATTEMPTS.c.provider_message_id.in_(_ids("provider_ids")),
    )
)
_ADDRESSES = Statement(
    select(ADDRESSES.c.channel, ADDRESSES.c.address, ADDRESSES.c.id, ADDRESSES.c.supporter_id)
    .where(ADDRESSES.c.channel.in_(_ids("channels")), ADDRESSES.c.address.in_(_ids("addresses")))
    .order_by(ADDRESSES.c.id)
)
ADDRESS_LABEL = ADDRESSES.c.address.type.label
_AWAITING = Statement(AWAITING) if AWAITING is not None else None
_CONVERSATIONS = Statement(
    select(CONVERSATIONS.c.supporter_id, CONVERSATIONS.c.id).where(
        CONVERSATIONS.c.supporter_id.in_(_ids("ids"))
    )
)
_MESSAGE_STATUS = Statement(
    select(
        MESSAGES.c.id, MESSAGES.c.status, MESSAGES.c.channel, MESSAGES.c.provider_message_id
    ).where(MESSAGES.c.id.in_(_ids("ids")))
)
_TOP_ID = {
    t.name: Statement(select(func.max(t.c.id)))
    for t in (SUPPORTERS, ADDRESSES, CONVERSATIONS, MESSAGES)
}
_TOUCH_SUPPORTERS = Statement(
    update(SUPPORTERS)
    .where(SUPPORTERS.c.id.in_(_ids("ids")))
    .values(last_inbound_at=bindparam("now"), updated_at=bindparam("now"))
)
_TOUCH_ADDRESSES = Statement(
    update(ADDRESSES)
    .where(ADDRESSES.c.id.in_(_ids("ids")))
    .values(last_inbound_at=bindparam("now"))
)
_UNREAD = Statement(
    update(CONVERSATIONS)
    .where(CONVERSATIONS.c.id.in_(_ids("ids")))
    .values(
        last_message_at=bindparam("now"),
        unread=True,
        unread_count=CONVERSATIONS.c.unread_count + bindparam("count"),
        # A new message reopens a resolved or snoozed conversation.
        status="open",
        snoozed_until=None,
    )
)
_ATTEMPT_STATUS = Statement(
    update(ATTEMPTS).where(ATTEMPTS.c.id == bindparam("b_id")).values(status=bindparam("status"))
)
_MESSAGE_PROGRESS = Statement(
    update(MESSAGES)
    .where(MESSAGES.c.id == bindparam("b_id"))
    .values(status=bindparam("status"), updated_at=bindparam("now"))
)
# Heard from: no fallback on silence (routing/dispatch/silence.py).
_REACHED = Statement(
    update(MESSAGES)
    .where(MESSAGES.c.id.in_(_ids("ids")), MESSAGES.c.fallback_at.is_not(None))
    .values(fallback_at=None)
)


def store_batch_on_lane(
    cursor: sqlite3.Cursor, ctx: AppContext, requests: Sequence[Sequence[WebhookEvent]]
) -> list[IngestReport | None]:
    """Store what this lane can of `requests`: a report per request stored, None per
    request left to the regular path (nothing of it is written here). Which ones is
    `fast_way.fast_requests`'s choice, from facts read here under the write lock."""
    now = ctx.clock()
    inbound = [e for events in requests for e in events if isinstance(e, InboundMessage)]
    updates = [e for events in requests for e in events if isinstance(e, StatusUpdate)]
    seen = _existing_messages(cursor, inbound)
    known = _known_addresses(cursor, inbound)
    awaited = _awaited(cursor, {match(known, e)[1] for e in inbound}, now)
    attempts = _attempts(cursor, updates)
    listed = _barred(cursor, ctx.settings.erasure_key, inbound, known)
    fast = fast_requests(requests, known, awaited, attempts.keys(), ctx.settings, listed)
    reports: list[IngestReport | None] = [IngestReport() if is_fast else None for is_fast in fast]
    fresh: list[tuple[int, InboundMessage]] = []
    plain: list[tuple[int, StatusUpdate]] = []
    for n, events in enumerate(requests):
        report = reports[n]
        if report is None:
            continue
        for item in events:
            if isinstance(item, InboundMessage):
                key = (item.channel, item.provider_message_id)
                if key in seen:
                    report.duplicates += 1
                else:
                    seen.add(key)
                    fresh.append((n, item))
            elif isinstance(item, StatusUpdate):
                plain.append((n, item))
                report.statuses += 1
    if fresh:
        ids = _store_messages(cursor, [e for _, e in fresh], known, now, subscribed(ctx))
        for (n, _), message_id in zip(fresh, ids, strict=True):
            reports[n].stored.append(message_id)  # type: ignore[union-attr]
    if plain:
        _apply_plain(cursor, [u for _, u in plain], attempts, now, subscribed(ctx))
    return reports


def _by_provider_id(
    cursor: sqlite3.Cursor, statement: Statement, events: Sequence[InboundMessage | StatusUpdate]
) -> list[Any]:
    if not events:
        return []
    return statement.execute(
        cursor,
        channels=sorted({e.channel for e in events}),
        provider_ids=sorted({e.provider_message_id for e in events}),
    ).fetchall()


def _barred(
    cursor: sqlite3.Cursor,
    configured: str | None,
    events: Sequence[InboundMessage],
    known: Known,
) -> set[tuple[str, str]]:
    """As `do_not_contact.barred`, for the batch's new senders."""
    new = {(e.channel, e.address) for e in events if match(known, e)[1] is None}
    if not new:
        return set()
    if configured:
        key = configured.encode()
    else:
        row = _SECRET.execute(cursor, name=SECRET_NAME).fetchone()
        if row is None:
            return set()
        key = str(row[0]).encode()
    by_hash = hashes_of(key, new)
    return {by_hash[r[0]] for r in _LISTED.execute(cursor, hashes=sorted(by_hash))}


def _existing_messages(
    cursor: sqlite3.Cursor, events: Sequence[InboundMessage]
) -> set[tuple[str, str]]:
    return {(r[0], r[1]) for r in _by_provider_id(cursor, _EXISTING, events)}


def _known_addresses(cursor: sqlite3.Cursor, events: Sequence[InboundMessage]) -> Known:
    if not events:
        return {}
    channels: set[str] = {e.channel for e in events}
    if channels & PHONE_CHANNELS:
        channels |= PHONE_CHANNELS
    addresses = sorted({e.address for e in events})
    rows = _ADDRESSES.execute(cursor, channels=sorted(channels), addresses=addresses)
    # Read raw: with keys `<sealed> <index>`, known by its index (no decryption per row).
    read = pair_reader(ADDRESS_LABEL, addresses)
    found: Known = {}
    for channel, stored, address_id, supporter_id in rows:
        found.setdefault((channel, read(stored)), (address_id, supporter_id))
    return found


def _awaited(cursor: sqlite3.Cursor, supporter_ids: set[int | None], now: datetime) -> set[int]:
    """Those of `supporter_ids` an automation waits on (`reactions.AWAITING`)."""
    ids = sorted(s for s in supporter_ids if s is not None)
    if not ids or _AWAITING is None:
        return set()
    return {int(r[0]) for r in _AWAITING.execute(cursor, **awaiting_params(ids, now))}


def _next_ids(cursor: sqlite3.Cursor, table: str, count: int) -> list[int]:
    """Fresh ids (the lane's transaction holds the write lock: max + 1 onwards is ours)."""
    if count == 0:
        return []
    top = _TOP_ID[table].execute(cursor).fetchone()[0] or 0
    return list(range(int(top) + 1, int(top) + 1 + count))


def _store_messages(
    cursor: sqlite3.Cursor,
    events: list[InboundMessage],
    known: dict[tuple[str, str], tuple[int, int]],
    now: datetime,
    webhook_events: frozenset[str],
) -> list[int]:
    """As `inbound_bulk._store_fast`: senders, addresses, conversations, messages."""
    people = new_people(known, events)
    new_ids = _next_ids(cursor, "supporters", len(people))
    _SUPPORTER_ROWS.insert(
        cursor,
        ({"id": i, **supporter_row(e, now)} for (_, e), i in zip(people, new_ids, strict=True)),
    )
    person_ids = {key: sid for (key, _), sid in zip(people, new_ids, strict=True)}
    found, new_rows = resolve_senders(known, events, person_ids)
    resolved = {key: (r.supporter_id, r.address_id) for key, r in found.items()}
    address_ids = _next_ids(cursor, "supporter_addresses", len(new_rows))
    _ADDRESS_ROWS.insert(
        cursor,
        (
            {"id": i, **address_row(sid, k[0], k[1])}
            for (k, sid), i in zip(new_rows, address_ids, strict=True)
        ),
    )
    for (new_key, sid), address_id in zip(new_rows, address_ids, strict=True):
        resolved[new_key] = (sid, address_id)
    _TERM_ROWS.insert(cursor, new_term_rows(people, new_ids, new_rows))
    convos = _conversations(cursor, {sid for sid, _ in resolved.values()}, now)
    senders = [resolved[(e.channel, e.address)] for e in events]
    message_ids = _next_ids(cursor, "messages", len(events))
    _MESSAGE_ROWS.insert(
        cursor,
        (
            {"id": i, **message_row(e, s[0], convos[s[0]], now)}
            for e, s, i in zip(events, senders, message_ids, strict=True)
        ),
    )
    if "message.received" in webhook_events:
        subscribers = [int(r[0]) for r in _RECEIVED_SUBSCRIBERS.execute(cursor)]
        subjects = [
            {"supporter_id": s[0], "message_id": i, "channel": e.channel}
            for e, s, i in zip(events, senders, message_ids, strict=True)
        ]
        _DELIVERY_ROWS.insert(cursor, delivery_rows(subscribers, "message.received", subjects, now))
    _TOUCH_SUPPORTERS.execute(cursor, ids=sorted({sid for sid, _ in senders}), now=now)
    _TOUCH_ADDRESSES.execute(cursor, ids=sorted({aid for _, aid in senders}), now=now)
    per_convo = Counter(convos[sid] for sid, _ in senders)
    for count in sorted(set(per_convo.values())):  # one statement per count (mostly one)
        convo_ids = sorted(c for c, n in per_convo.items() if n == count)
        _UNREAD.execute(cursor, ids=convo_ids, count=count, now=now)
    return message_ids


def _conversations(
    cursor: sqlite3.Cursor, supporter_ids: set[int], now: datetime
) -> dict[int, int]:
    ids = sorted(supporter_ids)
    rows = _CONVERSATIONS.execute(cursor, ids=ids)
    convos = {int(s): int(c) for s, c in rows}
    missing = sorted(supporter_ids - convos.keys())
    new_ids = _next_ids(cursor, "conversations", len(missing))
    _CONVERSATION_ROWS.insert(
        cursor,
        ({"id": i, **conversation_row(s, now)} for s, i in zip(missing, new_ids, strict=True)),
    )
    convos.update(zip(missing, new_ids, strict=True))
    return convos


def _attempts(
    cursor: sqlite3.Cursor, updates: Sequence[StatusUpdate]
) -> dict[tuple[str | None, str | None], StatusRow]:
    """(channel, provider id) -> the attempt's status and message id."""
    return {(r[2], r[3]): StatusRow(*r) for r in _by_provider_id(cursor, _ATTEMPTS, updates)}


def _apply_plain(
    cursor: sqlite3.Cursor,
    updates: list[StatusUpdate],
    attempts: dict[tuple[str | None, str | None], StatusRow],
    now: datetime,
    webhook_events: frozenset[str],
) -> None:
    """As `routing.delivery.bulk.apply_status_updates` for plain progress."""
    message_ids = sorted({attempts[(u.channel, u.provider_message_id)].message_id for u in updates})
    messages = {
        r[0]: StatusRow(r[0], r[1], r[2], r[3])
        for r in _MESSAGE_STATUS.execute(cursor, ids=message_ids)
    }
    progress = plan_progress(updates, attempts, messages, now)
    _ATTEMPT_STATUS.execute_many(
        cursor, ({"b_id": a.id, "status": a.status} for a in progress.attempts.values())
    )
    _MESSAGE_PROGRESS.execute_many(
        cursor,
        ({"b_id": m.id, "status": m.status, "now": now} for m in progress.messages.values()),
    )
    reached = [m.id for m in progress.messages.values() if m.status in REACHED]
    if reached:
        _REACHED.execute(cursor, ids=reached)
    _EVENT_ROWS.insert(cursor, progress.events)
    if progress.messages and "message.status" in webhook_events:
        subscribers = [int(r[0]) for r in _STATUS_SUBSCRIBERS.execute(cursor)]
        rows = delivery_rows(subscribers, "message.status", status_subjects(progress), now)
        _DELIVERY_ROWS.insert(cursor, rows)

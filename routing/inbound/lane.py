"""The webhook batch on SQLite's own lane: plain rows stored in one thread hop.

`routing.inbound.bulk` and `routing.delivery.bulk` store a batch through SQLAlchemy; on
SQLite the same outcome is written here with plain sqlite3 statements on a `SqliteLane`
(storage/sqlite_lane.py), one transaction and one hop for the whole batch. Only what
those modules store set-based comes this way: inbound messages no automation can react
to, and plain progress (no error) on attempts we know. Every request that touches a
person, message or attempt that needs more (a keyword, onboarding, a poll, an error to
act on, an unknown attempt, any other event) is left, whole, to the regular path, which
runs after this lane's commit, so each person's and attempt's events keep their order.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from channels.base import InboundMessage, StatusUpdate, WebhookEvent
from routing.context import AppContext
from routing.delivery.bulk import EVENTS, is_plain, status_event_row
from routing.delivery.status import moves_forward
from routing.inbound.bulk import (
    ADDRESSES,
    CONVERSATIONS,
    MESSAGES,
    SUPPORTERS,
    address_row,
    conversation_row,
    match,
    message_row,
    might_react,
    new_people,
    person_key,
    reactions_are_known,
    resolve_senders,
    supporter_row,
)
from routing.inbound.store import IngestReport
from routing.organizing import reactions as automations
from routing.organizing.polls import POLL_WINDOW, react_to_poll_answer
from routing.people.addresses import PHONE_CHANNELS
from storage.sqlite_lane import Rows, encoder, marks

_SAMPLE = InboundMessage("sms", "", "", "")
_SUPPORTER_ROWS = Rows(SUPPORTERS, ["id", *supporter_row(_SAMPLE, datetime.min)])
_ADDRESS_ROWS = Rows(ADDRESSES, ["id", *address_row(0, "", "")])
_CONVERSATION_ROWS = Rows(CONVERSATIONS, ["id", *conversation_row(0, datetime.min)])
_MESSAGE_ROWS = Rows(MESSAGES, ["id", *message_row(_SAMPLE, 0, 0, datetime.min)])
_EVENT_ROWS = Rows(EVENTS, list(status_event_row(0, None, "sent", datetime.min)))
_TIME = encoder(MESSAGES, "created_at")
_TRUE = encoder(CONVERSATIONS, "unread")


def _time(value: datetime) -> Any:
    return _TIME(value) if _TIME is not None else value


Key = tuple[str, ...]


def _keys(event: WebhookEvent) -> list[Key]:
    """What an event touches: its person and message, or its attempt."""
    if isinstance(event, InboundMessage):
        return [
            ("person", person_key(event)),
            ("message", event.channel, event.provider_message_id),
        ]
    if isinstance(event, StatusUpdate):
        return [("attempt", event.channel, event.provider_message_id)]
    return [("other",)]


def store_batch_on_lane(
    cursor: sqlite3.Cursor, ctx: AppContext, requests: Sequence[Sequence[WebhookEvent]]
) -> list[IngestReport | None]:
    """Store what this lane can of `requests`: a report per request stored, None per
    request left to the regular path (nothing of it is written here)."""
    now = ctx.clock()
    inbound = [e for events in requests for e in events if isinstance(e, InboundMessage)]
    updates = [e for events in requests for e in events if isinstance(e, StatusUpdate)]
    slow: set[Key] = {("other",)}
    seen = _existing_messages(cursor, inbound)
    known = _known_addresses(cursor, inbound)
    if not reactions_are_known():
        slow |= {("person", person_key(e)) for e in inbound}
    else:
        with_state = _supporters_with_state(cursor, {match(known, e)[1] for e in inbound}, now)
        for event in inbound:
            supporter = match(known, event)[1]
            if might_react(ctx, event) or (supporter is not None and supporter in with_state):
                slow.add(("person", person_key(event)))
    attempts = _attempts(cursor, updates)
    for update in updates:
        key = (update.channel, update.provider_message_id)
        if not is_plain(update) or key not in attempts:
            slow.add(("attempt", *key))
    # A request is left whole if it touches anything slow; what it touches is then slow
    # too (a later request must not overtake it), until nothing changes.
    touches = [{k for e in events for k in _keys(e)} for events in requests]
    fast = [True] * len(requests)
    changed = True
    while changed:
        changed = False
        for n, keys in enumerate(touches):
            if fast[n] and keys & slow:
                fast[n] = False
                slow |= keys
                changed = True
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
        ids = _store_messages(cursor, [e for _, e in fresh], known, now)
        for (n, _), message_id in zip(fresh, ids, strict=True):
            reports[n].stored.append(message_id)  # type: ignore[union-attr]
    if plain:
        _apply_plain(cursor, [u for _, u in plain], attempts, now)
    return reports


def _by_provider_id(
    cursor: sqlite3.Cursor, select: str, events: Sequence[InboundMessage | StatusUpdate]
) -> list[Any]:
    """`select` (columns FROM table) of the rows with the events' (channel, provider id);
    both columns, so the unique index on them is used."""
    if not events:
        return []
    channels = sorted({e.channel for e in events})
    ids = sorted({e.provider_message_id for e in events})
    return cursor.execute(
        f"SELECT {select}"  # noqa: S608
        f" WHERE channel IN ({marks(channels)}) AND provider_message_id IN ({marks(ids)})",
        [*channels, *ids],
    ).fetchall()


def _existing_messages(
    cursor: sqlite3.Cursor, events: Sequence[InboundMessage]
) -> set[tuple[str, str]]:
    rows = _by_provider_id(cursor, "channel, provider_message_id FROM messages", events)
    return {(r[0], r[1]) for r in rows}


def _known_addresses(
    cursor: sqlite3.Cursor, events: Sequence[InboundMessage]
) -> dict[tuple[str, str], tuple[int, int]]:
    if not events:
        return {}
    channels: set[str] = {e.channel for e in events}
    if channels & PHONE_CHANNELS:
        channels |= PHONE_CHANNELS
    names = sorted(channels)
    addresses = sorted({e.address for e in events})
    rows = cursor.execute(
        "SELECT channel, address, id, supporter_id FROM supporter_addresses"  # noqa: S608
        f" WHERE channel IN ({marks(names)}) AND address IN ({marks(addresses)}) ORDER BY id",
        [*names, *addresses],
    )
    found: dict[tuple[str, str], tuple[int, int]] = {}
    for channel, address, address_id, supporter_id in rows:
        found.setdefault((channel, address), (address_id, supporter_id))
    return found


def _supporters_with_state(
    cursor: sqlite3.Cursor, supporter_ids: set[int | None], now: datetime
) -> set[int]:
    ids = sorted(s for s in supporter_ids if s is not None)
    if not ids:
        return set()
    sql = f"SELECT supporter_id FROM onboarding_states WHERE supporter_id IN ({marks(ids)})"  # noqa: S608
    params: list[Any] = list(ids)
    if react_to_poll_answer in automations.REACTIONS:
        sql += (
            " UNION SELECT supporter_id FROM messages"  # noqa: S608
            f" WHERE supporter_id IN ({marks(ids)}) AND kind = 'poll'"
            " AND direction = 'outbound' AND created_at >= ?"
        )
        params += [*ids, _time(now - POLL_WINDOW)]
    return {int(r[0]) for r in cursor.execute(sql, params)}


def _next_ids(cursor: sqlite3.Cursor, table: str, count: int) -> list[int]:
    """Fresh ids (the lane's transaction holds the write lock: max + 1 onwards is ours)."""
    if count == 0:
        return []
    top = cursor.execute(f'SELECT max(id) FROM "{table}"').fetchone()[0] or 0  # noqa: S608
    return list(range(int(top) + 1, int(top) + 1 + count))


def _store_messages(
    cursor: sqlite3.Cursor,
    events: list[InboundMessage],
    known: dict[tuple[str, str], tuple[int, int]],
    now: datetime,
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
    stamp = _time(now)
    supporters = sorted({sid for sid, _ in senders})
    cursor.execute(
        "UPDATE supporters SET last_inbound_at = ?, updated_at = ?"  # noqa: S608
        f" WHERE id IN ({marks(supporters)})",
        [stamp, stamp, *supporters],
    )
    addresses = sorted({aid for _, aid in senders})
    cursor.execute(
        f"UPDATE supporter_addresses SET last_inbound_at = ? WHERE id IN ({marks(addresses)})",  # noqa: S608
        [stamp, *addresses],
    )
    per_convo = Counter(convos[sid] for sid, _ in senders)
    unread = _TRUE(True) if _TRUE is not None else True
    cursor.executemany(
        "UPDATE conversations SET last_message_at = ?, unread = ?,"
        " unread_count = unread_count + ?, status = 'open', snoozed_until = NULL WHERE id = ?",
        [(stamp, unread, count, convo) for convo, count in sorted(per_convo.items())],
    )
    return message_ids


def _conversations(
    cursor: sqlite3.Cursor, supporter_ids: set[int], now: datetime
) -> dict[int, int]:
    ids = sorted(supporter_ids)
    rows = cursor.execute(
        f"SELECT supporter_id, id FROM conversations WHERE supporter_id IN ({marks(ids)})",  # noqa: S608
        ids,
    )
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
) -> dict[tuple[str, str], list[Any]]:
    """(channel, provider id) -> [id, status, channel, provider id, message id]."""
    columns = "id, status, channel, provider_message_id, message_id FROM message_attempts"
    return {(r[2], r[3]): list(r) for r in _by_provider_id(cursor, columns, updates)}


def _apply_plain(
    cursor: sqlite3.Cursor,
    updates: list[StatusUpdate],
    attempts: dict[tuple[str, str], list[Any]],
    now: datetime,
) -> None:
    """As `status_bulk._apply_plain`: forward-only progress on attempts and messages."""
    message_ids = sorted({attempts[(u.channel, u.provider_message_id)][4] for u in updates})
    messages = {
        r[0]: list(r)
        for r in cursor.execute(
            "SELECT id, status, channel, provider_message_id FROM messages"  # noqa: S608
            f" WHERE id IN ({marks(message_ids)})",
            message_ids,
        )
    }
    changed_attempts: dict[int, list[Any]] = {}
    changed_messages: dict[int, list[Any]] = {}
    events: list[dict[str, Any]] = []
    for u in updates:
        attempt = attempts[(u.channel, u.provider_message_id)]
        if not moves_forward(attempt[1], u.status):
            continue
        attempt[1] = u.status
        changed_attempts[attempt[0]] = attempt
        message = messages.get(attempt[4])
        if message is None:
            continue
        events.append(status_event_row(message[0], attempt[2], u.status, now))
        is_current = message[2] == attempt[2] and message[3] == attempt[3]
        if is_current and moves_forward(message[1], u.status):
            message[1] = u.status
            changed_messages[message[0]] = message
    cursor.executemany(
        "UPDATE message_attempts SET status = ? WHERE id = ?",
        [(a[1], a[0]) for a in changed_attempts.values()],
    )
    stamp = _time(now)
    cursor.executemany(
        "UPDATE messages SET status = ?, updated_at = ? WHERE id = ?",
        [(m[1], stamp, m[0]) for m in changed_messages.values()],
    )
    _EVENT_ROWS.insert(cursor, events)

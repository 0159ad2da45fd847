"""Which messages and requests of a webhook batch may be stored set-based (pure: no I/O).

The set-based paths (routing/inbound/bulk.py through SQLAlchemy, routing/inbound/lane.py on
SQLite's own connection) look up a few facts for a whole batch (the senders they know,
the supporters an automation waits on, the attempts a callback is about) and ask this
module what may take their way; everything else is stored one by one, so that every
automation and every error handler still runs. Deciding here and writing there keeps both
paths making the same choice.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from channels.base import InboundMessage, StatusUpdate, WebhookEvent
from routing.config import RoutingSettings
from routing.delivery.bulk import is_plain
from routing.inbound.store import stored_one_by_one
from routing.organizing.automation import Arrival
from routing.organizing.reactions import might_react
from routing.people.addresses import PHONE_CHANNELS

# (channel, address) -> (address id, supporter id) of the senders a batch's lookup found.
Known = dict[tuple[str, str], tuple[int, int]]
Key = tuple[str, ...]


def person_key(event: InboundMessage) -> str:
    """One key per person: a phone number is the same supporter on sms and whatsapp."""
    if event.channel in PHONE_CHANNELS:
        return "phone:" + event.address
    return f"{event.channel}:{event.address}"


def match(known: Known, event: InboundMessage) -> tuple[int | None, int | None]:
    """(address id, supporter id) as `store.find_address` would match them."""
    exact = known.get((event.channel, event.address))
    if exact is not None:
        return exact
    if event.channel in PHONE_CHANNELS:
        for other in sorted(PHONE_CHANNELS):
            row = known.get((other, event.address))
            if row is not None:
                return None, row[1]
    return None, None


def slow_people(
    events: Sequence[InboundMessage],
    known: Known,
    awaited: Collection[int],
    settings: RoutingSettings,
    barred: Collection[tuple[str, str]] = (),
) -> set[str]:
    """The people (`person_key`) whose messages must all be stored one by one: one of
    their messages might set off an automation or needs `store_inbound` itself, an
    automation waits on them (`awaited`: supporter ids), or they are new and on the
    do-not-contact list (`barred`: (channel, address); created opted out there)."""
    slow: set[str] = set()
    for event in events:
        key = person_key(event)
        if key in slow:
            continue
        supporter_id = match(known, event)[1]
        if (
            (supporter_id is not None and supporter_id in awaited)
            or (supporter_id is None and (event.channel, event.address) in barred)
            or stored_one_by_one(event)
            or might_react(Arrival(event, settings))
        ):
            slow.add(key)
    return slow


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


def fast_requests(
    requests: Sequence[Sequence[WebhookEvent]],
    known: Known,
    awaited: Collection[int],
    attempts: Collection[tuple[str | None, str | None]],
    settings: RoutingSettings,
    barred: Collection[tuple[str, str]] = (),
) -> list[bool]:
    """Per request, whether ALL of it may be stored set-based: plain inbound messages (no
    automation, see `slow_people`) and plain progress (`is_plain`) on `attempts` we store.

    A request is left whole if it touches anything slow; what it touches is then slow too
    (a later request must not overtake it), until nothing changes. So each person's
    messages and each attempt's callbacks keep their order across the two ways.
    """
    inbound = [e for events in requests for e in events if isinstance(e, InboundMessage)]
    slow: set[Key] = {("other",)}
    slow |= {("person", p) for p in slow_people(inbound, known, awaited, settings, barred)}
    for events in requests:
        for event in events:
            if isinstance(event, StatusUpdate):
                key = (event.channel, event.provider_message_id)
                if not is_plain(event) or key not in attempts:
                    slow.add(("attempt", *key))
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
    return fast

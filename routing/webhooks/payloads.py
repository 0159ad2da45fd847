"""A delivery's body: `{id, type, created_at, data}`, rendered when it is sent from the
rows the delivery names (so the outbox row stays small and the same on every ingest
path). `id` is the delivery's own (`dlv_<n>`): the same on every retry, for receivers
to drop repeats."""

from __future__ import annotations

import json
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import (
    Event,
    EventOccurrence,
    EventRsvp,
    Message,
    Poll,
    PollAnswer,
    Supporter,
    WebhookDelivery,
)


def _time(value: Any) -> str | None:
    return value.isoformat() + ("" if value.tzinfo else "Z") if value is not None else None


def _supporter(row: Supporter | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {"id": row.id, "name": row.name, "opted_out": row.opted_out}


async def data_for(session: AsyncSession, delivery: WebhookDelivery) -> dict[str, Any]:
    """The `data` of a delivery's event."""
    message = await session.get(Message, delivery.message_id) if delivery.message_id else None
    supporter_id = delivery.supporter_id or (message.supporter_id if message else None)
    supporter = await session.get(Supporter, supporter_id) if supporter_id else None
    data: dict[str, Any] = {}
    if supporter is not None:
        data["supporter"] = _supporter(supporter)
    if delivery.channel is not None:
        data["channel"] = delivery.channel
    if delivery.message_status is not None:
        data["status"] = delivery.message_status  # message.status: what it moved to
    if delivery.message_id is not None:
        if message is not None:
            data["message"] = {
                "id": message.id,
                "supporter_id": message.supporter_id,
                "direction": message.direction,
                "channel": message.channel,
                "status": message.status,
                "body": message.body,
                "subject": message.subject,
                "created_at": _time(message.created_at),
            }
    if delivery.poll_id is not None:
        poll = await session.get(Poll, delivery.poll_id)
        if poll is not None:
            data["poll"] = {"id": poll.id, "question": poll.question, "options": poll.options}
            answer = await _answer(session, delivery)
            if answer is not None and 0 <= answer.option_index < len(poll.options):
                data["answer"] = {
                    "option_index": answer.option_index,
                    "option": poll.options[answer.option_index],
                    "answered_at": _time(answer.answered_at),
                }
    if delivery.rsvp_id is not None:
        data.update(await _rsvp(session, delivery.rsvp_id))
    if delivery.event == "webhook.test":
        data["test"] = True
    return data


async def _rsvp(session: AsyncSession, rsvp_id: int) -> dict[str, Any]:
    rsvp = await session.get(EventRsvp, rsvp_id)
    if rsvp is None:
        return {}
    event = await session.get(Event, rsvp.event_id)
    occurrence = await session.get(EventOccurrence, rsvp.occurrence_id)
    data: dict[str, Any] = {
        "rsvp": {
            "answer": rsvp.answer,
            "answered_at": _time(rsvp.answered_at),
            "occurrence_id": rsvp.occurrence_id,
            "starts_at": _time(occurrence.starts_at) if occurrence else None,
        }
    }
    if event is not None:
        data["event"] = {"id": event.id, "title": event.title, "kind": event.kind}
    return data


async def _answer(session: AsyncSession, delivery: WebhookDelivery) -> PollAnswer | None:
    from sqlmodel import select

    return (
        await session.exec(
            select(PollAnswer).where(
                PollAnswer.poll_id == delivery.poll_id,
                PollAnswer.supporter_id == delivery.supporter_id,
            )
        )
    ).first()


async def body_for(session: AsyncSession, delivery: WebhookDelivery) -> bytes:
    """The raw body sent (and signed) for `delivery`."""
    payload = {
        "id": f"dlv_{delivery.id}",
        "type": delivery.event,
        "created_at": _time(delivery.created_at),
        "data": await data_for(session, delivery),
    }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()

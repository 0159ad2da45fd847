"""An announcement's report page: counts by channel and status (inline SVG chart and the
same numbers in a table, from the REST API's delivery_report), why messages failed, and
who did and did not reply (the recipients endpoint's query)."""

from __future__ import annotations

from collections import Counter
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from gateway.api.announcement_recipients import recipient_page
from gateway.api.announcement_report import NO_CHANNEL, delivery_report
from gateway.api.announcements import visible_announcement
from gateway.api.ids import IdPath
from gateway.api.scope import SessionDep
from gateway.auth import Context
from gateway.console.announcements import schedule_text, state_label
from gateway.console.charts import bar_chart
from gateway.console.security import CurrentUser
from gateway.console.templating import render
from routing.outbound.spans import span_text

router = APIRouter()
# Stack order in the chart: how far each message got.
STATUS_ORDER = (
    "read",
    "delivered",
    "sent",
    "sending",
    "queued",
    "skipped",
    "undelivered",
    "failed",
)
PEOPLE_SHOWN = 200  # per list; the REST endpoint pages through all of them
CANCELLABLE = ("queued", "sending")


def channel_label(channel: str) -> str:
    """Skipped (opted out) and unreachable messages have no channel."""
    return "no channel" if channel == NO_CHANNEL else channel


def ordered_statuses(seen: set[str]) -> list[str]:
    return [s for s in STATUS_ORDER if s in seen] + sorted(seen - set(STATUS_ORDER))


@router.get("/announcements/{announcement_id:int}", include_in_schema=False)
async def report(
    announcement_id: IdPath,
    request: Request,
    user: CurrentUser,
    ctx: Context,
    session: SessionDep,
    cancel: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    announcement = await visible_announcement(session, user.principal, announcement_id)
    delivery = await delivery_report(session, announcement_id)
    statuses = ordered_statuses(set(delivery.counts))
    channels = sorted(delivery.by_channel)
    chart = bar_chart(
        "Messages by channel and status",
        [(channel_label(c), sorted(delivery.by_channel[c].items())) for c in channels],
        statuses,
    )
    reasons = Counter(
        (f.channel or "no channel", f.error or f.status) for f in delivery.failures
    ).most_common()
    replied, more_replied = await recipient_page(
        session, announcement, replied=True, limit=PEOPLE_SHOWN
    )
    silent, more_silent = await recipient_page(
        session, announcement, replied=False, limit=PEOPLE_SHOWN
    )
    waiting = sum(delivery.counts.get(s, 0) for s in CANCELLABLE)
    context = {
        "announcement": announcement,
        "delivery": delivery,
        "statuses": statuses,
        "channels": [(c, channel_label(c)) for c in channels],
        "chart": chart,
        "reasons": reasons,
        "replied": replied,
        "more_replied": more_replied,
        "silent": silent,
        "more_silent": more_silent,
        "can_cancel": announcement.state == "pending" or waiting > 0,
        "scheduled": schedule_text(announcement.send_at, ctx),
        "state": state_label(announcement, ctx.clock()),
        "cancel_outcome": cancel,
        "fallback_span": span_text(announcement.fallback_after or 0),
    }
    return render(request, "announcement_report.html", context)

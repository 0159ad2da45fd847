"""The status page (GET /console/status, admins only; others → 403): one page of what an
operator checks first, read when it is shown: the channels on and their webhook URLs,
the outbox and the webhook spool, the last 24 hours' messages, and the latest failures.
The same figures as /metrics (gateway/metrics.py) and `rallypoint stats`."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, Request, Response, status
from sqlalchemy import func
from sqlmodel import col, select

from gateway.api.scope import SessionDep
from gateway.console.security import CurrentUser
from gateway.console.templating import render
from gateway.context import GatewayContext
from gateway.metrics import read_figures
from gateway.startup_report import provider_urls
from gateway.stats import read_stats
from routing.dispatch.circuits import CircuitState, read_circuits
from storage.models import Message, OutboxItem

router = APIRouter()
RECENT_FAILURES = 10
# The breaker's states as the page names them (routing/dispatch/breaker.py).
CIRCUIT_STATES = {"closed": "closed", "open": "open", "probing": "half-open (one probe out)"}


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _circuit_rows(circuits: list[CircuitState], now: datetime) -> list[dict[str, str]]:
    """Each channel and sender's circuit: its state, since when, and when it next lets a
    send through (open: the next probe; half-open: a new probe if this one never answers)."""
    rows = []
    for c in circuits:
        next_probe = "-"
        if c.state != "closed" and c.until is not None:
            wait = (c.until - now).total_seconds()
            at = c.until.strftime("%Y-%m-%d %H:%M:%S")
            next_probe = f"{at} (in {_duration(wait)})" if wait > 0 else f"{at} (due)"
        rows.append(
            {
                "channel": c.channel,
                "sender": c.sender,
                "state": CIRCUIT_STATES.get(c.state, c.state),
                "failures": str(c.failures),
                "since": c.updated_at.strftime("%Y-%m-%d %H:%M:%S"),
                "next_probe": next_probe,
            }
        )
    return rows


@router.get("/status", include_in_schema=False)
async def status_page(request: Request, user: CurrentUser, session: SessionDep) -> Response:
    if user.user.role != "admin":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Only admins see the status page.")
    ctx: GatewayContext = request.app.state.ctx
    figures = await read_figures(ctx)
    # Before the request's session takes its connection (SQLite's pool holds one).
    circuits = _circuit_rows(await read_circuits(ctx, include_closed=True), ctx.clock())
    stats = await read_stats(session, ctx.clock())
    failures = (
        await session.exec(
            select(Message)
            .where(Message.direction == "outbound", Message.status == "failed")
            .order_by(col(Message.updated_at).desc(), col(Message.id).desc())
            .limit(RECENT_FAILURES)
        )
    ).all()
    retrying = await session.execute(
        select(col(Message.channel), func.count())
        .join(OutboxItem, col(OutboxItem.message_id) == col(Message.id))
        .where(col(OutboxItem.attempts) > 0)
        .group_by(col(Message.channel))
    )
    rates = [
        (provider, getattr(adapter, "rate_per_second", None))
        for provider, adapter in sorted(ctx.registry.by_provider.items())
    ]
    outbound = {s: n for (d, s), n in stats.last_24h.items() if d == "outbound"}
    sent_total = sum(outbound.values())
    failure_rate = outbound.get("failed", 0) / sent_total if sent_total else 0.0
    return render(
        request,
        "status.html",
        {
            "channels": sorted(ctx.registry.enabled_channels),
            "urls": provider_urls(ctx.settings, ctx.registry),
            "figures": figures,
            "outbox_oldest": _duration(stats.outbox_oldest_due_seconds),
            "spool_oldest": _duration(figures.spool_oldest_age or 0.0),
            "stats": stats,
            "outbound": sorted(outbound.items()),
            "inbound": sum(n for (d, _), n in stats.last_24h.items() if d == "inbound"),
            "failure_rate": f"{failure_rate:.0%}",
            "failures": failures,
            "retrying": sorted((str(c), int(n)) for c, n in retrying),
            "rates": rates,
            "circuits": circuits,
        },
    )

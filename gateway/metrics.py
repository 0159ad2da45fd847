"""`GET /metrics` (Prometheus text format) and `GET /readyz`.

Every figure is read from the database (or the spool directory) when scraped, so it is
the same whichever process answers and survives restarts: no counter lives in one
process while the sends happen in another (`rallypoint worker`). The message, attempt and
delivery totals are counters kept by triggers as rows change (storage/metric_counts.py:
a few rows read, whatever the tables' size); the due counts and oldest ages walk the
`due_at` indexes over due rows only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from gateway.context import GatewayContext
from routing.dispatch.circuits import read_circuits
from routing.inbound.spool import age_seconds, spool_for
from storage.metric_counts import read_metric_counts
from storage.migrate import current_revision, head_revision
from storage.models import OutboxItem, WebhookDelivery, WebhookSubscription

OUTBOX = OutboxItem.__table__  # type: ignore[attr-defined]
DELIVERIES = WebhookDelivery.__table__  # type: ignore[attr-defined]
SUBSCRIPTIONS = WebhookSubscription.__table__  # type: ignore[attr-defined]


@dataclass
class Figures:
    inbound: dict[str, int] = field(default_factory=dict)
    attempts: dict[tuple[str, str], int] = field(default_factory=dict)
    outbox_due: int = 0
    outbox_oldest_due: datetime | None = None
    deliveries: dict[str, int] = field(default_factory=dict)
    deliveries_due: int = 0
    deliveries_oldest_due: datetime | None = None
    paused_subscriptions: int = 0
    spool_records: int = 0
    spool_bytes: int = 0
    spool_oldest_age: float | None = None
    # Circuits not closed (open or probing), by channel.
    circuits_open: dict[str, int] = field(default_factory=dict)
    schema_current: bool = False
    now: datetime | None = None


def _age(now: datetime | None, then: datetime | None) -> float:
    if now is None or then is None:
        return 0.0
    return max(0.0, (now.replace(tzinfo=None) - then.replace(tzinfo=None)).total_seconds())


async def read_figures(ctx: GatewayContext) -> Figures:
    now = ctx.clock()
    figures = Figures(now=now)
    async with ctx.sessions() as session:
        counts = await read_metric_counts(session)
        figures.inbound = {c: n for (c, _), n in counts.get("inbound", {}).items()}
        figures.attempts = counts.get("attempts", {})
        figures.deliveries = {s: n for (_, s), n in counts.get("deliveries", {}).items()}
        count, oldest = (
            await session.execute(
                select(func.count(), func.min(OUTBOX.c.due_at)).where(OUTBOX.c.due_at <= now)
            )
        ).one()
        figures.outbox_due, figures.outbox_oldest_due = int(count), oldest
        count, oldest = (
            await session.execute(
                select(func.count(), func.min(DELIVERIES.c.due_at)).where(
                    DELIVERIES.c.due_at <= now
                )
            )
        ).one()
        figures.deliveries_due, figures.deliveries_oldest_due = int(count), oldest
        figures.paused_subscriptions = int(
            (
                await session.execute(
                    select(func.count()).where(SUBSCRIPTIONS.c.paused_at.is_not(None))
                )
            ).scalar_one()
        )
    for circuit in await read_circuits(ctx):
        figures.circuits_open[circuit.channel] = figures.circuits_open.get(circuit.channel, 0) + 1
    figures.schema_current = await current_revision(ctx.engine) == head_revision()
    spool = await spool_for(ctx).stats()
    figures.spool_records, figures.spool_bytes = spool.records, spool.bytes
    figures.spool_oldest_age = age_seconds(spool)
    return figures


def families(f: Figures) -> Iterator[Metric]:
    inbound = CounterMetricFamily(
        "rallypoint_inbound_messages", "Inbound messages stored, by channel", labels=["channel"]
    )
    for channel, n in sorted(f.inbound.items()):
        inbound.add_metric([channel], n)
    yield inbound
    sends = GaugeMetricFamily(
        "rallypoint_send_attempts",
        "Send attempts (one per message per channel tried), by channel and current status",
        labels=["channel", "status"],
    )
    for (channel, status), n in sorted(f.attempts.items()):
        sends.add_metric([channel, status], n)
    yield sends
    yield GaugeMetricFamily(
        "rallypoint_outbox_due", "Outbox rows due now (queued sends)", value=f.outbox_due
    )
    yield GaugeMetricFamily(
        "rallypoint_outbox_oldest_due_age_seconds",
        "How long the oldest due outbox row has been due (0 when none)",
        value=_age(f.now, f.outbox_oldest_due),
    )
    deliveries = GaugeMetricFamily(
        "rallypoint_webhook_deliveries",
        "Outgoing webhook deliveries, by status",
        labels=["status"],
    )
    for status in ("pending", "delivered", "failed"):
        deliveries.add_metric([status], f.deliveries.get(status, 0))
    yield deliveries
    yield GaugeMetricFamily(
        "rallypoint_webhook_deliveries_due",
        "Outgoing webhook deliveries due now",
        value=f.deliveries_due,
    )
    yield GaugeMetricFamily(
        "rallypoint_webhook_deliveries_oldest_due_age_seconds",
        "How long the oldest due webhook delivery has been due (0 when none)",
        value=_age(f.now, f.deliveries_oldest_due),
    )
    yield GaugeMetricFamily(
        "rallypoint_webhook_subscriptions_paused",
        "Outgoing webhook subscriptions paused after failing",
        value=f.paused_subscriptions,
    )
    circuits = GaugeMetricFamily(
        "rallypoint_circuits_open",
        "Senders whose provider is failing (circuit open or probing), by channel",
        labels=["channel"],
    )
    for channel, n in sorted(f.circuits_open.items()):
        circuits.add_metric([channel], n)
    yield circuits
    yield GaugeMetricFamily(
        "rallypoint_ready",
        "1 when the database answers and its migrations are current (as GET /readyz)",
        value=1 if f.schema_current else 0,
    )
    yield GaugeMetricFamily(
        "rallypoint_spool_records", "Webhook records waiting in the spool", value=f.spool_records
    )
    yield GaugeMetricFamily(
        "rallypoint_spool_bytes", "Bytes of the spool's files", value=f.spool_bytes
    )
    yield GaugeMetricFamily(
        "rallypoint_spool_oldest_age_seconds",
        "How long the oldest spooled record has waited (0 when none)",
        value=f.spool_oldest_age or 0.0,
    )


class _Snapshot(Collector):
    def __init__(self, metrics: Iterable[Metric]) -> None:
        self.metrics = list(metrics)

    def collect(self) -> Iterable[Metric]:
        return self.metrics


async def metrics_response(ctx: GatewayContext) -> Response:
    """The scrape: 503 (plain text) when the database does not answer."""
    try:
        figures = await read_figures(ctx)
    except (DBAPIError, OSError):
        return Response("database unavailable\n", status_code=503, media_type="text/plain")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(families(figures)))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


async def readiness(ctx: GatewayContext) -> JSONResponse:
    """200 when the database answers and its schema is at the newest migration."""
    head = head_revision()
    try:
        current = await current_revision(ctx.engine)
    except (DBAPIError, OSError):
        return JSONResponse({"status": "database unavailable"}, status_code=503)
    body = {"status": "ready", "revision": current, "head": head}
    if current != head:
        body["status"] = "migrations pending (run `rallypoint migrate`)"
        return JSONResponse(body, status_code=503)
    return JSONResponse(body)

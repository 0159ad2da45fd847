"""The Signal receiver `serve` runs in the background: signal-cli-rest-api pushes no
webhook, so envelopes are read from it (channels/signal/receiver.py) and handed to the
same ingestion webhooks use (stored, or spooled while the database is away), where
keywords, STOP, polls and onboarding apply as on every channel."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from channels.base import WebhookEvent
from channels.signal import SignalAdapter
from channels.signal.receiver import SignalReceiver, Sleep
from gateway.context import GatewayContext
from gateway.webhook_checks import unstorable
from routing.inbound.spool import submit_or_spool

log = logging.getLogger(__name__)


def signal_receiver(ctx: GatewayContext, *, sleep: Sleep = asyncio.sleep) -> SignalReceiver | None:
    """The receiver for the configured Signal number; None when Signal is off."""
    adapter = ctx.registry.by_provider.get("signal")
    if not isinstance(adapter, SignalAdapter):
        return None

    async def store(events: Sequence[WebhookEvent]) -> None:
        # What no database takes (a NUL character, a lone surrogate, an overlong id) is
        # dropped here, as a webhook carrying it is refused with 400: kept, it would block
        # every envelope behind it.
        storable = []
        for event in events:
            problem = unstorable([event])
            if problem is None:
                storable.append(event)
            else:
                log.warning("signal: an envelope dropped: %s", problem)
        await submit_or_spool(ctx, storable, "signal")

    return SignalReceiver(adapter.config, ctx.http_client, store, sleep=sleep)

"""The process runner behind `rallypoint worker`: the dispatcher (and the resumption of
announcement fan-outs a crash left half done, and the fallback-on-silence scan), until
SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal

from gateway.heap import settle_heap
from gateway.settings import Settings
from routing.dispatch.dispatcher import Dispatcher
from routing.dispatch.silence import SilenceFallback
from routing.outbound.fanout import FanoutService
from routing.upkeep import Upkeep
from routing.webhooks.delivery import WebhookDeliverer

log = logging.getLogger(__name__)


async def run_worker(settings: Settings, *, stop: asyncio.Event | None = None) -> int:
    """Run one dispatcher until SIGTERM/SIGINT (or `stop` is set); exit code 0.

    On the signal it stops claiming, lets sends in flight finish (up to 10 s) and
    releases the leases of rows it claimed but did not send: they stay queued.
    """
    from gateway.app import build_context, prepare, shutdown

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    ctx = build_context(settings)
    try:
        await prepare(ctx)
        dispatcher = Dispatcher(ctx)
        fanouts = FanoutService(ctx)
        webhooks = WebhookDeliverer(ctx)
        silence = SilenceFallback(ctx)
        upkeep = Upkeep(ctx)
        # Before the first claim: a full collection of start-up's objects would stop the
        # loop 100-200 ms while sends counted by the rate guard wait to go out.
        settle_heap(settings.gc_threshold)
        await fanouts.start()
        await dispatcher.start()
        await webhooks.start()
        await silence.start()
        await upkeep.start()
        log.info(
            "worker %s running; channels: %s",
            dispatcher.owner,
            sorted(ctx.registry.enabled_channels) or "none",
        )
        await stop.wait()
        log.info("worker %s stopping", dispatcher.owner)
        await upkeep.stop()
        await silence.stop()
        await webhooks.stop()
        await dispatcher.stop()
        await fanouts.stop()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await shutdown(ctx)
    log.info("worker stopped")
    return 0

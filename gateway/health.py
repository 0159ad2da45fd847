"""`GET /healthz`: whether the database answers, the channels enabled, and what waits in
the webhook spool (routing/inbound/spool.py)."""

from __future__ import annotations

import asyncio

from fastapi.responses import JSONResponse
from sqlmodel import select

from gateway.context import GatewayContext
from routing.dispatch.circuits import read_circuits
from routing.inbound.spool import age_seconds, database_unavailable, spool_for


class HealthCheck:
    """Answers /healthz within the spool's deadline, as webhooks are answered: a database
    that is locked or unreachable gives a 503 with the spool's figures, never a hang."""

    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx
        # At most one probe at a time: one left hanging on a locked database is waited
        # on again instead of taking another connection from the pool each call.
        self._probe: asyncio.Task[None] | None = None

    async def answer(self) -> JSONResponse:
        spool = await spool_for(self.ctx).stats()
        body: dict[str, object] = {
            "status": "ok",
            "channels": sorted(self.ctx.registry.enabled_channels),
            "spool": {
                "records": spool.records,
                "files": spool.files,
                "bytes": spool.bytes,
                "oldest_age_seconds": age_seconds(spool),
            },
        }
        if not await self.database_answers():
            body["status"] = "database unavailable"  # webhooks are still taken (spooled)
            return JSONResponse(body, status_code=503)
        # Providers failing now: their sends fall back at once (routing/dispatch/breaker.py).
        body["circuits"] = [
            {
                "channel": c.channel,
                "sender": c.sender,
                "state": c.state,
                "failures": c.failures,
                "until": c.until.isoformat() if c.until else None,
            }
            for c in await read_circuits(self.ctx)
        ]
        if body["circuits"]:
            body["status"] = "degraded"
        return JSONResponse(body)

    async def database_answers(self) -> bool:
        if self._probe is None or self._probe.done():
            self._probe = asyncio.create_task(self._select_one())
        deadline = max(self.ctx.settings.spool_after_ms / 1000, 0.1)
        done, _ = await asyncio.wait({self._probe}, timeout=deadline)
        if not done:
            return False
        error = self._probe.exception()
        if error is None:
            return True
        if database_unavailable(error):
            return False
        raise error

    async def _select_one(self) -> None:
        async with self.ctx.sessions() as session:
            await session.exec(select(1))

    async def aclose(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            await asyncio.gather(self._probe, return_exceptions=True)

"""The retention service: with RALLYPOINT_RETENTION_DAYS set, `purge_old_bodies` runs every
`interval` seconds (an hour by default) beside the HTTP server, then the SQLite WAL is
checkpointed so that the blanked bytes leave the files too."""

from __future__ import annotations

import logging

from gateway.context import GatewayContext
from routing.people.retention import purge_old_bodies
from routing.periodic import Periodic
from storage.db import truncate_wal

log = logging.getLogger(__name__)

INTERVAL = 3600.0


class RetentionService(Periodic):
    name = "retention"

    def __init__(self, ctx: GatewayContext, interval: float = INTERVAL) -> None:
        super().__init__(interval)
        self.ctx = ctx

    async def round(self) -> int:
        """The number of messages blanked (0 when retention is off)."""
        days = self.ctx.settings.retention_days
        if days is None:
            return 0
        purged = await purge_old_bodies(self.ctx.sessions, self.ctx.clock(), days)
        if purged:
            await truncate_wal(self.ctx.engine)
        return purged

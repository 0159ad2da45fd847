"""`rallypoint stats` (and the console's status page): supporters by channel and consent,
messages of the last 24 hours by direction and status, the outbox's due rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Message, OutboxItem, Supporter, SupporterAddress

DAY = timedelta(hours=24)


@dataclass
class Stats:
    supporters: int = 0
    supporters_opted_out: int = 0
    # channel → (reachable: neither the supporter nor the address opted out, opted out)
    by_channel: dict[str, tuple[int, int]] = field(default_factory=dict)
    # (direction, status) → messages created in the last 24 hours
    last_24h: dict[tuple[str, str], int] = field(default_factory=dict)
    outbox_due: int = 0
    outbox_oldest_due_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "supporters": {"total": self.supporters, "opted_out": self.supporters_opted_out},
            "supporters_by_channel": {
                channel: {"subscribed": on, "opted_out": off}
                for channel, (on, off) in sorted(self.by_channel.items())
            },
            "messages_last_24h": {
                f"{direction} {status}": n
                for (direction, status), n in sorted(self.last_24h.items())
            },
            "outbox": {
                "due": self.outbox_due,
                "oldest_due_seconds": round(self.outbox_oldest_due_seconds, 1),
            },
        }

    def lines(self) -> list[str]:
        channels = ", ".join(
            f"{channel} {on} subscribed / {off} opted out"
            for channel, (on, off) in sorted(self.by_channel.items())
        )
        messages = ", ".join(
            f"{direction} {status} {n}" for (direction, status), n in sorted(self.last_24h.items())
        )
        oldest = f", oldest due {self.outbox_oldest_due_seconds:.0f} s" if self.outbox_due else ""
        return [
            f"supporters: {self.supporters} ({self.supporters_opted_out} opted out)",
            f"supporters by channel: {channels or 'none'}",
            f"messages last 24 h: {messages or 'none'}",
            f"outbox due: {self.outbox_due}{oldest}",
        ]


def _naive(moment: datetime) -> datetime:
    return moment.replace(tzinfo=None)


async def read_stats(session: AsyncSession, now: datetime) -> Stats:
    supporters = Supporter.__table__  # type: ignore[attr-defined]
    addresses = SupporterAddress.__table__  # type: ignore[attr-defined]
    messages = Message.__table__  # type: ignore[attr-defined]
    outbox = OutboxItem.__table__  # type: ignore[attr-defined]
    stats = Stats()
    total, opted_out = (
        await session.execute(
            select(func.count(), func.count(case((supporters.c.opted_out.is_(True), 1))))
        )
    ).one()
    stats.supporters, stats.supporters_opted_out = int(total), int(opted_out)
    off = (supporters.c.opted_out.is_(True)) | (addresses.c.opted_out.is_(True))
    rows = await session.execute(
        select(
            addresses.c.channel,
            func.count(func.distinct(case((~off, supporters.c.id)))),
            func.count(func.distinct(case((off, supporters.c.id)))),
        )
        .join(supporters, supporters.c.id == addresses.c.supporter_id)
        .group_by(addresses.c.channel)
    )
    stats.by_channel = {str(c): (int(on), int(n_off)) for c, on, n_off in rows}
    rows = await session.execute(
        select(messages.c.direction, messages.c.status, func.count())
        .where(messages.c.created_at >= now - DAY)
        .group_by(messages.c.direction, messages.c.status)
    )
    stats.last_24h = {(str(d), str(s)): int(n) for d, s, n in rows}
    count, oldest = (
        await session.execute(
            select(func.count(), func.min(outbox.c.due_at)).where(outbox.c.due_at <= now)
        )
    ).one()
    stats.outbox_due = int(count)
    if oldest is not None:
        stats.outbox_oldest_due_seconds = max(0.0, (_naive(now) - _naive(oldest)).total_seconds())
    return stats

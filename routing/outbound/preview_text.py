"""What a preview shows of a text with merge variables: its longest rendering over the
audience (the one a screen or an SMS bill has to hold)."""

from __future__ import annotations

from sqlmodel import col, select

from channels.sms_segments import sms_segments
from routing.context import AppContext
from routing.outbound.audience import Audience, audience_conditions
from routing.texts.variables import Template, recipients_values
from storage.models import Supporter


async def longest_variant(
    ctx: AppContext, audience: Audience, template: Template, *, batch_size: int = 5000
) -> str:
    """The longest text any member would get (most SMS segments, then most characters);
    the text itself when it has no variables."""
    longest = template.literal()
    if not template.has_variables:
        return longest
    best = (sms_segments(longest), len(longest))
    after = 0
    while True:
        async with ctx.sessions() as session:  # one short transaction per batch
            ids = list(
                (
                    await session.exec(
                        select(col(Supporter.id))
                        .where(col(Supporter.id) > after, *audience_conditions(audience))
                        .order_by(col(Supporter.id))
                        .limit(batch_size)
                    )
                ).all()
            )
            values = await recipients_values(session, template, [i for i in ids if i])
        for name, fields in values.values():
            text = template.render(name, fields)
            if len(text) >= best[1] or sms_segments(text) > best[0]:
                rank = (sms_segments(text), len(text))
                if rank > best:
                    best, longest = rank, text
        if len(ids) < batch_size:
            return longest
        after = ids[-1] or 0

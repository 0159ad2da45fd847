"""Fan-out chooses channels per distinct case, not per supporter: every message must still
be what pick_channel and queue_message give that supporter, stored byte for byte alike."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, select, text
from sqlmodel import col

from routing.context import AppContext
from routing.outbound.audience import Audience, preview_audience
from routing.outbound.fanout import fan_out
from routing.outbound.queue import addresses_of, pick_channel, queue_message
from storage.models import Announcement, Conversation, Message, Supporter, SupporterAddress
from storage.queries import conversation_for
from tests.gateway.seed import add_member, make_team, messages_of
from tests.routing.fake_adapter import FakeAdapter

TEMPLATE = {"name": "event_reminder", "language": "en"}


async def _population(ctx: AppContext, team: int) -> dict[str, int]:
    now = ctx.clock()
    ids = {
        "sms": await add_member(ctx, {"sms": "+14155550001"}, teams=[team]),
        "sms_too": await add_member(ctx, {"sms": "+14155550002"}, teams=[team]),
        "email_and_sms": await add_member(
            ctx, {"sms": "+14155550012", "email": "s@example.org"}, teams=[team]
        ),
        "prefers_email": await add_member(
            ctx,
            {"sms": "+14155550003", "email": "e@example.org"},
            teams=[team],
            preferred=["email"],
        ),
        "wa_open": await add_member(ctx, {"whatsapp": "+14155550004"}, teams=[team]),
        "wa_closed": await add_member(
            ctx,
            {"whatsapp": "+14155550005", "sms": "+14155550005"},
            teams=[team],
            preferred=["whatsapp"],
        ),
        "telegram_only": await add_member(ctx, {"telegram": "4242"}, teams=[team]),
        "no_address": await add_member(ctx, {}, teams=[team]),
        "opted_out": await add_member(ctx, {"sms": "+14155550008"}, teams=[team], opted_out=True),
        "sms_blocked": await add_member(
            ctx, {"sms": "+14155550009", "email": "b@example.org"}, teams=[team]
        ),
        "two_sms": await add_member(ctx, {"sms": "+14155550010"}, teams=[team]),
        "has_conversation": await add_member(ctx, {"sms": "+14155550011"}, teams=[team]),
    }
    async with ctx.sessions() as session:
        for name, hours in (("wa_open", 1), ("wa_closed", 30)):
            address = (await addresses_of(session, ids[name]))[0]
            address.last_inbound_at = now - timedelta(hours=hours)
        (await addresses_of(session, ids["sms_blocked"]))[0].opted_out = True
        session.add(
            SupporterAddress(supporter_id=ids["two_sms"], channel="sms", address="+14155550099")
        )
        await conversation_for(session, ids["has_conversation"], now)
        await session.commit()
    return ids


async def _announce(ctx: AppContext, team: int, template: dict[str, Any] | None) -> int:
    async with ctx.sessions() as session:
        announcement = Announcement(
            body="Phone bank tonight",
            audience={"teams": [team]},
            template=template,
            created_at=ctx.clock(),
        )
        session.add(announcement)
        await session.commit()
        assert announcement.id is not None
    await fan_out(ctx, announcement.id, batch_size=4)  # several batches
    return announcement.id


async def _expected(ctx: AppContext, supporter_id: int, has_template: bool) -> tuple[Any, ...]:
    async with ctx.sessions() as session:
        supporter = await session.get(Supporter, supporter_id)
        assert supporter is not None
        choice = pick_channel(
            supporter,
            await addresses_of(session, supporter_id),
            settings=ctx.settings,
            enabled=ctx.registry.enabled_channels,
            now=ctx.clock(),
            has_template=has_template,
        )
    return (
        choice.channel,
        choice.address,
        {"skipped": choice.skipped, "template": choice.use_template},
    )


async def test_each_message_is_what_pick_channel_gives_its_supporter(
    client: httpx.AsyncClient,
) -> None:
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    ctx.registry.add(FakeAdapter(channels=("sms", "whatsapp", "email")))
    team = await make_team(ctx, "Everyone")
    ids = await _population(ctx, team)
    for template in (None, TEMPLATE):
        announcement_id = await _announce(ctx, team, template)
        got = {m.supporter_id: m for m in await messages_of(ctx, announcement_id)}
        assert sorted(got) == sorted(ids.values())
        for supporter_id, message in got.items():
            expected = await _expected(ctx, supporter_id, template is not None)
            assert (message.channel, message.address, message.channel_choice) == expected
        by_name = {name: got[i] for name, i in ids.items()}
        # The cases themselves, so a wrong reference could not hide a wrong fan-out.
        assert by_name["sms"].address == "+14155550001"
        assert by_name["sms_too"].address == "+14155550002"  # same case, its own address
        assert by_name["prefers_email"].channel == "email"
        assert by_name["email_and_sms"].channel == "sms"  # same addresses, no preference
        assert (by_name["wa_open"].channel, by_name["wa_open"].status) == ("whatsapp", "queued")
        assert by_name["two_sms"].address == "+14155550099"  # the later address, as before
        assert by_name["sms_blocked"].channel == "email"
        skipped = by_name["sms_blocked"].channel_choice["skipped"]
        assert skipped["sms"] == "opted out of this channel"
        assert (by_name["opted_out"].status, by_name["opted_out"].error) == (
            "skipped",
            "opted out",
        )
        assert by_name["no_address"].status == "failed"
        assert by_name["telegram_only"].status == "failed"
        assert "telegram: not configured" in (by_name["telegram_only"].error or "")
        closed = by_name["wa_closed"]
        if template is None:
            assert closed.channel == "sms" and closed.segments == 1
        else:
            assert closed.channel == "whatsapp" and closed.channel_choice["template"] is True
            assert closed.template == TEMPLATE and closed.segments is None
    async with ctx.sessions() as session:
        per_supporter = (
            await session.execute(
                select(col(Conversation.supporter_id), func.count()).group_by(
                    col(Conversation.supporter_id)
                )
            )
        ).all()
    convo_of = {m.supporter_id: m.conversation_id for m in await messages_of(ctx)}
    # Conversations were created once, in bulk, and the existing one was reused.
    assert sorted(s for s, n in per_supporter if n == 1) == sorted(ids.values())
    async with ctx.sessions() as session:
        for supporter_id, conversation_id in convo_of.items():
            convo = await session.get(Conversation, conversation_id)
            assert convo is not None and convo.supporter_id == supporter_id


async def test_fan_out_rows_are_stored_as_queue_message_stores_them(
    client: httpx.AsyncClient,
) -> None:
    """Messages are written by executemany with values bound once: every stored column
    must equal what the ORM path writes (datetimes as UTC, JSON the same text)."""
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    ctx.registry.add(FakeAdapter(channels=("sms", "whatsapp")))
    team = await make_team(ctx, "Everyone")
    ids = await _population(ctx, team)
    announcement_id = await _announce(ctx, team, TEMPLATE)
    columns = [c for c in Message.__table__.columns.keys() if c not in ("id", "announcement_id")]  # type: ignore[attr-defined]
    listed = ", ".join(f'"{c}"' for c in columns)
    for name in ("sms", "wa_closed", "opted_out", "no_address"):
        async with ctx.sessions() as session:
            supporter = await session.get(Supporter, ids[name])
            assert supporter is not None
            direct = await queue_message(
                session,
                ctx,
                supporter,
                "Phone bank tonight",
                kind="announcement",
                template=TEMPLATE,
            )
            await session.commit()
            raw = await session.execute(
                text(
                    f"SELECT {listed} FROM messages WHERE id = :id"  # noqa: S608
                    " OR (announcement_id = :a AND supporter_id = :s) ORDER BY id"
                ),
                {"id": direct.id, "a": announcement_id, "s": ids[name]},
            )
            fanned, queued = raw.all()
        assert tuple(fanned) == tuple(queued), name


async def test_preview_counts_what_the_fan_out_writes(client: httpx.AsyncClient) -> None:
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    ctx.registry.add(FakeAdapter(channels=("sms", "whatsapp", "email")))
    team = await make_team(ctx, "Everyone")
    ids = await _population(ctx, team)
    preview = await preview_audience(ctx, Audience(teams=(team,)), has_template=False, batch_size=4)
    written = await messages_of(ctx, await _announce(ctx, team, None))
    queued = [m.channel for m in written if m.status == "queued"]
    assert preview.recipients == len(written) == len(ids)
    assert preview.skipped == sum(m.status == "skipped" for m in written) == 1
    assert preview.unreachable == sum(m.status == "failed" for m in written) == 2
    assert preview.by_channel == {c: queued.count(c) for c in set(queued)}
    assert preview.by_channel == {"sms": 6, "email": 2, "whatsapp": 1}

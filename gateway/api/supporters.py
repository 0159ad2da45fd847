"""/api/v1/supporters: create, list, read, change and forget supporters."""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.base import BotDirectory, Channel
from channels.registry import Registry
from gateway.api.ids import IdPath
from gateway.api.pagination import Cursor, Limit, Page
from gateway.api.privacy import erase_completely
from gateway.api.problems import errors
from gateway.api.schemas_supporters import (
    AddressPublic,
    SupporterCreate,
    SupporterPatch,
    SupporterPublic,
    SupporterStats,
    TeamRef,
    TelegramLink,
    domain_fields,
)
from gateway.api.scope import (
    SessionDep,
    lead_team,
    visible_supporter,
)
from gateway.api.supporter_search import SupporterFilters, supporter_page
from gateway.auth import AnyRole, Context
from gateway.settings import Settings
from routing.people.supporters import (
    AddressTaken,
    FieldError,
    OutsideTeam,
    create_supporter,
    update_supporter,
)
from storage.field_values import values_by_supporter
from storage.models import Supporter
from storage.queries import (
    addresses_by_supporter,
    message_stats,
    tags_by_supporter,
    teams_by_supporter,
)

router = APIRouter(prefix="/supporters", tags=["supporters"])


@contextmanager
def domain_errors(loc_prefix: str = "body") -> Iterator[None]:
    """Turn routing.people.supporters' errors into the contract's answers (422, 409, 403)."""
    try:
        yield
    except FieldError as exc:
        raise RequestValidationError(
            [{"loc": (loc_prefix, *exc.loc), "msg": exc.message, "type": "value_error"}]
        ) from exc
    except AddressTaken as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    except OutsideTeam as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
    except IntegrityError as exc:
        # A concurrent request took the same address between our check and our insert.
        raise HTTPException(status.HTTP_409_CONFLICT, "an address is already taken") from exc


async def supporter_views(
    session: AsyncSession, supporters: Sequence[Supporter]
) -> list[SupporterPublic]:
    """Supporters as the API shows them, with addresses, tags, teams and counts."""
    ids = [s.id for s in supporters if s.id is not None]
    addresses = await addresses_by_supporter(session, ids)
    tags = await tags_by_supporter(session, ids)
    teams = await teams_by_supporter(session, ids)
    stats = await message_stats(session, ids)
    custom = await values_by_supporter(session, ids)
    views = []
    for s in supporters:
        assert s.id is not None
        views.append(
            SupporterPublic(
                id=s.id,
                name=s.name,
                addresses=[
                    AddressPublic(
                        channel=a.channel,
                        address=a.address,
                        opted_out=a.opted_out,
                        last_inbound_at=a.last_inbound_at,
                    )
                    for a in addresses[s.id]
                ],
                preferred_channels=list(s.preferred_channels or []),
                language=s.language,
                timezone=s.timezone,
                opted_out=s.opted_out,
                tags=tags[s.id],
                teams=[TeamRef(id=t.id or 0, name=t.name) for t in teams[s.id]],
                assigned_to=s.assigned_to,
                data_saver=s.data_saver,
                source=s.source,
                last_inbound_at=s.last_inbound_at,
                last_one_on_one_at=s.last_one_on_one_at,
                created_at=s.created_at,
                updated_at=s.updated_at,
                stats=SupporterStats(**stats[s.id]),
                fields=custom[s.id],
            )
        )
    return views


async def supporter_view(session: AsyncSession, supporter: Supporter) -> SupporterPublic:
    return (await supporter_views(session, [supporter]))[0]


ADDRESS_TAKEN = "an address belongs to another supporter"


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SupporterPublic,
    responses=errors({409: ADDRESS_TAKEN}),
)
async def create(
    body: SupporterCreate, principal: AnyRole, ctx: Context, session: SessionDep
) -> SupporterPublic:
    """Add a supporter. A team lead's supporters join the lead's team."""
    with domain_errors():
        supporter = await create_supporter(
            session,
            domain_fields(body),
            now=ctx.clock(),
            default_region=ctx.settings.default_region,
            lead_team_id=lead_team(principal),
            erasure_key=ctx.settings.erasure_key,
        )
        await session.commit()
    return await supporter_view(session, supporter)


@router.get("", response_model=Page[SupporterPublic])
async def list_supporters(
    principal: AnyRole,
    ctx: Context,
    session: SessionDep,
    team: Annotated[str | None, Query(description="team id or name")] = None,
    tag: str | None = None,
    channel: Channel | None = None,
    q: Annotated[
        str | None,
        Query(description="part of a name or an address (a phone number with or without spaces)"),
    ] = None,
    assigned_to: str | None = None,
    opted_out: bool | None = None,
    inactive_days: Annotated[
        int | None,
        Query(
            ge=0,
            le=36500,
            description="nothing received from them for this many days "
            "(never replied: counted from when they were added)",
        ),
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[SupporterPublic]:
    page, next_cursor = await supporter_page(
        session,
        principal,
        SupporterFilters(
            q=q,
            team=team,
            tag=tag,
            channel=channel,
            assigned_to=assigned_to,
            opted_out=opted_out,
            inactive_days=inactive_days,
        ),
        now=ctx.clock(),
        limit=limit,
        cursor=cursor,
    )
    return Page(items=await supporter_views(session, page), next_cursor=next_cursor)


@router.get("/{supporter_id}", response_model=SupporterPublic)
async def read(supporter_id: IdPath, principal: AnyRole, session: SessionDep) -> SupporterPublic:
    return await supporter_view(session, await visible_supporter(session, principal, supporter_id))


@router.patch(
    "/{supporter_id}", response_model=SupporterPublic, responses=errors({409: ADDRESS_TAKEN})
)
async def patch(
    supporter_id: IdPath,
    body: SupporterPatch,
    principal: AnyRole,
    ctx: Context,
    session: SessionDep,
) -> SupporterPublic:
    """Replace the fields given (addresses, tags and teams as whole lists)."""
    supporter = await visible_supporter(session, principal, supporter_id)
    with domain_errors():
        await update_supporter(
            session,
            supporter,
            domain_fields(body),
            now=ctx.clock(),
            default_region=ctx.settings.default_region,
            lead_team_id=lead_team(principal),
            erasure_key=ctx.settings.erasure_key,
        )
        await session.commit()
    return await supporter_view(session, supporter)


@router.delete("/{supporter_id}", status_code=status.HTTP_204_NO_CONTENT)
async def forget(
    supporter_id: IdPath, request: Request, principal: AnyRole, ctx: Context, session: SessionDep
) -> Response:
    """Delete the supporter and everything about them: the same complete erasure as
    `POST /supporters/{id}/erase` (do-not-contact list, audit entry, WAL emptied)."""
    await erase_completely(supporter_id, request, principal, ctx, session)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{supporter_id}/telegram-link", response_model=TelegramLink)
async def telegram_link(
    supporter_id: IdPath, principal: AnyRole, ctx: Context, session: SessionDep
) -> TelegramLink:
    """A deep-link token: the supporter's `/start <token>` to the bot links their chat.
    `url` is the t.me link to send them; null, with `url_error` saying why, when there is
    no bot to name (Telegram not configured, or getMe failing and no TELEGRAM_BOT_USERNAME)."""
    supporter = await visible_supporter(session, principal, supporter_id)
    if not supporter.telegram_link_token:
        supporter.telegram_link_token = secrets.token_urlsafe(16)
        session.add(supporter)
        await session.commit()
    token = supporter.telegram_link_token
    bot, why = await deep_link_bot(ctx.settings, ctx.registry)
    url = f"https://t.me/{bot}?start={token}" if bot else None
    return TelegramLink(token=token, start_parameter=token, url=url, url_error=why)


async def deep_link_bot(settings: Settings, registry: Registry) -> tuple[str | None, str | None]:
    """(the bot's username, None), or (None, why there is none)."""
    adapter = registry.for_channel("telegram")
    if adapter is None:
        return None, "Telegram is not configured, so the bot would not see /start"
    if settings.telegram_bot_username:
        return settings.telegram_bot_username, None
    username = await adapter.bot_username() if isinstance(adapter, BotDirectory) else None
    if username is None:
        return None, "the bot's username could not be fetched (getMe); set TELEGRAM_BOT_USERNAME"
    return username, None

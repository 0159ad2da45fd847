"""Editing a supporter (GET/POST /console/supporters/{id}/edit): name, one address per
channel, preferred channels in order, language, time zone, tags, teams and custom fields.
The form is read into the REST API's SupporterPatch and applied by the same
update_supporter as PATCH /api/v1/supporters/{id}; bad input or an address another
supporter holds (409) re-renders the form with what was typed and changes nothing."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from channels.base import ALL_CHANNELS
from gateway.api.ids import IdPath
from gateway.api.schemas_supporters import SupporterPatch, domain_fields
from gateway.api.scope import SessionDep, lead_team, visible_supporter
from gateway.console.security import CurrentUser
from gateway.console.supporters import teams_for
from gateway.console.templating import render
from routing.people.fields import all_fields
from routing.people.supporters import AddressTaken, FieldError, OutsideTeam, update_supporter
from storage.field_values import values_by_supporter
from storage.models import CustomField, Supporter
from storage.queries import addresses_by_supporter, tags_by_supporter, teams_by_supporter

router = APIRouter()
# Form field → the channel of the address it holds, in the form's order.
ADDRESS_FIELDS = {
    "phone": "sms",
    "whatsapp": "whatsapp",
    "telegram": "telegram",
    "email": "email",
    "signal": "signal",
}
TEXT_FIELDS = ("name", *ADDRESS_FIELDS, "preferred_channels", "language", "timezone", "tags")
LABELS = {
    "name": "Name",
    "phone": "Phone (SMS)",
    "whatsapp": "WhatsApp",
    "telegram": "Telegram chat id",
    "email": "Email",
    "signal": "Signal",
    "preferred_channels": "Preferred channels",
    "language": "Language",
    "timezone": "Time zone",
    "tags": "Tags",
    "teams": "Teams",
    "data_saver": "Data saver",
}
MAX_FIELD = 2000
CUSTOM_PREFIX = "field."  # a custom field's form input: field.<name>


def split_list(text: str) -> list[str]:
    return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]


async def current_values(session: AsyncSession, supporter: Supporter) -> dict[str, Any]:
    """The form's fields filled from the stored supporter."""
    assert supporter.id is not None
    sid = supporter.id
    by_channel = {a.channel: a.address for a in (await addresses_by_supporter(session, [sid]))[sid]}
    values: dict[str, Any] = {
        "name": supporter.name,
        **{field: by_channel.get(channel, "") for field, channel in ADDRESS_FIELDS.items()},
        "preferred_channels": ", ".join(supporter.preferred_channels or []),
        "language": supporter.language or "",
        "timezone": supporter.timezone or "",
        "tags": ", ".join((await tags_by_supporter(session, [sid]))[sid]),
        "teams": [str(t.id) for t in (await teams_by_supporter(session, [sid]))[sid]],
        "data_saver": supporter.data_saver,
        "custom": (await values_by_supporter(session, [sid]))[sid],
    }
    return values


async def render_form(
    request: Request,
    user: CurrentUser,
    session: AsyncSession,
    supporter: Supporter,
    values: dict[str, Any],
    *,
    errors: list[str] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "supporter_edit.html",
        {
            "supporter": supporter,
            "values": values,
            "errors": errors or [],
            "labels": LABELS,
            "address_fields": ADDRESS_FIELDS,
            "channels": ALL_CHANNELS,
            "custom_fields": await all_fields(session),
            # A team lead manages only their own team's membership: the teams field is
            # left out for them (update_supporter would keep other teams anyway).
            "teams": [] if user.principal.is_team_lead else await teams_for(session, user),
        },
        status_code=status_code,
    )


@router.get("/supporters/{supporter_id:int}/edit", include_in_schema=False)
async def edit_form(
    request: Request, supporter_id: IdPath, user: CurrentUser, session: SessionDep
) -> Response:
    supporter = await visible_supporter(session, user.principal, supporter_id)
    return await render_form(
        request, user, session, supporter, await current_values(session, supporter)
    )


def _patch_of(
    values: dict[str, Any], with_teams: bool, fields: list[CustomField] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": values["name"].strip(),
        "addresses": [
            {"channel": channel, "address": values[field]}
            for field, channel in ADDRESS_FIELDS.items()
            if values[field].strip()
        ],
        "preferred_channels": [c.lower() for c in split_list(values["preferred_channels"])],
        "language": values["language"].strip() or None,
        "timezone": values["timezone"].strip() or None,
        "tags": split_list(values["tags"]),
        "data_saver": bool(values["data_saver"]),
    }
    if with_teams:
        body["teams"] = values["teams"]
    if fields:
        custom = values.get("custom", {})
        body["fields"] = {f.name: (custom.get(f.name) or "").strip() or None for f in fields}
    return body


def _label_of(loc: tuple[Any, ...], body: dict[str, Any]) -> str:
    if not loc:
        return "Form"
    if loc[0] == "addresses" and len(loc) > 1 and isinstance(loc[1], int):
        if loc[1] < len(body["addresses"]):
            channel = body["addresses"][loc[1]]["channel"]
            return next(LABELS[f] for f, c in ADDRESS_FIELDS.items() if c == channel)
    if loc[0] == "fields" and len(loc) > 1:
        return str(loc[1])
    return LABELS.get(str(loc[0]), str(loc[0]))


@router.post("/supporters/{supporter_id:int}/edit", include_in_schema=False)
async def save(
    request: Request, supporter_id: IdPath, user: CurrentUser, session: SessionDep
) -> Response:
    supporter = await visible_supporter(session, user.principal, supporter_id)
    form = await request.form()
    values: dict[str, Any] = {}
    for field in TEXT_FIELDS:
        raw = form.get(field)
        values[field] = raw[:MAX_FIELD] if isinstance(raw, str) else ""
    values["teams"] = [t for t in form.getlist("teams") if isinstance(t, str)][:100]
    values["data_saver"] = form.get("data_saver") == "on"
    fields = await all_fields(session)
    values["custom"] = {}
    for custom_field in fields:
        raw = form.get(CUSTOM_PREFIX + custom_field.name)
        values["custom"][custom_field.name] = raw[:MAX_FIELD] if isinstance(raw, str) else ""
    body = _patch_of(values, with_teams=not user.principal.is_team_lead, fields=fields)

    async def again(errors: list[str], code: int) -> Response:
        await session.rollback()
        fresh = await visible_supporter(session, user.principal, supporter_id)
        return await render_form(
            request, user, session, fresh, values, errors=errors, status_code=code
        )

    try:
        patch = SupporterPatch.model_validate(body)
    except ValidationError as exc:
        errors = [f"{_label_of(tuple(e['loc']), body)}: {e['msg']}" for e in exc.errors()]
        return await again(errors, status.HTTP_422_UNPROCESSABLE_CONTENT)
    ctx = request.app.state.ctx
    try:
        await update_supporter(
            session,
            supporter,
            domain_fields(patch),
            now=ctx.clock(),
            default_region=ctx.settings.default_region,
            lead_team_id=lead_team(user.principal),
            erasure_key=ctx.settings.erasure_key,
        )
        await session.commit()
    except FieldError as exc:
        return await again(
            [f"{_label_of(exc.loc, body)}: {exc.message}"], status.HTTP_422_UNPROCESSABLE_CONTENT
        )
    except AddressTaken as exc:
        label = (
            "Phone number"
            if exc.channel in ("sms", "whatsapp")
            else LABELS.get(exc.channel, exc.channel).capitalize()
        )
        return await again(
            [f"{label} {exc.address} already belongs to another supporter."],
            status.HTTP_409_CONFLICT,
        )
    except OutsideTeam as exc:
        return await again([str(exc).capitalize() + "."], status.HTTP_403_FORBIDDEN)
    except IntegrityError:
        return await again(
            ["An address was taken by another supporter meanwhile."], status.HTTP_409_CONFLICT
        )
    return RedirectResponse(
        f"/console/supporters/{supporter_id}", status_code=status.HTTP_303_SEE_OTHER
    )

"""Polls in the console: the list, the form that sends one (POST /api/v1/polls's
start_poll, with the form's Idempotency-Key), and a poll's page with its tally (inline SVG
chart and table) and who answered and who did not."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from gateway.api.announcement_recipients import Recipient, recipient_page
from gateway.api.ids import IdPath
from gateway.api.polls import PollCreate, list_polls, poll_results, start_poll, visible_poll
from gateway.api.scope import SessionDep
from gateway.auth import Context
from gateway.console.audience_form import (
    KEY_PREFIX,
    AudienceChoice,
    FormError,
    new_idempotency_key,
    parse_send_at,
    picker_context,
    team_options,
    text,
)
from gateway.console.charts import bar_chart
from gateway.console.security import CurrentUser
from gateway.console.sessions import ConsoleUser
from gateway.console.templating import render
from routing.organizing.checkins import org_timezone

router = APIRouter()
PEOPLE_SHOWN = 200


@router.get("/polls", include_in_schema=False)
async def poll_list(
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    page = await list_polls(session, user.principal, limit=50, cursor=cursor)
    return render(request, "polls.html", {"polls": page.items, "next_cursor": page.next_cursor})


async def _form_page(
    request: Request,
    user: ConsoleUser,
    ctx: Context,
    session: SessionDep,
    *,
    question: str = "",
    options: str = "",
    choice: AudienceChoice | None = None,
    send_at: str = "",
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    teams = await team_options(session, user)
    context = {
        "question": question,
        "options": options,
        "send_at": send_at,
        "error": error,
        "key": new_idempotency_key(),
        **picker_context(teams, choice or AudienceChoice(), user, org_timezone(ctx)),
    }
    return render(request, "poll_new.html", context, status_code=status_code)


@router.get("/polls/new", include_in_schema=False)
async def new_poll(
    request: Request, user: CurrentUser, ctx: Context, session: SessionDep
) -> Response:
    return await _form_page(request, user, ctx, session)


@router.post("/polls", include_in_schema=False)
async def send_poll(
    request: Request, user: CurrentUser, ctx: Context, session: SessionDep
) -> Response:
    form = await request.form()
    question, options = text(form, "question", 2000), text(form, "options", 4000)
    choice = AudienceChoice.from_form(form, user)
    send_at_text = text(form, "send_at", 40)
    key = text(form, "idempotency_key", 200)
    try:
        if not key.startswith(KEY_PREFIX):
            raise FormError("The form expired; send it again.")
        when = parse_send_at(send_at_text, org_timezone(ctx), ctx.clock())
        try:
            payload = PollCreate(
                question=question,
                options=[line for line in options.splitlines() if line.strip()],
                audience=choice.to_api(),
                send_at=when,
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            field = str(first["loc"][0]) if first["loc"] else "form"
            raise FormError(f"{field.capitalize()}: {first['msg']}") from None
    except FormError as exc:
        return await _form_page(
            request,
            user,
            ctx,
            session,
            question=question,
            options=options,
            choice=choice,
            send_at=send_at_text,
            error=str(exc),
            status_code=422,
        )
    await session.close()  # start_poll runs its own transactions
    poll, _, _ = await start_poll(ctx, user.principal, payload, key)
    return RedirectResponse(f"/console/polls/{poll.id}", status_code=status.HTTP_303_SEE_OTHER)


@router.get("/polls/{poll_id:int}", include_in_schema=False)
async def poll_page(
    poll_id: IdPath, request: Request, user: CurrentUser, session: SessionDep
) -> Response:
    poll, announcement = await visible_poll(session, user.principal, poll_id)
    results = await poll_results(session, poll, announcement)
    chart = bar_chart(
        "Answers by option",
        [(item.option, [("answers", item.count)]) for item in results.tally],
        ["answers"],
    )
    answered: list[Recipient] = []
    silent: list[Recipient] = []
    more_answered = more_silent = False
    if announcement is not None:
        answered, more_answered = await recipient_page(
            session, announcement, replied=True, limit=PEOPLE_SHOWN
        )
        silent, more_silent = await recipient_page(
            session, announcement, replied=False, limit=PEOPLE_SHOWN
        )
    options = list(poll.options or [])
    context = {
        "poll": results,
        "chart": chart,
        "answered": [
            (p, options[p.answer] if p.answer is not None and p.answer < len(options) else "")
            for p in answered
        ],
        "more_answered": more_answered,
        "silent": silent,
        "more_silent": more_silent,
    }
    return render(request, "poll.html", context)

"""The Simulator (GET/POST /console/simulator, demo mode only; 404 otherwise): play a
supporter. Pick one (or a new number) and a channel, type as them, and see what they
receive. Sending goes out as their provider would send it (a signed webhook to the app's
own endpoint, or mail to its SMTP listener), so every reaction is the real one; what
comes back is what the provider fakes were asked to deliver to that address.

gateway/demo provides the backend (`app.state.demo`); this page knows it only through
`SimulatorBackend`, so the console does not depend on the demo wiring."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Protocol
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request, Response
from fastapi.responses import RedirectResponse
from sqlmodel import col, select

from gateway.api.scope import SessionDep, supporter_scope
from gateway.console.security import CurrentUser
from gateway.console.sessions import ConsoleUser
from gateway.console.templating import render
from storage.models import Supporter, SupporterAddress

router = APIRouter()
CHANNEL_NAMES = {"sms": "SMS", "whatsapp": "WhatsApp", "telegram": "Telegram", "email": "Email"}
NEW = "new"
MAX_PEOPLE = 500
MAX_TEXT = 4096


class TranscriptLine(Protocol):
    @property
    def seq(self) -> int: ...
    @property
    def direction(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def at(self) -> datetime: ...


class SimulatorBackend(Protocol):
    async def send(self, channel: str, address: str, text: str, name: str) -> str | None:
        """Deliver as the supporter; None, or why it was not delivered (a sentence)."""

    def transcript(self, channel: str, address: str) -> Sequence[TranscriptLine]: ...


def demo_backend(request: Request) -> SimulatorBackend:
    backend: SimulatorBackend | None = getattr(request.app.state, "demo", None)
    if backend is None:
        raise HTTPException(404, "no such page")
    return backend


Backend = Annotated[SimulatorBackend, Depends(demo_backend)]


@dataclass(frozen=True)
class Person:
    id: int
    name: str
    addresses: dict[str, str]  # channel -> address


@dataclass(frozen=True)
class Choice:
    """What the form asks for: a supporter (or NEW), a channel, an address for NEW."""

    supporter: str = ""
    channel: str = ""
    address: str = ""


async def people(session: SessionDep, user: ConsoleUser) -> list[Person]:
    """Supporters this user may see, by name, each with their addresses."""
    query = select(Supporter).order_by(col(Supporter.name), col(Supporter.id)).limit(MAX_PEOPLE)
    scope = supporter_scope(user.principal)
    if scope is not None:
        query = query.where(scope)
    rows = list((await session.exec(query)).all())
    ids = [s.id for s in rows if s.id is not None]
    found: dict[int, dict[str, str]] = {i: {} for i in ids}
    if ids:
        addresses = select(SupporterAddress).where(col(SupporterAddress.supporter_id).in_(ids))
        for row in (await session.exec(addresses)).all():
            found[row.supporter_id].setdefault(row.channel, row.address)
    return [Person(s.id, s.name, found[s.id]) for s in rows if s.id is not None]


def resolve(choice: Choice, everyone: list[Person]) -> tuple[str, str, str]:
    """(channel, address, name) the choice points at; ValueError with a sentence if none."""
    if choice.supporter == NEW:
        if choice.channel not in CHANNEL_NAMES:
            raise ValueError("Choose a channel.")
        if not choice.address.strip():
            raise ValueError("Give the new supporter's number or address.")
        return choice.channel, choice.address.strip(), ""
    person = next((p for p in everyone if str(p.id) == choice.supporter), None)
    if person is None:
        raise ValueError("Choose a supporter.")
    channel = choice.channel or next(iter(person.addresses), "")
    if channel not in person.addresses:
        have = ", ".join(CHANNEL_NAMES[c] for c in person.addresses if c in CHANNEL_NAMES)
        raise ValueError(
            f"{person.name} has no {CHANNEL_NAMES.get(channel, 'such')} address"
            + (f" (they have: {have})." if have else ".")
        )
    return channel, person.addresses[channel], person.name


def page(
    request: Request,
    backend: SimulatorBackend,
    everyone: list[Person],
    choice: Choice,
    *,
    body: str = "",
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    target: tuple[str, str, str] | None = None
    if choice.supporter and error is None:
        try:
            target = resolve(choice, everyone)
        except ValueError as exc:
            error = str(exc)
    lines = backend.transcript(target[0], target[1]) if target else []
    return render(
        request,
        "simulator.html",
        {
            "people": everyone,
            "channels": CHANNEL_NAMES,
            "choice": choice,
            "body": body,
            "error": error,
            "target": target,
            "lines": lines,
            "feed_url": feed_url(target[0], target[1]) if target else "",
        },
        status_code=status_code,
    )


def feed_url(channel: str, address: str) -> str:
    return "/console/simulator/messages?" + urlencode({"channel": channel, "address": address})


@router.get("/simulator", include_in_schema=False)
async def simulator(
    backend: Backend,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    supporter: Annotated[str, Query(max_length=20)] = "",
    channel: Annotated[str, Query(max_length=16)] = "",
    address: Annotated[str, Query(max_length=320)] = "",
) -> Response:
    everyone = await people(session, user)
    return page(request, backend, everyone, Choice(supporter, channel, address))


@router.get("/simulator/messages", include_in_schema=False)
async def messages(
    backend: Backend,
    request: Request,
    user: CurrentUser,
    channel: Annotated[str, Query(max_length=16)],
    address: Annotated[str, Query(max_length=320)],
    after: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """The chat list alone, for the page to poll (htmx swaps it in): 204 (htmx leaves the
    page alone) while nothing arrived after message number `after`."""
    lines = backend.transcript(channel, address)
    if not any(line.seq > after for line in lines):
        return Response(status_code=204, headers={"Cache-Control": "no-store"})
    return render(
        request,
        "simulator_messages.html",
        {"lines": lines, "feed_url": feed_url(channel, address)},
    )


@router.post("/simulator", include_in_schema=False)
async def simulate(
    backend: Backend,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    supporter: Annotated[str, Form(max_length=20)] = "",
    channel: Annotated[str, Form(max_length=16)] = "",
    address: Annotated[str, Form(max_length=320)] = "",
    body: Annotated[str, Form(max_length=MAX_TEXT)] = "",
    action: Annotated[str, Form(max_length=10)] = "send",
) -> Response:
    """ "Send as supporter" delivers the message; "Show their phone" only opens the chosen
    supporter's messages (a POST so the form's CSRF token never lands in a URL)."""
    everyone = await people(session, user)
    choice = Choice(supporter, channel, address)
    try:
        target_channel, target_address, name = resolve(choice, everyone)
    except ValueError as exc:
        return page(request, backend, everyone, choice, body=body, error=str(exc), status_code=400)
    if action == "show":
        return RedirectResponse(view_url(supporter, target_channel, target_address), 303)
    if not body.strip():
        error = "Type what the supporter writes."
        return page(request, backend, everyone, choice, body=body, error=error, status_code=400)
    # End this request's transaction first: on SQLite every transaction takes the write
    # lock (BEGIN IMMEDIATE), and the webhook we are about to send must store its message.
    await session.commit()
    refused = await backend.send(target_channel, target_address, body, name)
    if refused is not None:
        return page(request, backend, everyone, choice, body=body, error=refused, status_code=400)
    return RedirectResponse(view_url(supporter, target_channel, target_address), 303)


def view_url(supporter: str, channel: str, address: str) -> str:
    query = {"supporter": supporter, "channel": channel}
    if supporter == NEW:
        query["address"] = address
    return "/console/simulator?" + urlencode(query)

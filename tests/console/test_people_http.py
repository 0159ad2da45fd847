"""Supporter and team pages over plain HTTP (no browser): CSRF refusals, scope, errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
from sqlmodel import select

from gateway.users import create_user
from storage.models import (
    Conversation,
    Supporter,
    SupporterAddress,
    SupporterTag,
    Team,
    TeamMembership,
)
from tests.console.test_console_http import PASSWORD, add_user, csrf_of, sign_in

Factory = Callable[..., Awaitable[httpx.AsyncClient]]


async def signed_in(make_client: Factory) -> httpx.AsyncClient:
    client = await make_client()
    await add_user(client)
    assert (await sign_in(client)).status_code == 303
    return client


async def add_supporter(client: httpx.AsyncClient, name: str = "Ann") -> int:
    ctx = client.ctx  # type: ignore[attr-defined]
    async with ctx.sessions() as session:
        row = Supporter(name=name, created_at=ctx.clock(), updated_at=ctx.clock())
        session.add(row)
        await session.commit()
        assert row.id is not None
        return row.id


async def test_bulk_tag_without_the_csrf_token_is_refused(make_client: Factory) -> None:
    client = await signed_in(make_client)
    sid = await add_supporter(client)
    data = {"supporter_ids": str(sid), "tag": "x", "action": "add"}
    forged = await client.post("/console/supporters/tags", data=data)
    assert forged.status_code == 403 and "<h1>Forbidden</h1>" in forged.text
    wrong = await client.post("/console/supporters/tags", data={**data, "csrf_token": "y" * 43})
    assert wrong.status_code == 403
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        assert (await session.exec(select(SupporterTag))).all() == []
    page = await client.get("/console/supporters")
    done = await client.post(
        "/console/supporters/tags", data={**data, "csrf_token": csrf_of(page.text)}
    )
    assert done.status_code == 303 and done.headers["location"] == "/console/supporters?changed=1"


async def test_list_survives_bad_filters(make_client: Factory) -> None:
    client = await signed_in(make_client)
    await add_supporter(client, "<b>Bold</b>")
    page = await client.get("/console/supporters?inactive=soon&team=999&channel=fax&cursor=zz")
    assert page.status_code in (400, 422) and "Traceback" not in page.text
    listed = await client.get("/console/supporters?inactive=soon&team=999&channel=fax")
    assert listed.status_code == 400 and "whole number of days" in listed.text
    assert 'value="soon"' in listed.text and "&lt;b&gt;Bold&lt;/b&gt;" in listed.text


async def lead_client(make_client: Factory) -> tuple[httpx.AsyncClient, int, int]:
    """A signed-in team lead of North; returns (client, north id, south id)."""
    client = await make_client()
    ctx = client.ctx  # type: ignore[attr-defined]
    async with ctx.sessions() as session:
        north, south = (
            Team(name="North", created_at=ctx.clock()),
            Team(name="South", created_at=ctx.clock()),
        )
        session.add_all([north, south])
        await session.commit()
        assert north.id is not None and south.id is not None
        await create_user(
            session,
            email="lead@example.org",
            password=PASSWORD,
            role="team_lead",
            team_id=north.id,
            now=ctx.clock(),
        )
    assert (await sign_in(client, "lead@example.org")).status_code == 303
    return client, north.id, south.id


async def test_a_team_lead_cannot_add_anyone_to_another_team(make_client: Factory) -> None:
    client, north, south = await lead_client(make_client)
    sid = await add_supporter(client, "Nora")
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        session.add(TeamMembership(supporter_id=sid, team_id=north))
        await session.commit()
    page = await client.get(f"/console/supporters/{sid}")
    assert page.status_code == 200 and "Add to team" not in page.text  # nothing to add
    token = csrf_of(page.text)
    refused = await client.post(
        f"/console/supporters/{sid}/teams", data={"team": str(south), "csrf_token": token}
    )
    assert refused.status_code == 403 and "their own team" in refused.text
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        assert await session.get(TeamMembership, (sid, south)) is None
    # The edit form never carries teams for a lead: a forged teams field changes nothing.
    saved = await client.post(
        f"/console/supporters/{sid}/edit",
        data={"name": "Nora N", "teams": str(south), "csrf_token": token},
    )
    assert saved.status_code == 303
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        assert await session.get(TeamMembership, (sid, south)) is None
        assert await session.get(TeamMembership, (sid, north)) is not None


async def test_edit_and_add_to_team_need_the_csrf_token(make_client: Factory) -> None:
    client = await signed_in(make_client)
    sid = await add_supporter(client, "Ann")
    edit = await client.post(f"/console/supporters/{sid}/edit", data={"name": "Changed"})
    assert edit.status_code == 403
    opened = await client.post(f"/console/supporters/{sid}/conversation", data={})
    assert opened.status_code == 403
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        row = await session.get(Supporter, sid)
        assert row is not None and row.name == "Ann"
        assert (await session.exec(select(Conversation))).all() == []


async def test_edit_with_bad_values_rerenders_with_the_errors(make_client: Factory) -> None:
    client = await signed_in(make_client)
    sid = await add_supporter(client, "Ann")
    page = await client.get(f"/console/supporters/{sid}/edit")
    bad = await client.post(
        f"/console/supporters/{sid}/edit",
        data={
            "name": "<i>Ann</i>",
            "phone": "not a phone",
            "timezone": "Mars/Olympus",
            "preferred_channels": "sms, pigeon",
            "csrf_token": csrf_of(page.text),
        },
    )
    assert bad.status_code == 422 and "Nothing was saved" in bad.text
    assert "Time zone:" in bad.text and 'value="&lt;i&gt;Ann&lt;/i&gt;"' in bad.text
    assert 'value="not a phone"' in bad.text and 'value="sms, pigeon"' in bad.text
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        row = await session.get(Supporter, sid)
        assert row is not None and row.name == "Ann"
    missing = await client.get("/console/supporters/99999")
    assert missing.status_code == 404 and "<h1>Not Found</h1>" in missing.text


async def test_import_needs_the_csrf_token_and_keeps_to_the_size_limit(
    make_client: Factory,
) -> None:
    client = await make_client(max_import_bytes=2000)
    await add_user(client)
    assert (await sign_in(client)).status_code == 303
    csv = b"name,phone\nAda,+14155550101\n"
    forged = await client.post("/console/supporters/import", files={"file": ("a.csv", csv)})
    assert forged.status_code == 403
    token = csrf_of((await client.get("/console/supporters/import")).text)
    big = b"name,phone\n" + b"Ada,+14155550101\n" * 200
    too_large = await client.post(
        "/console/supporters/import", data={"csrf_token": token}, files={"file": ("b.csv", big)}
    )
    assert too_large.status_code == 413 and "too large" in too_large.text
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        assert (await session.exec(select(Supporter))).all() == []
    done = await client.post(
        "/console/supporters/import", data={"csrf_token": token}, files={"file": ("a.csv", csv)}
    )
    assert done.status_code == 200 and "a.csv: 1 created, 0 updated, 0 rejected." in done.text


async def test_a_team_leads_import_joins_their_team(make_client: Factory) -> None:
    client, north, _ = await lead_client(make_client)
    token = csrf_of((await client.get("/console/supporters/import")).text)
    done = await client.post(
        "/console/supporters/import",
        data={"csrf_token": token},
        files={"file": ("a.csv", b"name,phone,teams\nAda,+14155550101,\nBo,+14155550102,South\n")},
    )
    assert "1 created, 0 updated, 1 rejected." in done.text and "forbidden (403)" in done.text
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        (ada,) = (await session.exec(select(Supporter))).all()
        assert await session.get(TeamMembership, (ada.id, north)) is not None


async def test_team_changes_need_the_csrf_token_and_staff(make_client: Factory) -> None:
    client = await signed_in(make_client)
    forged = await client.post("/console/teams", data={"name": "Forged"})
    assert forged.status_code == 403
    token = csrf_of((await client.get("/console/teams")).text)
    made = await client.post("/console/teams", data={"name": "Real", "csrf_token": token})
    assert made.status_code == 303
    twin = await client.post("/console/teams", data={"name": "Real", "csrf_token": token})
    assert twin.status_code == 409 and "exists already" in twin.text
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        assert [t.name for t in (await session.exec(select(Team))).all()] == ["Real"]

    lead, north, _ = await lead_client(make_client)
    page = await lead.get("/console/supporters")
    token = csrf_of(page.text)
    assert ">Teams<" not in page.text
    refused = await lead.post(f"/console/teams/{north}/delete", data={"csrf_token": token})
    assert refused.status_code == 403
    async with lead.ctx.sessions() as session:  # type: ignore[attr-defined]
        assert await session.get(Team, north) is not None


async def test_ids_out_of_range_are_refused_not_failed(make_client: Factory) -> None:
    client = await signed_in(make_client)
    huge = 2**63
    for path in (f"/console/supporters/{huge}", f"/console/supporters/{huge}/edit"):
        answer = await client.get(path)
        assert answer.status_code == 422 and "Traceback" not in answer.text
    token = csrf_of((await client.get("/console/supporters")).text)
    tagged = await client.post(
        "/console/supporters/tags",
        data={"supporter_ids": str(huge), "tag": "x", "csrf_token": token},
    )
    assert tagged.status_code == 422
    deleted = await client.post(f"/console/teams/{huge}/delete", data={"csrf_token": token})
    assert deleted.status_code == 422


async def test_edit_shows_and_keeps_a_signal_address(make_client: Factory) -> None:
    client = await signed_in(make_client)
    sid = await add_supporter(client, "Ann")
    page = await client.get(f"/console/supporters/{sid}/edit")
    saved = await client.post(
        f"/console/supporters/{sid}/edit",
        data={"name": "Ann", "signal": "Ann_Organizes.12", "csrf_token": csrf_of(page.text)},
    )
    assert saved.status_code == 303, saved.text
    again = await client.get(f"/console/supporters/{sid}/edit")
    assert 'name="signal"' in again.text and 'value="ann_organizes.12"' in again.text
    # Saving the form as shown keeps the Signal address.
    form = {"name": "Ann", "signal": "ann_organizes.12", "csrf_token": csrf_of(again.text)}
    assert (await client.post(f"/console/supporters/{sid}/edit", data=form)).status_code == 303
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        rows = (await session.exec(select(SupporterAddress))).all()
        assert [(a.channel, a.address) for a in rows] == [("signal", "ann_organizes.12")]

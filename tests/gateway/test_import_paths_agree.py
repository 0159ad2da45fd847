"""The import's bulk path (new supporters written set-based per chunk) and its per-row path
give the same answer and leave the same rows, on one file with every case: new rows,
rows matching existing supporters, a row whose match the file itself moved, duplicates,
bad values, opt-outs of each kind, a do-not-contact address, teams, tags and fields;
with and without encryption keys, with and without --merge-duplicates."""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from sqlmodel import SQLModel

from routing.people.do_not_contact import bar, hash_key
from routing.people.import_bulk import owners_in
from routing.people.importer import ImportOptions, import_csv
from storage.field_values import values_by_supporter
from storage.models import (
    ConsentEvent,
    Supporter,
    SupporterAddress,
    SupporterTag,
    TeamMembership,
    WebhookDelivery,
)
from tests.conftest import PG_URL, FakeClock, bearer, new_key
from tests.gateway.test_encryption_at_rest import KEY
from tests.test_query_plans_reports import assert_indexed, explained

MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]
API = "/api/v1"
ERASURE_KEY = "test-erasure-key"
COLUMNS = (
    "name,phone,email,tags,teams,language,timezone,preferred_channels,data_saver,"
    "opted_out,county,doors,can2_sms_status"
).split(",")
ROWS = [
    {
        "name": "Ada",
        "phone": "+14155550101",
        "email": "ada@example.org",
        "tags": "a|b",
        "teams": "North",
        "language": "sw",
        "timezone": "Africa/Nairobi",
        "preferred_channels": "whatsapp|sms",
        "data_saver": "yes",
        "county": "Kisumu",
        "doors": "1,200",
        "can2_sms_status": "subscribed",
    },
    {"name": "Old Renamed", "phone": "+14155550100", "county": "Nairobi"},
    {"name": "Bea", "phone": "+14155550102", "email": "old@example.org"},  # moves Old's phone
    {"name": "Cy", "phone": "(415) 555-0101"},  # Ada's number again
    {"name": "Dee", "phone": "+14155550103", "opted_out": "true"},
    {"name": "Eve", "phone": "+14155550199", "opted_out": "yes"},  # on the list
    {
        "name": "Fay",
        "phone": "+14155550104",
        "email": "fay@example.org",
        "can2_sms_status": "unsubscribed",
    },
    {"name": "Gus", "phone": "+14155550105", "teams": "Nowhere"},
    {"name": "Hal", "phone": "+14155550106", "timezone": "Mars/Base"},
    {"name": "Ivy", "phone": "+14155550107", "doors": "many"},
    {"name": "Jo", "phone": "not-a-phone"},
    {"name": "Kim", "phone": "+14155550108", "data_saver": "maybe"},
    {"name": "Lee", "phone": "+14155550109", "preferred_channels": "carrier-pigeon"},
    {"name": "Mo", "phone": "+14155550110", "email": "MO@example.org", "tags": "x|x|y"},
    {"name": "Ned", "email": "mo@example.org"},  # Mo's email again
    {"name": "Old Again", "phone": "+14155550100"},  # Old's former number, now free
    {"name": "", "phone": "+14155550111"},
    {"name": "Pat"},
    {"name": "Qi", "phone": "+14155550112", "email": "qi@example.org", "tags": "z"},
]


def the_file() -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(ROWS)
    return out.getvalue().encode()


async def reset(url: str) -> None:
    """Empty every table and restart the ids, so both runs number rows alike."""
    from storage.db import make_engine

    engine = make_engine(url)
    tables = [t.name for t in SQLModel.metadata.sorted_tables]
    async with engine.begin() as conn:
        if PG_URL:
            names = ", ".join(f'"{t}"' for t in tables)
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for name in reversed(tables):
                await conn.execute(text(f'DELETE FROM "{name}"'))
            await conn.execute(text("DELETE FROM sqlite_sequence"))
    await engine.dispose()


async def run(
    make_client: MakeClient,
    url: str,
    clock: FakeClock,
    *,
    bulk: bool,
    keys: str | None,
    merge: bool,
) -> dict[str, Any]:
    await reset(url)
    client = await make_client(
        encryption_keys=keys, erasure_key=ERASURE_KEY, allow_private_webhooks=True
    )
    ctx = client.ctx  # type: ignore[attr-defined]
    client.headers.update(bearer(await new_key(ctx)))
    assert (await client.post(f"{API}/teams", json={"name": "North"})).status_code == 201
    for name, kind in (("county", "text"), ("doors", "number")):
        made = await client.post(f"{API}/fields", json={"name": name, "type": kind})
        assert made.status_code == 201
    old = {
        "name": "Old",
        "addresses": [
            {"channel": "sms", "address": "+14155550100"},
            {"channel": "email", "address": "old@example.org"},
        ],
        "tags": ["kept"],
    }
    assert (await client.post(f"{API}/supporters", json=old)).status_code == 201
    hook = {
        "url": "http://127.0.0.1:9/hook",
        "events": ["supporter.created", "supporter.opted_out"],
    }
    assert (await client.post(f"{API}/webhooks", json=hook)).status_code == 201
    async with ctx.sessions() as session:
        key = await hash_key(session, ERASURE_KEY, clock(), create=True)
        assert key is not None
        await bar(session, key, [("sms", "+14155550199")], clock())
        await session.commit()
    summary = await import_csv(
        ctx.sessions,
        io.BytesIO(the_file()),
        clock=clock,
        default_region="US",
        erasure_key=ERASURE_KEY,
        options=ImportOptions(bulk=bulk, merge_duplicates=merge),
    )
    return {"summary": summary.as_dict(), **await snapshot(ctx)}


async def snapshot(ctx: Any) -> dict[str, Any]:
    async with ctx.sessions() as session:

        async def rows(*columns: Any) -> list[tuple[Any, ...]]:
            return sorted(tuple(r) for r in await session.execute(select(*columns)))

        people = await rows(
            Supporter.id,
            Supporter.name,
            Supporter.opted_out,
            Supporter.opted_out_at,
            Supporter.source,
            Supporter.language,
            Supporter.timezone,
            Supporter.data_saver,
        )
        channels = {
            i: list(p)
            for i, p in await session.execute(select(Supporter.id, Supporter.preferred_channels))
        }
        return {
            "people": people,
            "preferred": channels,
            "addresses": await rows(
                SupporterAddress.supporter_id,
                SupporterAddress.channel,
                SupporterAddress.address,
                SupporterAddress.opted_out,
            ),
            "tags": await rows(SupporterTag.supporter_id, SupporterTag.tag),
            "teams": await rows(TeamMembership.supporter_id, TeamMembership.team_id),
            "fields": await values_by_supporter(session, [p[0] for p in people]),
            "consent": await rows(
                ConsentEvent.supporter_id, ConsentEvent.action, ConsentEvent.reason
            ),
            "deliveries": await rows(WebhookDelivery.event, WebhookDelivery.supporter_id),
        }


@pytest.mark.parametrize("merge", [False, True], ids=["reject-duplicates", "merge-duplicates"])
@pytest.mark.parametrize("keys", [None, KEY], ids=["plaintext", "encrypted"])
async def test_bulk_and_per_row_imports_agree(
    make_client: MakeClient, database_url: str, clock: FakeClock, keys: str | None, merge: bool
) -> None:
    per_row = await run(make_client, database_url, clock, bulk=False, keys=keys, merge=merge)
    bulk = await run(make_client, database_url, clock, bulk=True, keys=keys, merge=merge)
    assert bulk == per_row
    summary = bulk["summary"]
    # The file's cases came out as meant (so agreeing is not agreeing on nothing).
    assert summary["created"] >= 6 and summary["updated"] >= 2
    assert summary["opted_out"] == 2  # Dee's own, Fay's number (Eve: the list's)
    reasons = {r["row"]: r["reason"] for r in summary["rejected"]}
    assert reasons[8] == "teams: no team 'Nowhere'"
    assert reasons[10].startswith("doors: ") and reasons[11].startswith("phone: ")
    assert (4 in reasons) is not merge and (15 in reasons) is not merge
    events = [e for e, _ in bulk["deliveries"]]
    assert events.count("supporter.opted_out") == 1
    assert events.count("supporter.created") == summary["created"]
    eve = next(p for p in bulk["people"] if p[1] == "Eve")
    assert eve[2] is True and (eve[0], "opt_out", "do_not_contact") in bulk["consent"]


@pytest.mark.parametrize("keys", [None, KEY], ids=["plaintext", "encrypted"])
async def test_the_owner_lookup_reads_the_address_index(
    make_client: MakeClient, keys: str | None
) -> None:
    """Each chunk's owner lookup (`owners_in`) names the channels too, so it reads the
    unique (channel, address) index rather than every address; a phone is found on
    either phone channel, and sealed addresses read back as given."""
    client = await make_client(encryption_keys=keys)
    ctx = client.ctx  # type: ignore[attr-defined]
    client.headers.update(bearer(await new_key(ctx)))
    old = {
        "name": "Old",
        "addresses": [
            {"channel": "whatsapp", "address": "+14155550100"},
            {"channel": "email", "address": "old@example.org"},
        ],
    }
    made = await client.post(f"{API}/supporters", json=old)
    assert made.status_code == 201, made.text
    wanted = [("phone", "+14155550100"), ("email", "old@example.org"), ("email", "x@y.org")]
    owners: dict[tuple[str, str], int] = {}

    async def look() -> None:
        async with ctx.sessions() as session:
            owners.update(await owners_in(session, wanted))

    plans = await explained(ctx, look, large=("supporter_addresses",))
    assert_indexed(plans, ctx.engine.dialect.name == "postgresql", large=("supporter_addresses",))
    assert owners == {k: made.json()["id"] for k in wanted[:2]}

"""Supporter search through its index (storage/search_terms.py), over HTTP, with and without
RALLYPOINT_ENCRYPTION_KEYS: a number by its last digits however it is typed, a name by
the start of its words whatever the case and accents, an email by its start or domain; a
team lead finds only their team; every write path keeps the index current (API create and
update, CSV import, an unknown sender writing in, erasure, key rotation); with a key the
database files hold no name or number."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from storage.crypto import install
from storage.db import make_engine
from storage.models import SupporterSearchTerm
from storage.rotation import rotate_encryption
from storage.search_terms import refresh_terms
from tests.conftest import PG_URL, bearer, new_key
from tests.gateway.test_encryption_at_rest import KEY
from tests.gateway.test_erasure import api, organizer, raw_bytes, sms

MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]
MODES = pytest.mark.parametrize("keys", [None, KEY], ids=["plaintext", "encrypted"])
KENYAN = "+254712345678"
CALIFORNIAN = "+14155550100"
WRITER = "+15105550177"  # writes in first: created on ingest
NAMES = ("Zoë Núñez-Wambui", "Ada Quillfeather", "Bo Tregarthen")


async def found(client: httpx.AsyncClient, q: str, path: str = "/supporters", **kw: Any) -> list:
    answer = await client.get(f"/api/v1{path}", params={"q": q}, **kw)
    assert answer.status_code == 200, answer.text
    key = "name" if path == "/supporters" else "supporter_name"
    return [item[key] for item in answer.json()["items"]]


async def _people(client: httpx.AsyncClient) -> dict[str, int]:
    north = await api(client, "POST", "/teams", json={"name": "North"})
    people = {}
    for name, addresses, teams in (
        (NAMES[0], [{"channel": "sms", "address": KENYAN}], ["North"]),
        (
            NAMES[1],
            [
                {"channel": "whatsapp", "address": CALIFORNIAN},
                {"channel": "email", "address": "Ada.Quill@Example.org"},
            ],
            [],
        ),
        (NAMES[2], [{"channel": "telegram", "address": "987654321"}], []),
    ):
        made = await api(
            client,
            "POST",
            "/supporters",
            json={"name": name, "addresses": addresses, "teams": teams},
        )
        people[name] = made["id"]
    people["North"] = north["id"]
    return people


@MODES
async def test_search_by_number_ending_name_start_and_email(
    make_client: MakeClient, keys: str | None
) -> None:
    client = await organizer(make_client, encryption_keys=keys)
    await _people(client)
    zoe, ada, bo = NAMES
    cases = {
        "5678": [zoe],  # the last four digits
        "345 678": [zoe],  # spaces
        "0712-345-678": [zoe],  # the national way, trunk 0
        "+254 712 345 678": [zoe],  # with the country code
        "00254712345678": [zoe],  # the international prefix
        "(415) 555-0100": [ada],
        "0100": [ada],
        "555": [],  # three digits are too few to look for
        "zoe": [zoe],  # accents folded
        "NÚÑ": [zoe],  # case and accents folded
        "wambui": [zoe],  # a word after a hyphen
        "ada quill": [ada],  # every word starts a word of the name
        "quill ada": [ada],
        "ada zoe": [],
        "ada.quill@example.org": [ada],  # an email, as a whole
        "ADA.QU": [ada],  # the start of an email
        "example.org": [ada],  # its domain
        "987654321": [bo],  # a Telegram chat id
        "98765": [],
        "%": [],
        "uillfeather": [],  # the middle of a word is no start
    }
    for q, names in cases.items():
        assert await found(client, q) == names, q


@MODES
async def test_a_team_lead_finds_only_their_team(make_client: MakeClient, keys: str | None) -> None:
    client = await organizer(make_client, encryption_keys=keys)
    people = await _people(client)
    lead = bearer(await new_key(client.ctx, "team_lead", people["North"]))  # type: ignore[attr-defined]
    assert await found(client, "5678", headers=lead) == [NAMES[0]]
    assert await found(client, "zoe", headers=lead) == [NAMES[0]]
    assert await found(client, "ada", headers=lead) == []
    assert await found(client, "0100", headers=lead) == []


async def _term_count(client: httpx.AsyncClient, supporter_id: int | None = None) -> int:
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        stmt = select(func.count()).select_from(SupporterSearchTerm)
        if supporter_id is not None:
            stmt = stmt.where(SupporterSearchTerm.supporter_id == supporter_id)
        return int((await session.execute(stmt)).scalar_one())


@MODES
@pytest.mark.parametrize("lane", [True, False], ids=["sqlite-lane", "sqlalchemy"])
async def test_every_write_keeps_the_index_current(
    make_client: MakeClient, keys: str | None, lane: bool
) -> None:
    client = await organizer(make_client, encryption_keys=keys, sqlite_lane=lane)
    people = await _people(client)
    zoe = people[NAMES[0]]

    # Renamed and renumbered: found by the new, no longer by the old.
    await api(
        client,
        "PATCH",
        f"/supporters/{zoe}",
        json={"name": "Zoe Achieng", "addresses": [{"channel": "sms", "address": "+254733000111"}]},
    )
    assert await found(client, "achieng") == ["Zoe Achieng"]
    assert await found(client, "wambui") == []
    assert await found(client, "5678") == []
    assert await found(client, "0111") == ["Zoe Achieng"]

    # An unknown sender writing in becomes a supporter found by their number, and their
    # conversation by the inbox's search.
    await sms(client, "hello there", sender=WRITER)
    assert await found(client, "0177") == [WRITER]
    assert await found(client, "510 555 0177", path="/conversations") == [WRITER]

    # The CSV import.
    csv = "name,phone,email\nRosalind Okonjo-Vance,+14155550142,ros@example.net\n"
    imported = await client.post(
        "/api/v1/supporters/import", files={"file": ("people.csv", csv.encode(), "text/csv")}
    )
    assert imported.status_code == 200, imported.text
    assert await found(client, "0142") == ["Rosalind Okonjo-Vance"]
    assert await found(client, "okonjo vance") == ["Rosalind Okonjo-Vance"]
    assert await found(client, "ros@") == ["Rosalind Okonjo-Vance"]

    # Erasure takes the supporter's terms with it.
    assert await _term_count(client, zoe) > 0
    await api(client, "POST", f"/supporters/{zoe}/erase")
    assert await _term_count(client, zoe) == 0
    assert await found(client, "achieng") == []


async def test_no_name_or_number_in_the_files_with_a_key(make_client: MakeClient) -> None:
    if PG_URL is not None:
        pytest.skip("reads the SQLite file")
    client = await organizer(make_client, encryption_keys=KEY)
    await _people(client)
    await sms(client, "hello", sender=WRITER)
    assert await found(client, "zoe") == [NAMES[0]]
    data = raw_bytes(client)
    assert data, "no database file found"
    for secret in (
        "Quillfeather",
        "quillfeather",
        "Tregarthen",
        "tregarthen",
        "Wambui",
        "wambui",
        "712345678",
        "5550100",
        "5105550177",
        "5550177",  # an ending, as a term would hold it (4 digits occur by chance in hex)
        "ada.quill",
        "987654321",
    ):
        assert secret.encode() not in data, secret


async def test_key_rotation_rebuilds_the_index_with_keyed_terms(
    make_client: MakeClient, database_url: str
) -> None:
    """A database written without keys is searchable after `rotate-encryption` with the
    terms now keyed (none of the plain hashes is left)."""
    plain = await organizer(make_client)
    await _people(plain)
    async with plain.ctx.sessions() as session:  # type: ignore[attr-defined]
        before = set((await session.execute(select(SupporterSearchTerm.term))).scalars())
    engine = make_engine(database_url)
    try:
        await rotate_encryption(engine, KEY)
    finally:
        await engine.dispose()
        install(None)
    sealed = await organizer(make_client, encryption_keys=KEY)
    async with sealed.ctx.sessions() as session:  # type: ignore[attr-defined]
        after = set((await session.execute(select(SupporterSearchTerm.term))).scalars())
    assert before and after and not (after & before)
    assert await found(sealed, "zoe") == [NAMES[0]]
    assert await found(sealed, "0100") == [NAMES[1]]


async def test_start_up_builds_an_index_the_migration_could_not(
    make_client: MakeClient,
) -> None:
    """With names sealed the migration cannot make their terms: `serve` does at start-up
    (setup_encryption) when it finds supporters and no terms."""
    client = await organizer(make_client, encryption_keys=KEY)
    await _people(client)
    async with client.ctx.engine.begin() as conn:  # type: ignore[attr-defined]
        await conn.execute(SupporterSearchTerm.__table__.delete())  # type: ignore[attr-defined]
    install(None)
    again = await organizer(make_client, encryption_keys=KEY)
    async with again.ctx.sessions() as session:  # type: ignore[attr-defined]
        assert (
            await session.execute(select(func.count()).select_from(SupporterSearchTerm))
        ).scalar_one() > 0
    assert await found(again, "ada quill") == [NAMES[1]]


async def test_two_transactions_refreshing_one_supporter_both_commit(
    make_client: MakeClient,
) -> None:
    """PostgreSQL: a second refresh of one supporter waits on the first; once that commits,
    its delete did not see the first's new rows, so its insert meets them: it keeps them
    rather than failing on the primary key. (SQLite has one writer at a time.)"""
    client = await organizer(make_client)
    engine = client.ctx.engine  # type: ignore[attr-defined]
    if engine.dialect.name != "postgresql":
        pytest.skip("concurrent writers are PostgreSQL's")
    sid = (await _people(client))[NAMES[0]]
    async with engine.connect() as first, engine.connect() as second, engine.connect() as look:
        await first.begin()
        await refresh_terms(first, [sid])
        await second.begin()
        waiting = asyncio.create_task(refresh_terms(second, [sid]))
        for _ in range(500):  # bounded: until the second refresh waits on a lock
            held = await look.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND datname = current_database()"
                )
            )
            if held.scalar_one():
                break
            await asyncio.sleep(0.01)
        else:
            waiting.cancel()
            pytest.fail("the second refresh never waited on the first")
        await first.commit()
        await asyncio.wait_for(waiting, 30)
        await second.commit()
    assert await found(client, "zoe nunez") == [NAMES[0]]
    assert await found(client, KENYAN[-6:]) == [NAMES[0]]

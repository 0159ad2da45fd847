"""Custom field values under RALLYPOINT_ENCRYPTION_KEYS: sealed in the database (the raw
SQLite file and WAL hold none), bound to their supporter and field, found by audiences
through a blind index, read back by the API, the CSV export, the export and merge
variables, erased with their supporter, sealed and re-keyed by rotation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest
from sqlalchemy import text
from sqlmodel import select

from channels.base import InvalidRecipient
from routing.dispatch.outcome import INTERRUPTED
from routing.outbound.cancel import CANCELLED
from storage.crypto import UndecryptableError, install, key_id, parse_keys
from storage.crypto_setup import EncryptionSetupError, setup_encryption
from storage.field_values import values_by_supporter
from storage.models import OWN_ERRORS, Message
from storage.rotation import rotate_encryption
from tests.conftest import PG_URL, FakeClock
from tests.gateway.seed import messages_of
from tests.gateway.test_encryption_at_rest import KEY, OTHER_KEY
from tests.gateway.test_erasure import api, organizer, raw_bytes
from tests.routing.fake_adapter import FakeAdapter, make_dispatcher, take_over_channels
from tests.test_query_plans_reports import assert_indexed, explained

MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]
COUNTY = "Kisumu-Obsidian-7731"
OTHER_COUNTY = "Nakuru-Vermilion-5512"
IMPORTED = "Lamu-Cobalt-9044"
DOORS = "4127"  # a number field


async def _fields(client: httpx.AsyncClient) -> None:
    await api(client, "POST", "/fields", json={"name": "county", "type": "text"})
    await api(client, "POST", "/fields", json={"name": "doors", "type": "number"})


async def _person(client: httpx.AsyncClient, name: str, phone: str, **fields: str) -> int:
    made = await api(
        client,
        "POST",
        "/supporters",
        json={"name": name, "addresses": [{"channel": "sms", "address": phone}], "fields": fields},
    )
    return int(made["id"])


async def _reach(client: httpx.AsyncClient, fields: dict[str, str]) -> int:
    """How many supporters an audience of these field values reaches (a dry run)."""
    preview = await api(
        client,
        "POST",
        "/announcements?dry_run=true",
        json={"body": "x", "audience": {"fields": fields}},
    )
    return int(preview["recipients"])


async def _stored(client: httpx.AsyncClient) -> list[tuple[int, int, str, str | None]]:
    async with client.ctx.engine.connect() as conn:  # type: ignore[attr-defined]
        rows = await conn.execute(
            text(
                "SELECT supporter_id, field_id, value, value_sealed FROM supporter_field_values "
                "ORDER BY supporter_id, field_id"
            )
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows]


async def test_field_values_are_sealed_and_still_select_audiences(
    make_client: MakeClient,
) -> None:
    client = await organizer(make_client, encryption_keys=KEY)
    client.ctx.registry.add(FakeAdapter(channels=("sms",)))  # type: ignore[attr-defined]
    await _fields(client)
    amina = await _person(client, "Amina", "+14155550100", county=COUNTY, doors=DOORS)
    ben = await _person(client, "Ben", "+14155550101", county=OTHER_COUNTY)
    imported = await api(
        client,
        "POST",
        "/supporters/import",
        files={"file": ("a.csv", f"name,phone,county\nChidi,+14155550102,{IMPORTED}\n".encode())},
    )
    assert imported["created"] == 1, imported

    stored = await _stored(client)
    assert len(stored) == 4
    for _, _, value, sealed in stored:
        assert value.startswith("b1:") and sealed is not None and sealed.startswith("e1:")
        for secret in (COUNTY, OTHER_COUNTY, IMPORTED, DOORS):
            assert secret not in value + sealed
    if PG_URL is None:
        data = raw_bytes(client)
        for secret in (COUNTY, OTHER_COUNTY, IMPORTED):
            assert secret.encode() not in data, secret

    # Read back: the API, the CSV export, the export of one person.
    assert (await api(client, "GET", f"/supporters/{amina}"))["fields"] == {
        "county": COUNTY,
        "doors": DOORS,
    }
    csv_export = await client.get("/api/v1/supporters/export")
    assert COUNTY in csv_export.text and IMPORTED in csv_export.text
    exported = await api(client, "GET", f"/supporters/{ben}/export")
    assert exported["fields"] == {"county": OTHER_COUNTY}

    # An audience by field value (the blind index), with the value as a merge variable.
    sent = await api(
        client,
        "POST",
        "/announcements",
        json={
            "body": "Meet-up in {fields.county}",
            "audience": {"fields": {"county": [COUNTY, IMPORTED]}},
        },
    )
    messages = await messages_of(client.ctx, sent["id"])  # type: ignore[attr-defined]
    assert sorted(m.body for m in messages) == sorted(
        [f"Meet-up in {COUNTY}", f"Meet-up in {IMPORTED}"]
    )
    # A number matches in its canonical form.
    assert await _reach(client, {"doors": "4127.0"}) == 1
    # The same text in another field has another index: a filter does not cross fields.
    await api(client, "POST", "/fields", json={"name": "town", "type": "text"})
    await api(client, "PATCH", f"/supporters/{ben}", json={"fields": {"town": COUNTY}})
    assert await _reach(client, {"county": COUNTY}) == 1

    # Erasure takes the values with the person, out of the files too.
    assert (await client.post(f"/api/v1/supporters/{amina}/erase")).status_code == 204
    assert all(row[0] != amina for row in await _stored(client))
    if PG_URL is None:
        sealed_amina = [s for s in stored if s[0] == amina]
        data = raw_bytes(client)
        for _, _, value, sealed in sealed_amina:
            assert value.encode() not in data and (sealed or "").encode() not in data


async def test_a_value_swapped_between_rows_does_not_decrypt(make_client: MakeClient) -> None:
    client = await organizer(make_client, encryption_keys=KEY)
    await _fields(client)
    amina = await _person(client, "Amina", "+14155550100", county=COUNTY)
    ben = await _person(client, "Ben", "+14155550101", county=OTHER_COUNTY)
    (a_sid, a_fid, _, a_sealed), (b_sid, b_fid, _, b_sealed) = await _stored(client)
    assert (a_sid, b_sid) == (amina, ben)
    async with client.ctx.engine.begin() as conn:  # type: ignore[attr-defined]
        swap = text(
            "UPDATE supporter_field_values SET value_sealed = :v "
            "WHERE supporter_id = :s AND field_id = :f"
        )
        await conn.execute(swap, {"v": b_sealed, "s": a_sid, "f": a_fid})
        await conn.execute(swap, {"v": a_sealed, "s": b_sid, "f": b_fid})
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        for sid in (amina, ben):
            with pytest.raises(UndecryptableError):
                await values_by_supporter(session, [sid])


async def test_rotation_seals_plaintext_values_and_moves_them_to_the_new_key(
    make_client: MakeClient, database_url: str
) -> None:
    client = await organizer(make_client)  # no keys: stored as they are
    if client.ctx.settings.encryption_keys:  # type: ignore[attr-defined]
        pytest.skip("the suite runs with keys")
    await _fields(client)
    amina = await _person(client, "Amina", "+14155550100", county=COUNTY, doors=DOORS)
    assert [row[2:] for row in await _stored(client)] == [(COUNTY, None), (DOORS, None)]
    engine = client.ctx.engine  # type: ignore[attr-defined]

    # Keys on a database with plaintext values: refused until rotation seals them.
    with pytest.raises(EncryptionSetupError, match="rotate-encryption"):
        await setup_encryption(engine, KEY)
    report = await rotate_encryption(engine, KEY, batch=1)
    assert report.per_table["supporter_field_values"] == 2
    stored = await _stored(client)
    assert all(v.startswith("b1:") and (s or "").startswith("e1:") for _, _, v, s in stored)
    first = {row[3] for row in stored}
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        assert (await values_by_supporter(session, [amina]))[amina] == {
            "county": COUNTY,
            "doors": DOORS,
        }
    assert await _reach(client, {"county": COUNTY}) == 1

    # A new key first: values move to it, the index stays, the old key can go.
    install(None)
    await rotate_encryption(engine, f"{OTHER_KEY},{KEY}")
    moved = await _stored(client)
    assert [row[2] for row in moved] == [row[2] for row in stored]
    assert {s.split(":")[1] for _, _, _, s in moved if s} == {key_id(parse_keys(OTHER_KEY)[0])}
    assert not first & {row[3] for row in moved}
    await setup_encryption(engine, OTHER_KEY)
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        assert (await values_by_supporter(session, [amina]))[amina]["county"] == COUNTY
    with pytest.raises(EncryptionSetupError, match="does not hold the key"):
        await setup_encryption(engine, KEY)


BOUNCED = "ruby-pangolin@mail.example.org"


async def test_a_provider_error_quoting_an_address_is_sealed(
    make_client: MakeClient, clock: FakeClock
) -> None:
    """An SMTP bounce quotes the address; the error columns hold it sealed, while
    Rallypoint's own markers stay comparable in SQL."""
    client = await organizer(make_client, encryption_keys=KEY)
    made = await api(
        client,
        "POST",
        "/supporters",
        json={"name": "Ruby", "addresses": [{"channel": "email", "address": BOUNCED}]},
    )
    provider = FakeAdapter(channels=("email",), provider="fake-mail")
    take_over_channels(client.ctx, provider)  # type: ignore[attr-defined]
    error = f"550 5.1.1 <{BOUNCED}>: Recipient address rejected"
    provider.fail(BOUNCED, InvalidRecipient(error, code="550"))
    await api(client, "POST", f"/supporters/{made['id']}/messages", json={"body": "hi"})
    assert await make_dispatcher(client.ctx, clock).run_once() == 1  # type: ignore[attr-defined]
    async with client.ctx.engine.connect() as conn:  # type: ignore[attr-defined]
        stored = [
            row[0]
            for table in ("messages", "message_attempts", "message_status_events")
            for row in await conn.execute(text(f"SELECT error FROM {table}"))  # noqa: S608
            if row[0]
        ]
    assert stored and all(v.startswith("e1:") and "pangolin" not in v for v in stored)
    if PG_URL is None:
        assert b"pangolin" not in raw_bytes(client)
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        message = (await session.exec(select(Message).where(Message.direction == "outbound"))).one()
    assert message.status == "failed" and BOUNCED in (message.error or "")


def test_own_error_markers_stay_plain() -> None:
    """The markers compared in SQL are the ones the sealed error columns keep plain."""
    assert {CANCELLED, INTERRUPTED} <= set(OWN_ERRORS)


async def test_an_encrypted_database_with_plaintext_values_asks_for_rotation(
    make_client: MakeClient,
) -> None:
    """Values a release before this one stored in plaintext next to encrypted data: an
    audience would miss them, so start-up stops with the one line saying what to run."""
    client = await organizer(make_client, encryption_keys=KEY)
    await _fields(client)
    amina = await _person(client, "Amina", "+14155550100")
    engine = client.ctx.engine  # type: ignore[attr-defined]
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO supporter_field_values (supporter_id, field_id, value) "
                "SELECT :s, id, :v FROM custom_fields WHERE name = 'county'"
            ),
            {"s": amina, "v": COUNTY},
        )
    with pytest.raises(EncryptionSetupError, match="rotate-encryption"):
        await setup_encryption(engine, KEY)
    await rotate_encryption(engine, KEY)
    assert await setup_encryption(engine, KEY) is not None
    assert await _reach(client, {"county": COUNTY}) == 1


async def test_start_up_finds_plaintext_values_through_an_index(make_client: MakeClient) -> None:
    """Every start with keys asks whether a value is still plaintext; with all sealed the
    answer comes from the (empty) partial index, not from reading every row."""
    client = await organizer(make_client, encryption_keys=KEY)
    await _fields(client)
    await _person(client, "Amina", "+14155550100", county=COUNTY)
    engine = client.ctx.engine  # type: ignore[attr-defined]
    plans = await explained(
        client.ctx,  # type: ignore[attr-defined]
        lambda: setup_encryption(engine, KEY),
        large=("supporter_field_values",),
    )
    plans = [(s, plan) for s, plan in plans if "value_sealed IS NULL" in s]
    assert plans
    if engine.dialect.name == "postgresql":
        assert_indexed(plans, True, large=("supporter_field_values",))
    else:  # a scan of the partial index holds only the plaintext rows
        assert all("INDEX ix_supporter_field_values_plain" in p for _, p in plans), plans

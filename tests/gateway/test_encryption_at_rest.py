"""RALLYPOINT_ENCRYPTION_KEYS: names, addresses, bodies and payloads are sealed in the
database (the raw SQLite file and its WAL hold none of them; on PostgreSQL the columns hold
none), the API reads them back, a value moved to another row or column does not decrypt,
and a wrong, missing or malformed key stops start-up with one line."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlmodel import select

from gateway.cli import main
from routing.outbound.fanout import fan_out
from storage.crypto import UndecryptableError, install
from storage.crypto_setup import EncryptionSetupError, setup_encryption
from storage.models import Message, Supporter, SupporterAddress
from tests.channels import twilio_case
from tests.conftest import PG_URL, FakeClock
from tests.gateway.test_erasure import api, organizer, raw_bytes, sms
from tests.routing.fake_adapter import FakeAdapter, make_dispatcher, take_over_channels

MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]
KEY = base64.b64encode(bytes(range(32))).decode()
OTHER_KEY = base64.b64encode(bytes(range(1, 33))).decode()
PHONE = "+14155550163"
LANE_PHONE = "+14155550164"
NAME = "Philomena Stargazer-Ubik"
BODY = "ORANGE-NARWHAL-4410 bring the banners"
LANE_BODY = "TEAL-WALRUS-8812 second shift"
NOTE = "CRIMSON-HERON-2203 drives a van"


async def _seed(client: httpx.AsyncClient) -> int:
    made = await api(
        client,
        "POST",
        "/supporters",
        json={"name": NAME, "addresses": [{"channel": "sms", "address": PHONE}]},
    )
    await sms(client, BODY, sender=PHONE)
    await sms(client, LANE_BODY, sender=LANE_PHONE)  # an unknown sender: created on ingest
    await api(client, "POST", f"/supporters/{made['id']}/messages", json={"body": "Thanks!"})
    convo = (await api(client, "GET", f"/conversations?supporter_id={made['id']}"))["items"][0]
    await api(client, "POST", f"/conversations/{convo['id']}/notes", json={"body": NOTE})
    return int(made["id"])


SECRETS = (NAME, PHONE, PHONE[1:], LANE_PHONE[1:], BODY, LANE_BODY, NOTE, "banners")


@pytest.mark.parametrize("lane", [True, False], ids=["sqlite-lane", "sqlalchemy"])
async def test_no_name_number_or_body_in_the_database_files(
    make_client: MakeClient, lane: bool, clock: FakeClock
) -> None:
    client = await organizer(make_client, encryption_keys=KEY, sqlite_lane=lane)
    sid = await _seed(client)
    # The reply goes out (a send attempt is stored with the address), decrypted to send.
    provider = FakeAdapter(channels=("sms",), provider="fake-sms")
    take_over_channels(client.ctx, provider)  # type: ignore[attr-defined]
    assert await make_dispatcher(client.ctx, clock).run_once() == 1  # type: ignore[attr-defined]
    assert [m.body for m in provider.sent_to(PHONE)] == ["Thanks!"]
    if PG_URL is None:
        data = raw_bytes(client)
        assert data, "no database file found"
        for secret in SECRETS:
            assert secret.encode() not in data, secret
    async with client.ctx.engine.connect() as conn:  # type: ignore[attr-defined]
        for table, column in (
            ("supporters", "name"),
            ("supporter_addresses", "address"),
            ("supporter_addresses", "address_sealed"),
            ("messages", "body"),
            ("messages", "address"),
            ("messages", "raw"),
            ("message_attempts", "address"),
            ("conversation_notes", "body"),
        ):
            stored = [r[0] for r in await conn.execute(text(f"SELECT {column} FROM {table}"))]
            for value in stored:
                for secret in SECRETS:
                    assert secret not in str(value), (table, column)
            assert any(str(v).startswith(("e1:", "b1:")) for v in stored), (table, column)

    # Read back through the API, and found again by the number (one indexed lookup).
    person = await api(client, "GET", f"/supporters/{sid}")
    assert person["name"] == NAME
    assert [a["address"] for a in person["addresses"]] == [PHONE]
    found = await api(client, "GET", "/supporters", params={"q": "+1 415 555 0163"})
    assert [s["id"] for s in found["items"]] == [sid]
    for q in ("philomena", "Star", "stargazer ubi"):  # word starts, any case
        found = await api(client, "GET", "/supporters", params={"q": q})
        assert [s["id"] for s in found["items"]] == [sid], q
    assert (await api(client, "GET", "/supporters", params={"q": "gazer"}))["items"] == []
    convos = await api(client, "GET", "/conversations", params={"q": "philo"})
    assert [c["supporter_id"] for c in convos["items"]] == [sid]
    convo = (await api(client, "GET", f"/conversations?supporter_id={sid}"))["items"][0]
    bodies = [
        m["body"]
        for m in (await api(client, "GET", f"/conversations/{convo['id']}/messages"))["items"]
    ]
    assert BODY in bodies and "Thanks!" in bodies
    # The lane's unknown sender got a supporter, whose conversation reads back too.
    other = await api(client, "GET", "/supporters", params={"q": LANE_PHONE})
    assert len(other["items"]) == 1 and other["items"][0]["name"] == LANE_PHONE


@pytest.mark.parametrize("lane", [True, False], ids=["sqlite-lane", "sqlalchemy"])
async def test_an_inbound_from_a_known_number_joins_its_supporter(
    make_client: MakeClient, lane: bool
) -> None:
    """Routing looks the sender up by the blind index, on either phone channel: no
    duplicate supporter."""
    client = await organizer(make_client, encryption_keys=KEY, sqlite_lane=lane)
    sid = await _seed(client)
    await sms(client, "again", sender=PHONE)
    params = twilio_case.form("inbound_whatsapp.json")
    params.update(
        MessageSid="SM" + "7" * 32,
        SmsMessageSid="SM" + "7" * 32,
        SmsSid="SM" + "7" * 32,
        From=f"whatsapp:{PHONE}",
        WaId=PHONE.lstrip("+"),
        ProfileName="Phil",
        Body="on whatsapp",
    )
    request = twilio_case.signed_post(params)
    answer = await client.post(request.path, headers=request.headers, content=request.content)
    assert answer.status_code == 200, answer.text
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        # (A sealed column cannot be compared in SQL: each value has its own nonce.)
        messages = (await session.exec(select(Message))).all()
        senders = [m.supporter_id for m in messages if m.body in ("again", "on whatsapp")]
        addresses = (await session.exec(select(SupporterAddress))).all()
    assert senders == [sid, sid]
    assert sorted((a.channel, a.address) for a in addresses) == sorted(
        [("sms", PHONE), ("sms", LANE_PHONE), ("whatsapp", PHONE)]
    )


async def test_a_value_moved_to_another_row_or_column_does_not_decrypt(
    make_client: MakeClient,
) -> None:
    client = await organizer(make_client, encryption_keys=KEY)
    await _seed(client)
    async with client.ctx.engine.begin() as conn:  # type: ignore[attr-defined]
        rows = list(await conn.execute(text("SELECT id, address_sealed FROM supporter_addresses")))
        assert len(rows) == 2
        (a, sealed_a), (b, sealed_b) = rows
        await conn.execute(
            text("UPDATE supporter_addresses SET address_sealed = :v WHERE id = :id"),
            [{"v": sealed_b, "id": a}, {"v": sealed_a, "id": b}],
        )
        body = (await conn.execute(text("SELECT body FROM messages ORDER BY id LIMIT 1"))).one()[0]
        await conn.execute(text("UPDATE supporters SET name = :v"), {"v": body})
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        with pytest.raises(UndecryptableError):
            (await session.exec(select(SupporterAddress))).all()
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        with pytest.raises(UndecryptableError):
            (await session.exec(select(Supporter))).all()


async def test_start_up_refuses_a_wrong_or_missing_key(make_client: MakeClient) -> None:
    client = await organizer(make_client, encryption_keys=KEY)
    await _seed(client)
    engine = client.ctx.engine  # type: ignore[attr-defined]
    with pytest.raises(EncryptionSetupError, match="does not hold the key"):
        await setup_encryption(engine, OTHER_KEY)
    with pytest.raises(EncryptionSetupError, match="RALLYPOINT_ENCRYPTION_KEYS is unset"):
        await setup_encryption(engine, None)
    # The old key listed after a new one still opens everything.
    assert await setup_encryption(engine, f"{OTHER_KEY},{KEY}") is not None
    install(None)


async def test_keys_on_a_plaintext_database_ask_for_rotation(make_client: MakeClient) -> None:
    client = await organizer(make_client, encryption_keys=None)  # plaintext
    await _seed(client)
    with pytest.raises(EncryptionSetupError, match="rotate-encryption"):
        await setup_encryption(client.ctx.engine, KEY)  # type: ignore[attr-defined]


def _serve(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str, keys: str
) -> tuple[int, str]:
    monkeypatch.setenv("RALLYPOINT_DATABASE_URL", url)
    monkeypatch.setenv("RALLYPOINT_ENCRYPTION_KEYS", keys)
    code = main(["serve"])
    return code, capsys.readouterr().err


async def test_serve_says_one_line_for_a_wrong_key(
    make_client: MakeClient,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = await organizer(make_client, encryption_keys=KEY)
    await _seed(client)
    await client.aclose()
    await client.ctx.engine.dispose()  # type: ignore[attr-defined]
    import asyncio

    code, err = await asyncio.to_thread(_serve, monkeypatch, capsys, database_url, OTHER_KEY)
    assert code == 2
    assert err.count("\n") == 1 and "does not hold the key" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "keys",
    ["not base64!", base64.b64encode(b"short").decode(), f"{KEY},{KEY[:-4]}"],
    ids=["not-base64", "16-bytes", "second-key-short"],
)
def test_a_key_in_the_wrong_format_exits_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], keys: str
) -> None:
    monkeypatch.setenv("RALLYPOINT_ENCRYPTION_KEYS", keys)
    assert main(["migrate"]) == 2
    err = capsys.readouterr().err
    assert "RALLYPOINT_ENCRYPTION_KEYS" in err
    assert keys not in err


def test_plaintext_without_keys_is_unchanged(settings: Any) -> None:
    """Without keys the column types store what plain columns stored."""
    install(None)
    kind = Message.__table__.c.body.type  # type: ignore[attr-defined]
    assert kind.process_bind_param(BODY, None) == BODY


async def test_an_announcement_fans_out_and_sends_with_keys_set(
    make_client: MakeClient, clock: FakeClock
) -> None:
    """Fan-out copies each member's sealed address as it is; dispatch opens it to send."""
    client = await organizer(make_client, encryption_keys=KEY)
    await _seed(client)
    made = await api(
        client, "POST", "/announcements", json={"body": "RALLY-AT-SIX", "audience": {"all": True}}
    )
    await fan_out(client.ctx, made["id"])  # type: ignore[attr-defined]
    async with client.ctx.engine.connect() as conn:  # type: ignore[attr-defined]
        stored = [
            r[0]
            for r in await conn.execute(
                text("SELECT address FROM messages WHERE announcement_id = :a"), {"a": made["id"]}
            )
        ]
    assert len(stored) == 2 and all(a.startswith("e1:") for a in stored)
    provider = FakeAdapter(channels=("sms",), provider="fake-sms")
    take_over_channels(client.ctx, provider)  # type: ignore[attr-defined]
    dispatcher = make_dispatcher(client.ctx, clock)  # type: ignore[attr-defined]
    while await dispatcher.run_once():
        pass
    sent = {m.to for _, m in provider.accepted if m.body == "RALLY-AT-SIX"}
    assert sent == {PHONE, LANE_PHONE}

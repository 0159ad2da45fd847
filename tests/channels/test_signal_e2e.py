"""Signal end to end through the wire fake of signal-cli-rest-api: envelopes read by the
receiver (websocket in json-rpc mode, GET in normal mode) become supporters and
conversations; STOP opts out; one-on-ones and announcements go out by POST /v2/send;
receipts move them to delivered and read; an unregistered number falls back."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from sqlalchemy import func
from sqlmodel import select

from channels.signal.fake import FakeSignalApi
from channels.signal.receiver import SignalReceiver
from channels.twilio.fake import FakeTwilio
from gateway.background import background_services
from gateway.signal_receiver import signal_receiver
from routing.dispatch.dispatcher import Dispatcher
from storage.models import PendingStatus
from tests.channels import twilio_case
from tests.channels.send_contract import all_logs, leaked
from tests.channels.signal_case import NUMBER, SETTINGS, SUPPORTER, load
from tests.conftest import bearer, new_key

ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]
BOUND = 10.0  # seconds any wait on the loopback websocket may take, at most
FAST = {"signal_rate_per_second": 1000.0}  # no rate-limit waits in these tests


async def _api(client: httpx.AsyncClient, method: str, path: str, **kw: Any) -> Any:
    answer = await client.request(method, f"/api/v1{path}", **kw)
    assert answer.status_code < 300, answer.text
    return answer.json() if answer.content else None


async def _only_conversation(client: httpx.AsyncClient) -> tuple[dict[str, Any], list[Any]]:
    [convo] = (await _api(client, "GET", "/conversations"))["items"]
    messages = (await _api(client, "GET", f"/conversations/{convo['id']}/messages"))["items"]
    return convo, messages


async def test_websocket_envelopes_make_a_supporter_and_survive_a_reconnect(
    make_client: ClientFactory,
) -> None:
    fake = FakeSignalApi(NUMBER)
    async with fake.websocket() as base:
        client = await make_client(
            transport=fake.transport, signal_api_base=base, signal_number=NUMBER, **FAST
        )
        ctx = client.ctx  # type: ignore[attr-defined]
        client.headers.update(bearer(await new_key(ctx)))
        receiver = signal_receiver(ctx)
        assert receiver is not None
        assert any(isinstance(s, SignalReceiver) for s in background_services(ctx))
        with all_logs() as records:
            await receiver.start()
            try:
                await asyncio.wait_for(fake.wait_clients(1), BOUND)
                first = fake.text_envelope(SUPPORTER, "Flyers are up at the library")
                await fake.deliver(first)
                await asyncio.wait_for(receiver.wait_stored(1), BOUND)

                # The API restarts: the receiver connects again at once and reads on.
                await fake.drop_clients()
                await asyncio.wait_for(fake.wait_connections(2), BOUND)
                await asyncio.wait_for(fake.wait_clients(1), BOUND)
                await fake.deliver(fake.text_envelope(SUPPORTER, "Banner is ready"))
                await fake.deliver(first)  # Signal redelivers: stored once
                await asyncio.wait_for(receiver.wait_stored(3), BOUND)
            finally:
                await receiver.stop()
        # The receiver and the websocket library (SQLAlchemy's row logging at DEBUG, on the
        # PostgreSQL path, is the database layer's own affair, the same for every channel).
        ours = [r for r in records if not r.name.startswith("sqlalchemy")]
        assert not leaked(ours, [SUPPORTER, "Flyers are up", "Banner is ready"])
    assert fake.lost == []
    convo, messages = await _only_conversation(client)
    assert [(m["direction"], m["channel"], m["body"]) for m in messages] == [
        ("inbound", "signal", "Flyers are up at the library"),
        ("inbound", "signal", "Banner is ready"),
    ]
    supporter = await _api(client, "GET", f"/supporters/{convo['supporter_id']}")
    assert supporter["name"] == "Amina Otieno"
    assert supporter["addresses"] == [
        {**supporter["addresses"][0], "channel": "signal", "address": SUPPORTER}
    ]


async def test_poll_mode_reads_envelopes_and_stop_opts_out(make_client: ClientFactory) -> None:
    fake = FakeSignalApi(NUMBER, mode="normal")
    client = await make_client(
        transport=fake.transport, signal_receive_mode="poll", **SETTINGS, **FAST
    )
    ctx = client.ctx  # type: ignore[attr-defined]
    client.headers.update(bearer(await new_key(ctx)))
    receiver = signal_receiver(ctx)
    assert receiver is not None and receiver.config.receive_mode == "poll"

    await fake.deliver(fake.text_envelope(SUPPORTER, "Count me in"))
    await fake.deliver(fake.receipt_envelope(SUPPORTER, ["1"]))  # for nothing of ours
    assert await receiver.poll_once() == 2
    assert fake.queue == []
    convo, messages = await _only_conversation(client)
    assert [m["body"] for m in messages] == ["Count me in"]
    supporter_id = convo["supporter_id"]

    await fake.deliver(fake.text_envelope(SUPPORTER, "stop"))
    assert await receiver.poll_once() == 1
    supporter = await _api(client, "GET", f"/supporters/{supporter_id}")
    assert supporter["opted_out"] is True
    await Dispatcher(ctx).run_until_idle()
    # The opt-out confirmation goes back over Signal; nothing else does after it.
    assert len(fake.sent[SUPPORTER]) == 1
    refused = await client.post(
        f"/api/v1/supporters/{supporter_id}/messages", json={"body": "Still there?"}
    )
    assert refused.status_code == 409, refused.text


async def test_one_on_one_and_announcement_go_out_and_receipts_move_them(
    make_client: ClientFactory,
) -> None:
    fake = FakeSignalApi(NUMBER, mode="normal")
    client = await make_client(
        transport=fake.transport, signal_receive_mode="poll", **SETTINGS, **FAST
    )
    ctx = client.ctx  # type: ignore[attr-defined]
    client.headers.update(bearer(await new_key(ctx)))
    created = await _api(
        client,
        "POST",
        "/supporters",
        json={"name": "Amina", "addresses": [{"channel": "signal", "address": SUPPORTER}]},
    )
    one = await _api(
        client, "POST", f"/supporters/{created['id']}/messages", json={"body": "Hi Amina"}
    )
    assert one["channel"] == "signal"
    announced = await _api(
        client, "POST", "/announcements", json={"body": "Rally at 6", "audience": {"all": True}}
    )
    assert announced["recipients"] == 1
    await Dispatcher(ctx).run_until_idle()
    assert fake.sent[SUPPORTER] == ["Hi Amina", "Rally at 6"]
    assert fake.requests[0] == {"message": "Hi Amina", "number": NUMBER, "recipients": [SUPPORTER]}

    message = await _api(client, "GET", f"/messages/{one['id']}")
    assert message["status"] == "sent"
    first_ts = message["provider_message_id"]
    assert first_ts.isdigit()
    _, messages = await _only_conversation(client)
    second_ts = next(m for m in messages if m["body"] == "Rally at 6")["provider_message_id"]

    receiver = signal_receiver(ctx)
    assert receiver is not None
    # Someone else's receipt that names our timestamp moves nothing, and is not kept.
    await fake.deliver(fake.receipt_envelope("+254700000001", [first_ts], read=True))
    await receiver.poll_once()
    assert (await _api(client, "GET", f"/messages/{one['id']}"))["status"] == "sent"
    async with ctx.sessions() as session:
        assert (await session.exec(select(func.count()).select_from(PendingStatus))).one() == 0
    await fake.deliver(fake.receipt_envelope(SUPPORTER, [first_ts, second_ts]))
    await receiver.poll_once()
    assert (await _api(client, "GET", f"/messages/{one['id']}"))["status"] == "delivered"
    await fake.deliver(fake.receipt_envelope(SUPPORTER, [first_ts], read=True))
    # A late delivery receipt after the read one moves nothing back.
    await fake.deliver(fake.receipt_envelope(SUPPORTER, [first_ts]))
    await receiver.poll_once()
    assert (await _api(client, "GET", f"/messages/{one['id']}"))["status"] == "read"
    report = await _api(client, "GET", f"/announcements/{announced['id']}")
    assert report["by_channel"] == {"signal": {"delivered": 1}}


async def test_an_unregistered_number_falls_back_to_sms(make_client: ClientFactory) -> None:
    signal = FakeSignalApi(NUMBER)
    signal.unregistered.add(SUPPORTER)
    twilio = FakeTwilio(
        twilio_case.ACCOUNT_SID, twilio_case.AUTH_TOKEN, api_base=twilio_case.API_BASE
    )

    async def route(request: httpx.Request) -> httpx.Response:
        if request.url.host == httpx.URL(twilio_case.API_BASE).host:
            return await twilio(request)
        return signal.handler(request)

    client = await make_client(
        transport=httpx.MockTransport(route), **SETTINGS, **twilio_case.SETTINGS, **FAST
    )
    ctx = client.ctx  # type: ignore[attr-defined]
    client.headers.update(bearer(await new_key(ctx)))
    created = await _api(
        client,
        "POST",
        "/supporters",
        json={
            "name": "Amina",
            "addresses": [
                {"channel": "signal", "address": SUPPORTER},
                {"channel": "sms", "address": SUPPORTER},
            ],
            "preferred_channels": ["signal", "sms"],
        },
    )
    queued = await _api(
        client, "POST", f"/supporters/{created['id']}/messages", json={"body": "Hi there"}
    )
    assert queued["channel"] == "signal"
    await Dispatcher(ctx).run_until_idle()
    message = await _api(client, "GET", f"/messages/{queued['id']}")
    assert (message["channel"], message["status"]) == ("sms", "sent")
    assert len(signal.requests) == 1 and signal.sent == {}
    assert [(m.get("To"), m.get("Body")) for m in twilio.sent] == [(SUPPORTER, "Hi there")]


async def test_the_signal_webhook_path_is_no_ones(make_client: ClientFactory) -> None:
    client = await make_client(**SETTINGS)
    answer = await client.post("/webhooks/signal", json={"envelope": {}})
    assert answer.status_code in (403, 404)
    assert (await client.get("/api/v1/conversations")).status_code == 401


async def test_an_attachment_is_served_from_the_api(make_client: ClientFactory) -> None:
    fake = FakeSignalApi(NUMBER, mode="normal")
    client = await make_client(
        transport=fake.transport, signal_receive_mode="poll", **SETTINGS, **FAST
    )
    ctx = client.ctx  # type: ignore[attr-defined]
    client.headers.update(bearer(await new_key(ctx)))
    photo = b"\xff\xd8\xff\xe0 a small jpeg"
    attachment = fake.add_attachment(photo)
    await fake.deliver(fake.text_envelope(SUPPORTER, "", attachments=[attachment]))
    receiver = signal_receiver(ctx)
    assert receiver is not None and await receiver.poll_once() == 1
    _, [message] = await _only_conversation(client)
    answer = await client.get(f"/api/v1/messages/{message['id']}/attachments/0")
    assert answer.status_code == 200, answer.text
    assert answer.content == photo
    assert answer.headers["content-type"].startswith("image/jpeg")


async def test_a_signal_username_is_an_address(make_client: ClientFactory) -> None:
    client = await make_client(**SETTINGS)
    client.headers.update(bearer(await new_key(client.ctx)))  # type: ignore[attr-defined]
    created = await client.post(
        "/api/v1/supporters",
        json={"name": "Kip", "addresses": [{"channel": "signal", "address": " Kip_Runs.07 "}]},
    )
    assert created.status_code == 201, created.text
    assert created.json()["addresses"][0]["address"] == "kip_runs.07"
    refused = await client.post(
        "/api/v1/supporters",
        json={"name": "X", "addresses": [{"channel": "signal", "address": "not a number"}]},
    )
    assert refused.status_code == 422
    assert "Signal address" in refused.text


async def test_csv_import_and_export_carry_a_signal_column(make_client: ClientFactory) -> None:
    client = await make_client(**SETTINGS)
    client.headers.update(bearer(await new_key(client.ctx)))  # type: ignore[attr-defined]
    data = b"name,signal,preferred_channels\nAmina,+254712345678,signal\nKip,Kip_Runs.07,\n"
    answer = await client.post(
        "/api/v1/supporters/import", files={"file": ("people.csv", data, "text/csv")}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["created"] == 2
    exported = await client.get("/api/v1/supporters/export")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    # A Signal number is exported as it is, not formula-escaped.
    assert [(r["name"], r["signal"]) for r in rows] == [
        ("Amina", "+254712345678"),
        ("Kip", "kip_runs.07"),
    ]


async def test_a_sender_hiding_their_number_is_known_by_uuid(make_client: ClientFactory) -> None:
    fake = FakeSignalApi(NUMBER, mode="normal")
    client = await make_client(
        transport=fake.transport, signal_receive_mode="poll", **SETTINGS, **FAST
    )
    ctx = client.ctx  # type: ignore[attr-defined]
    client.headers.update(bearer(await new_key(ctx)))
    fake.queue.append(load("hidden_number"))  # STOP from a UUID only
    receiver = signal_receiver(ctx)
    assert receiver is not None and await receiver.poll_once() == 1
    [supporter] = (await _api(client, "GET", "/supporters"))["items"]
    assert supporter["opted_out"] is True
    assert [(a["channel"], a["address"]) for a in supporter["addresses"]] == [
        ("signal", "0c9e7a44-1d2b-4f38-a6de-5b0f8e3c2a91")
    ]
    await Dispatcher(ctx).run_until_idle()
    assert list(fake.sent) == ["0c9e7a44-1d2b-4f38-a6de-5b0f8e3c2a91"]  # the confirmation


async def test_an_envelope_no_database_takes_is_dropped_not_blocking(
    make_client: ClientFactory,
) -> None:
    fake = FakeSignalApi(NUMBER, mode="normal")
    client = await make_client(
        transport=fake.transport, signal_receive_mode="poll", **SETTINGS, **FAST
    )
    ctx = client.ctx  # type: ignore[attr-defined]
    client.headers.update(bearer(await new_key(ctx)))
    await fake.deliver(fake.text_envelope(SUPPORTER, "bad \x00 text"))
    await fake.deliver(fake.text_envelope(SUPPORTER, "good text"))
    receiver = signal_receiver(ctx)
    assert receiver is not None and await receiver.poll_once() == 2
    assert receiver.pending == []
    _, messages = await _only_conversation(client)
    assert [m["body"] for m in messages] == ["good text"]

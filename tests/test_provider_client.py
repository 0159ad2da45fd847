"""The production HTTP client (httpx over aiohttp's pool, sends straight to aiohttp) on a
real loopback socket: an adapter's send reaches a server with the request httpx would
have written, and its failures still map to our SendError family."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from channels.base import OutboundMessage, ProviderUnavailable, Throttled
from channels.twilio import build_adapter
from channels.twilio.adapter import TwilioAdapter
from channels.whatsapp_cloud import build_adapter as build_whatsapp
from gateway.app import provider_client
from gateway.channel_configs import twilio_config, whatsapp_cloud_config
from tests.conftest import make_settings

SID = "AC" + "c" * 32


class TinyTwilio:
    """Answers Messages.json over a real socket with a created message (or the next scripted
    answer); records each request line, headers and body."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, bytes]] = []
        self.headers: list[dict[str, str]] = []
        self.scripted: list[bytes] = []
        # As many servers do: gzip the answer when the request says it takes gzip.
        self.gzip_when_asked = False

    def answer_next(self, status: str, body: bytes, headers: str = "") -> None:
        """The next request is answered `status` with a JSON `body` and extra `headers`."""
        self.scripted.append(
            f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{headers}".encode()
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        lines = head.decode("latin-1").split("\r\n")
        length = next(
            int(line.split(":", 1)[1])
            for line in lines
            if line.lower().startswith("content-length")
        )
        body = await asyncio.wait_for(reader.readexactly(length), 5)
        self.requests.append((lines[0], body))
        self.headers.append(
            {
                k.strip().lower(): v.strip()
                for k, _, v in (line.partition(":") for line in lines[1:])
            }
        )
        if self.scripted:
            writer.write(self.scripted.pop(0))
        else:
            answer = json.dumps({"sid": f"SM{len(self.requests):032x}", "status": "queued"})
            payload, encoding = answer.encode(), b""
            if self.gzip_when_asked and "gzip" in self.headers[-1].get("accept-encoding", ""):
                payload, encoding = gzip.compress(payload), b"Content-Encoding: gzip\r\n"
            writer.write(
                b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                + encoding
                + f"Content-Length: {len(payload)}\r\n\r\n".encode()
                + payload
            )
        await writer.drain()
        writer.close()


@pytest.fixture
async def tiny_twilio() -> AsyncIterator[tuple[TinyTwilio, int]]:
    fake = TinyTwilio()
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield fake, port
    server.close()
    await asyncio.wait_for(server.wait_closed(), 5)


def twilio_over(port: int) -> TwilioAdapter:
    settings = make_settings(
        "sqlite://",
        twilio_account_sid=SID,
        twilio_auth_token="token",  # noqa: S106
        twilio_sms_from="+14155550100",
        twilio_api_base=f"http://127.0.0.1:{port}",
    )
    config = twilio_config(settings)
    assert config is not None
    return build_adapter(config, provider_client(settings))


async def test_a_send_crosses_a_real_socket(tiny_twilio: tuple[TinyTwilio, int]) -> None:
    fake, port = tiny_twilio
    adapter = twilio_over(port)
    try:
        result = await asyncio.wait_for(
            adapter.send(OutboundMessage(1, "sms", "+14155550111", "See you Saturday")), 10
        )
    finally:
        await adapter._http.aclose()
    assert result.provider_message_id == f"SM{1:032x}"
    [(request_line, body)] = fake.requests
    assert request_line == f"POST /2010-04-01/Accounts/{SID}/Messages.json HTTP/1.1"
    assert b"To=%2B14155550111" in body and b"Body=See+you+Saturday" in body
    # The Authorization header httpx.BasicAuth writes, and the form's content type.
    request = httpx.Request("POST", "http://127.0.0.1/")
    written = next(httpx.BasicAuth(SID, "token").auth_flow(request)).headers["authorization"]
    assert fake.headers[0]["authorization"] == written
    assert fake.headers[0]["content-type"] == "application/x-www-form-urlencoded"


async def test_a_429_over_the_socket_is_throttled_with_its_retry_after(
    tiny_twilio: tuple[TinyTwilio, int],
) -> None:
    fake, port = tiny_twilio
    fake.answer_next(
        "429 Too Many Requests",
        b'{"code": 20429, "message": "Too Many Requests"}',
        "Retry-After: 7\r\n",
    )
    adapter = twilio_over(port)
    try:
        with pytest.raises(Throttled) as raised:
            await asyncio.wait_for(
                adapter.send(OutboundMessage(1, "sms", "+14155550111", "hello")), 10
            )
    finally:
        await adapter._http.aclose()
    assert raised.value.retry_after == 7


async def test_a_whatsapp_send_crosses_a_real_socket_as_json(
    tiny_twilio: tuple[TinyTwilio, int],
) -> None:
    fake, port = tiny_twilio
    fake.answer_next(
        "200 OK", b'{"messaging_product": "whatsapp", "messages": [{"id": "wamid.ONE"}]}'
    )
    settings = make_settings(
        "sqlite://",
        whatsapp_access_token="wa-token",  # noqa: S106
        whatsapp_phone_number_id="1066",
        whatsapp_app_secret="secret",  # noqa: S106
        whatsapp_verify_token="verify",  # noqa: S106
        whatsapp_api_base=f"http://127.0.0.1:{port}/v21.0",
    )
    config = whatsapp_cloud_config(settings)
    assert config is not None
    adapter = build_whatsapp(config, provider_client(settings))
    try:
        result = await asyncio.wait_for(
            adapter.send(OutboundMessage(1, "whatsapp", "+14155550111", "Säturday ✓")), 10
        )
    finally:
        await adapter._http.aclose()
    assert result.provider_message_id == "wamid.ONE"
    [(request_line, body)] = fake.requests
    assert request_line == "POST /v21.0/1066/messages HTTP/1.1"
    assert json.loads(body)["to"] == "14155550111"
    assert json.loads(body)["text"]["body"] == "Säturday ✓"
    assert fake.headers[0]["authorization"] == "Bearer wa-token"
    assert fake.headers[0]["content-type"] == "application/json"


async def test_a_refused_connection_is_provider_unavailable() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()  # nothing listens on `port` any more
    adapter = twilio_over(port)
    try:
        with pytest.raises(ProviderUnavailable):
            await asyncio.wait_for(
                adapter.send(OutboundMessage(1, "sms", "+14155550111", "hello")), 10
            )
    finally:
        await adapter._http.aclose()


async def test_a_send_is_read_whatever_encoding_the_provider_answers_in(
    tiny_twilio: tuple[TinyTwilio, int],
) -> None:
    """A provider that gzips its answer when asked: the send's answer is still read (a
    send that went out must not be recorded as failed for an undecoded body)."""
    fake, port = tiny_twilio
    fake.gzip_when_asked = True
    adapter = twilio_over(port)
    try:
        result = await asyncio.wait_for(
            adapter.send(OutboundMessage(1, "sms", "+14155550111", "hello")), 10
        )
    finally:
        await adapter._http.aclose()
    assert result.provider_message_id == f"SM{1:032x}"

"""The production HTTP client (httpx over aiohttp's pool) on a real loopback socket: an
adapter's send reaches a server and its failures still map to our SendError family."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from channels.base import OutboundMessage, ProviderUnavailable
from channels.twilio import build_adapter
from channels.twilio.adapter import TwilioAdapter
from gateway.app import provider_client
from gateway.channel_configs import twilio_config
from tests.conftest import make_settings

SID = "AC" + "c" * 32


class TinyTwilio:
    """Answers Messages.json over a real socket with a created message; records requests."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, bytes]] = []

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
        answer = json.dumps({"sid": f"SM{len(self.requests):032x}", "status": "queued"}).encode()
        writer.write(
            b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(answer)}\r\n\r\n".encode()
            + answer
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

"""An in-process fake of signal-cli-rest-api for tests, demos and the bench.

HTTP (`FakeSignalApi().transport`, an httpx transport): POST /v2/send, GET /v1/about,
GET /v1/receive/{number} in normal mode (a JSON array served as text/plain, removing what
it returns) and GET /v1/attachments/{id}. json-rpc mode's websocket runs on a real
loopback server (`async with fake.websocket() as base_url`), pushing one envelope per
text frame to every connected client; an envelope pushed while none is connected is
lost, as with the real API.

Envelopes are real-shaped (channels/signal/testdata/); scripted send failures per
recipient play the API's real answers.
"""

from __future__ import annotations

import asyncio
import json
import uuid as uuid_module
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import unquote

import httpx
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from channels.signal.receiver import SOCKET_LOG

START_TIMESTAMP = 1772636400000
# Scripted answers to POST /v2/send: (HTTP status, body). "{number}" is our account,
# "{to}" the recipient, as signal-cli writes them into its error texts.
FAILURES: dict[str, tuple[int, dict[str, Any]]] = {
    "unregistered": (
        400,
        {"error": 'Failed to send message: {to}: Unregistered user "{to}"\n'},
    ),
    "unregistered_result": (
        201,
        {
            "timestamp": "{ts}",
            "errors": {"recipients": [{"number": "{to}", "reason": "UNREGISTERED_FAILURE"}]},
        },
    ),
    "account_unregistered": (400, {"error": "User {number} is not registered.\n"}),
    "rate_limit": (
        429,
        {
            "error": "Failed to send message due to rate limiting. Use the attached challenge "
            "tokens to lift the rate limit restrictions via the "
            "'/v1/accounts/{number}/rate-limit-challenge' endpoint.",
            "challenge_tokens": ["4e1cb5b7-ce8b-4a8f-9a52-0ba7d3c6a5e1"],
            "account": "{number}",
        },
    ),
    "identity": (400, {"error": "Failed to send message: {to}: Untrusted Identity\n"}),
    "bad_request": (400, {"error": "Couldn't process request - invalid request"}),
    "bad_gateway": (502, {}),
    "internal_error": (500, {"error": "Internal Server Error"}),
    "not_found": (404, {}),
    "garbage_201": (201, {"ok": True}),
}
TRANSPORT_FAILURES = ("connect_error", "timeout")


def _fill(value: Any, **names: str) -> Any:
    if isinstance(value, str):
        return value.format(**names)
    if isinstance(value, list):
        return [_fill(v, **names) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, **names) for k, v in value.items()}
    return value


class FakeSignalApi:
    def __init__(self, number: str = "+14155550123", *, mode: str = "json-rpc") -> None:
        self.number = number
        self.mode = mode
        self.sent: dict[str, list[str]] = defaultdict(list)  # recipient -> messages
        self.requests: list[dict[str, Any]] = []  # /v2/send bodies as received
        self.queue: list[dict[str, Any]] = []  # normal mode: envelopes not yet received
        self.lost: list[dict[str, Any]] = []  # pushed while no websocket client was on
        self.attachments: dict[str, bytes] = {}
        self.unregistered: set[str] = set()
        self._script: dict[str, deque[str | None]] = defaultdict(deque)
        self._timestamp = START_TIMESTAMP
        self._clients: set[ServerConnection] = set()
        self._client_joined = asyncio.Condition()
        self.connections = 0  # websocket connections accepted so far
        self.sender_uuids: dict[str, str] = {}

    # Envelopes a supporter's phone would cause

    def next_timestamp(self) -> int:
        self._timestamp += 1
        return self._timestamp

    def uuid_of(self, address: str) -> str:
        return self.sender_uuids.setdefault(
            address, str(uuid_module.uuid5(uuid_module.NAMESPACE_URL, address))
        )

    def text_envelope(
        self,
        source: str,
        text: str,
        *,
        name: str = "Amina Otieno",
        timestamp: int | None = None,
        attachments: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        ts = timestamp or self.next_timestamp()
        data: dict[str, Any] = {
            "timestamp": ts,
            "message": text,
            "expiresInSeconds": 0,
            "viewOnce": False,
        }
        if attachments:
            data["attachments"] = attachments
        return self._envelope(source, name, ts, dataMessage=data)

    def receipt_envelope(
        self, source: str, timestamps: list[str | int], *, read: bool = False
    ) -> dict[str, Any]:
        when = self.next_timestamp()
        receipt = {
            "when": when,
            "isDelivery": not read,
            "isRead": read,
            "isViewed": False,
            "timestamps": [int(t) for t in timestamps],
        }
        return self._envelope(source, "", when, receiptMessage=receipt)

    def _envelope(self, source: str, name: str, ts: int, **content: Any) -> dict[str, Any]:
        number = source if source.startswith("+") else None
        envelope: dict[str, Any] = {
            "source": source,
            "sourceNumber": number,
            "sourceUuid": self.uuid_of(source),
            "sourceName": name,
            "sourceDevice": 1,
            "timestamp": ts,
            "serverReceivedTimestamp": ts + 120,
            "serverDeliveredTimestamp": ts + 180,
            **content,
        }
        return {"envelope": envelope, "account": self.number}

    def add_attachment(self, content: bytes, content_type: str = "image/jpeg") -> dict[str, Any]:
        attachment_id = f"{len(self.attachments) + 1:04d}Kx9aZ.jpg"
        self.attachments[attachment_id] = content
        return {
            "contentType": content_type,
            "filename": "flyer.jpg",
            "id": attachment_id,
            "size": len(content),
            "width": 640,
            "height": 480,
            "caption": None,
            "uploadTimestamp": START_TIMESTAMP,
        }

    # Receiving

    async def deliver(self, envelope: dict[str, Any]) -> None:
        """The API receives `envelope` from Signal: queued for the next GET in normal mode,
        pushed to the connected websocket clients in json-rpc mode (lost if none)."""
        if self.mode != "json-rpc":
            self.queue.append(envelope)
            return
        if not self._clients:
            self.lost.append(envelope)
            return
        frame = json.dumps(envelope)
        for client in list(self._clients):
            await client.send(frame)

    async def wait_clients(self, count: int = 1) -> None:
        async with self._client_joined:
            await self._client_joined.wait_for(lambda: len(self._clients) >= count)

    async def wait_connections(self, count: int) -> None:
        """Until `count` websocket connections in all have been accepted."""
        async with self._client_joined:
            await self._client_joined.wait_for(lambda: self.connections >= count)

    async def drop_clients(self) -> None:
        """Close every websocket, as a restart of the API would."""
        for client in list(self._clients):
            await client.close(1001, "going away")

    @asynccontextmanager
    async def websocket(self) -> AsyncIterator[str]:
        """Serve json-rpc mode's websocket on a loopback port; yields the API base URL."""
        async with serve(self._serve_socket, "127.0.0.1", 0, logger=SOCKET_LOG) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            try:
                yield f"http://127.0.0.1:{port}"
            finally:
                await self.drop_clients()

    async def _serve_socket(self, socket: ServerConnection) -> None:
        path = socket.request.path if socket.request is not None else ""
        if unquote(path.split("?")[0]) != f"/v1/receive/{self.number}":
            await socket.close(1008, "unknown path")
            return
        async with self._client_joined:
            self._clients.add(socket)
            self.connections += 1
            self._client_joined.notify_all()
        try:
            async for _ in socket:  # clients send nothing; reading answers pings and closes
                pass
        except ConnectionClosed:
            pass  # the client went away, however it did
        finally:
            self._clients.discard(socket)

    # Sending

    def fail(self, recipient: str, *outcomes: str | None) -> None:
        """Queue outcomes for the next sends to `recipient`: a FAILURES or
        TRANSPORT_FAILURES name, or None for a success."""
        self._script[recipient].extend(outcomes)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = unquote(request.url.path)
        if request.method == "POST" and path == "/v2/send":
            return self._send(request)
        if request.method == "GET" and path == "/v1/about":
            return self._about()
        if request.method == "GET" and path.startswith("/v1/receive/"):
            return self._receive(path.removeprefix("/v1/receive/"))
        if request.method == "GET" and path.startswith("/v1/attachments/"):
            found = self.attachments.get(path.removeprefix("/v1/attachments/"))
            if found is None:
                return httpx.Response(404, json={"error": "attachment not found"})
            return httpx.Response(200, content=found)
        return httpx.Response(404, text="404 page not found")

    def _about(self) -> httpx.Response:
        return httpx.Response(
            200,
            json={
                "versions": ["v1", "v2"],
                "build": 2,
                "mode": self.mode,
                "version": "0.92",
                "capabilities": {"v2/send": ["quotes", "mentions"]},
            },
        )

    def _receive(self, number: str) -> httpx.Response:
        if self.mode == "json-rpc":
            # A plain GET without the upgrade headers.
            return httpx.Response(
                400, json={"error": "websocket: the client is not using the websocket protocol"}
            )
        if number != self.number:
            return httpx.Response(400, json={"error": f"User {number} is not registered.\n"})
        taken, self.queue = self.queue, []
        text = "[" + ",".join(json.dumps(e) for e in taken) + "]"
        return httpx.Response(200, text=text, headers={"Content-Type": "text/plain; charset=utf-8"})

    def _send(self, request: httpx.Request) -> httpx.Response:
        try:
            body = json.loads(request.content)
        except ValueError:
            return httpx.Response(400, json={"error": "Couldn't process request - invalid request"})
        self.requests.append(body)
        if not isinstance(body, dict) or not body.get("recipients"):
            return httpx.Response(
                400,
                json={"error": "Couldn't process request - please provide at least one recipient"},
            )
        if body.get("number") != self.number:
            return httpx.Response(
                400, json={"error": f"User {body.get('number')} is not registered.\n"}
            )
        to = str(body["recipients"][0])
        scripted = self._script[to].popleft() if self._script[to] else None
        if scripted is None and to in self.unregistered:
            scripted = "unregistered"
        ts = str(self.next_timestamp())
        if scripted is not None:
            if scripted == "connect_error":
                raise httpx.ConnectError("connection refused", request=request)
            if scripted == "timeout":
                raise httpx.ReadTimeout("read timed out", request=request)
            status, payload = FAILURES[scripted]
            return httpx.Response(status, json=_fill(payload, to=to, number=self.number, ts=ts))
        for recipient in body["recipients"]:
            self.sent[str(recipient)].append(str(body.get("message", "")))
        return httpx.Response(201, json={"timestamp": ts})

"""An in-process fake of the Graph API `messages` endpoint, for tests and demos.

    fake = FakeWhatsAppCloud(access_token="t", phone_number_id="1065…", app_secret="s")
    client = httpx.AsyncClient(transport=fake.transport())

It checks the Bearer token and the phone number id as Meta does, records every request,
answers with realistic `wamid.HBgL…` ids, fails on script per recipient (Graph error
codes, 429, 500, a dropped connection), and builds signed status webhooks for messages it
accepted, so a test can play the asynchronous 131047 failure end to end.

It also serves inbound media as Meta does: `add_media(bytes, mime_type)` gives a media id
for a webhook; GET /{media-id} (token checked) answers a short-lived URL on `media_host`,
which answers the bytes, again only with the token, in chunks it counts in `media_served`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from channels.whatsapp_cloud.webhook import signature_of

DEFAULT_API_BASE = "https://graph.facebook.com/v21.0"
MEDIA_CHUNK = 1024


@dataclass(frozen=True)
class Failure:
    """One scripted failure: a Graph error (code, HTTP status), a dropped connection or
    an answer that never comes (a read timeout)."""

    code: int | None = None
    http_status: int = 400
    message: str = "scripted failure"
    subcode: int | None = None
    retry_after: str | None = None
    disconnect: bool = False
    timeout: bool = False


@dataclass
class Recorded:
    """One request the fake received."""

    path: str
    authorization: str
    json: dict[str, Any]
    wamid: str | None = None  # the id it answered with, when it accepted the message


@dataclass
class FakeWhatsAppCloud:
    access_token: str
    phone_number_id: str
    app_secret: str = "app-secret"
    api_base: str = DEFAULT_API_BASE
    display_phone_number: str = "15550783881"
    verified_name: str = "Rallypoint Organizing"
    media_host: str = "lookaside.fbsbx.com"
    requests: list[Recorded] = field(default_factory=list)
    # Media: bytes and MIME type by media id, GET requests received, bytes sent out.
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    media_requests: list[httpx.Request] = field(default_factory=list)
    media_served: int = 0
    _failures: dict[str, deque[Failure]] = field(default_factory=lambda: defaultdict(deque))
    _counter: int = 0

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def fail_next(self, to: str, failure: Failure, *, times: int = 1) -> None:
        """Answer the next `times` sends to `to` (E.164 or digits) with `failure`."""
        self._failures[to.lstrip("+")].extend([failure] * times)

    @property
    def accepted(self) -> list[Recorded]:
        return [r for r in self.requests if r.wamid is not None]

    def add_media(self, content: bytes, mime_type: str) -> str:
        """Keep `content` as an inbound media item; its id, for a webhook to carry."""
        media_id = str(1003383421387000 + len(self.media))
        self.media[media_id] = (content, mime_type)
        return media_id

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            self.media_requests.append(request)
            return self._media(request)
        path = request.url.path
        base_path = httpx.URL(self.api_base).path.rstrip("/")
        auth = request.headers.get("authorization", "")
        try:
            body = json.loads(request.content or b"{}")
        except ValueError:
            body = {}
        record = Recorded(path=path, authorization=auth, json=body)
        self.requests.append(record)
        if request.method != "POST" or not path.startswith(base_path + "/"):
            return _error(404, 100, "Unknown path components")
        if auth != f"Bearer {self.access_token}":
            return _error(401, 190, "Invalid OAuth access token - Cannot parse access token")
        if path != f"{base_path}/{self.phone_number_id}/messages":
            object_id = path.removeprefix(base_path + "/").split("/", 1)[0]
            return _error(
                400,
                100,
                f"Unsupported post request. Object with ID '{object_id}' does not exist, "
                "cannot be loaded due to missing permissions, or does not support this "
                "operation.",
                subcode=33,
            )
        to = str(body.get("to", ""))
        if body.get("messaging_product") != "whatsapp":
            return _error(400, 100, "The parameter messaging_product is required.")
        if not to.isdigit() or body.get("type") not in body:
            return _error(400, 131009, "(#131009) Parameter value is not valid")
        scripted = self._failures.get(to)
        if scripted:
            failure = scripted.popleft()
            if failure.disconnect:
                raise httpx.ConnectError("connection reset by fake", request=request)
            if failure.timeout:
                raise httpx.ReadTimeout("timed out (fake)", request=request)
            headers = {"Retry-After": failure.retry_after} if failure.retry_after else {}
            return _error(
                failure.http_status,
                failure.code,
                failure.message,
                subcode=failure.subcode,
                headers=headers,
            )
        record.wamid = self._next_wamid(to)
        return httpx.Response(
            200,
            json={
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to}],
                "messages": [{"id": record.wamid}],
            },
        )

    def _media(self, request: httpx.Request) -> httpx.Response:
        """GET /{media-id} (the URL, as JSON) or GET of that URL on `media_host` (the bytes)."""
        authorized = request.headers.get("authorization") == f"Bearer {self.access_token}"
        if request.url.host == self.media_host:
            found = self.media.get(request.url.params.get("mid", ""))
            if not authorized:
                return httpx.Response(401, text="Unauthorized")
            if found is None or request.url.params.get("hash") != _media_hash(found[0]):
                return httpx.Response(404, text="Not Found")
            content, mime_type = found
            return httpx.Response(
                200, content=self._stream(content), headers={"Content-Type": mime_type}
            )
        if not authorized:
            return _error(401, 190, "Invalid OAuth access token - Cannot parse access token")
        base_path = httpx.URL(self.api_base).path.rstrip("/")
        media_id = request.url.path.removeprefix(base_path + "/")
        if media_id == self.phone_number_id:  # GET /{phone-number-id}: the number's profile
            return httpx.Response(200, json=self.phone_number())
        phone_number_id = request.url.params.get("phone_number_id", self.phone_number_id)
        if media_id not in self.media or phone_number_id != self.phone_number_id:
            return _error(
                400,
                100,
                f"Unsupported get request. Object with ID '{media_id}' does not exist, cannot "
                "be loaded due to missing permissions, or does not support this operation.",
                subcode=33,
            )
        content, mime_type = self.media[media_id]
        url = httpx.URL(
            f"https://{self.media_host}/whatsapp_business/attachments/",
            params={"mid": media_id, "ext": int(time.time()), "hash": _media_hash(content)},
        )
        return httpx.Response(
            200,
            json={
                "messaging_product": "whatsapp",
                "url": str(url),
                "mime_type": mime_type,
                "sha256": hashlib.sha256(content).hexdigest(),
                "file_size": str(len(content)),
                "id": media_id,
            },
        )

    def phone_number(self) -> dict[str, Any]:
        return {
            "verified_name": self.verified_name,
            "display_phone_number": self.display_phone_number,
            "quality_rating": "GREEN",
            "id": self.phone_number_id,
        }

    async def _stream(self, content: bytes) -> AsyncIterator[bytes]:
        for start in range(0, len(content), MEDIA_CHUNK):
            chunk = content[start : start + MEDIA_CHUNK]
            self.media_served += len(chunk)
            yield chunk

    def _next_wamid(self, to: str) -> str:
        self._counter += 1
        # The shape of real ids: base64 of a small protobuf holding the recipient's number.
        raw = (
            b"\x1c\x18"
            + bytes([len(to)])
            + to.encode()
            + b"\x15\x02\x00\x11\x18\x12"
            + f"{self._counter:018X}".encode()
            + b"\x00"
        )
        return "wamid." + base64.b64encode(raw).decode()

    def inbound_text(self, wa_id: str, body: str, name: str) -> tuple[bytes, dict[str, str]]:
        """A signed POST /webhooks/whatsapp body and headers: a text `body` from `wa_id`
        (digits, as Meta writes numbers) whose WhatsApp profile name is `name`."""
        self._counter += 1
        message = {
            "from": wa_id,
            "id": f"wamid.HBgLIN{self._counter:06d}{secrets.token_hex(8).upper()}",
            "timestamp": str(int(time.time())),
            "type": "text",
            "text": {"body": body},
        }
        value = {
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": self.display_phone_number,
                "phone_number_id": self.phone_number_id,
            },
            "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
            "messages": [message],
        }
        return self._signed(value)

    def _signed(self, value: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        body = json.dumps(
            {
                "object": "whatsapp_business_account",
                "entry": [
                    {"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}
                ],
            },
            separators=(",", ":"),
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": signature_of(self.app_secret, body),
        }
        return body, headers

    def status_webhook(
        self,
        wamid: str,
        status: str,
        *,
        error_code: int | None = None,
        error_title: str = "Re-engagement message",
        timestamp: int | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """A signed POST /webhooks/whatsapp body and headers reporting `status` for `wamid`."""
        sent = next((r for r in self.requests if r.wamid == wamid), None)
        recipient = str(sent.json.get("to", "")) if sent else ""
        item: dict[str, Any] = {
            "id": wamid,
            "status": status,
            "timestamp": str(timestamp if timestamp is not None else int(time.time())),
            "recipient_id": recipient,
        }
        if error_code is not None:
            item["errors"] = [
                {
                    "code": error_code,
                    "title": error_title,
                    "message": error_title,
                    "error_data": {"details": f"scripted {error_code}"},
                }
            ]
        value = {
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": self.display_phone_number,
                "phone_number_id": self.phone_number_id,
            },
            "statuses": [item],
        }
        return self._signed(value)


def _media_hash(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()[:16]


def _error(
    http_status: int,
    code: int | None,
    message: str,
    *,
    subcode: int | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    error: dict[str, Any] = {
        "message": message,
        "type": "OAuthException",
        "fbtrace_id": "AbCdEfGhIjKlMnOpQrStUv",
    }
    if code is not None:
        error["code"] = code
    if subcode is not None:
        error["error_subcode"] = subcode
    return httpx.Response(http_status, json={"error": error}, headers=headers)

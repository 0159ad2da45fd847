"""An in-process fake of the Graph API `messages` endpoint, for tests and demos.

    fake = FakeWhatsAppCloud(access_token="t", phone_number_id="1065…", app_secret="s")
    client = httpx.AsyncClient(transport=fake.transport())

It checks the Bearer token and the phone number id as Meta does, records every request,
answers with realistic `wamid.HBgL…` ids, fails on script per recipient (Graph error
codes, 429, 500, a dropped connection), and builds signed status webhooks for messages it
accepted, so a test can play the asynchronous 131047 failure end to end.
"""

from __future__ import annotations

import base64
import json
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

import httpx

from channels.whatsapp_cloud.webhook import signature_of

DEFAULT_API_BASE = "https://graph.facebook.com/v21.0"


@dataclass(frozen=True)
class Failure:
    """One scripted failure: a Graph error (code, HTTP status) or a dropped connection."""

    code: int | None = None
    http_status: int = 400
    message: str = "scripted failure"
    subcode: int | None = None
    retry_after: str | None = None
    disconnect: bool = False


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
    requests: list[Recorded] = field(default_factory=list)
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

    def __call__(self, request: httpx.Request) -> httpx.Response:
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
        body = json.dumps(
            {
                "object": "whatsapp_business_account",
                "entry": [
                    {
                        "id": "102290129340398",
                        "changes": [
                            {
                                "field": "messages",
                                "value": {
                                    "messaging_product": "whatsapp",
                                    "metadata": {
                                        "display_phone_number": self.display_phone_number,
                                        "phone_number_id": self.phone_number_id,
                                    },
                                    "statuses": [item],
                                },
                            }
                        ],
                    }
                ],
            },
            separators=(",", ":"),
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": signature_of(self.app_secret, body),
        }
        return body, headers


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

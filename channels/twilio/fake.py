"""An in-process fake of Twilio's Messages API, for tests, demos and benchmarks.

    fake = FakeTwilio(account_sid, auth_token)
    client = httpx.AsyncClient(transport=httpx.MockTransport(fake))
    fake.script("+14155550100", Reply.error(21610))     # next send to that number fails
    fake.always("+14155550101", Reply.throttled(3))      # every send to it is throttled

It checks the path and basic auth like Twilio does, answers GETs of the account and of
its IncomingPhoneNumbers (`add_number`), records every request, and answers
with real-shaped JSON (sids "SM" + 32 hex). `delay` is an optional async hook awaited
before each answer, so benchmarks can model latency; tests leave it unset.

Inbound media: `add_media(bytes, content_type)` gives a MediaUrl under `api_base` for an
inbound form. Like Twilio with media authentication on, a GET of it needs basic auth and
redirects to a short-lived URL on `media_cdn`, which serves the bytes (chunked, counted in
`media_served`) and, like a presigned S3 URL, refuses a request that carries credentials.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import secrets
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl

import httpx
from twilio.request_validator import RequestValidator

from channels.base import Clock, utcnow
from channels.twilio.models import strip_whatsapp

API_VERSION = "2010-04-01"
MEDIA_CHUNK = 1024


@dataclass(frozen=True)
class Reply:
    """A scripted answer: "ok", "error" (Twilio error JSON), "throttled" (429),
    "server_error" (5xx), "network" (the connection fails) or "timeout" (no answer in
    time)."""

    kind: str = "ok"
    code: int | None = None
    http_status: int = 400
    message: str = ""
    retry_after: str | None = None
    status: str = "queued"  # the status a successful create reports

    @classmethod
    def ok(cls, status: str = "queued") -> Reply:
        return cls("ok", status=status)

    @classmethod
    def error(cls, code: int, http_status: int = 400, message: str = "") -> Reply:
        return cls("error", code=code, http_status=http_status, message=message)

    @classmethod
    def throttled(cls, retry_after: float | str | None = None) -> Reply:
        value = None if retry_after is None else str(retry_after)
        return cls("throttled", code=20429, http_status=429, retry_after=value)

    @classmethod
    def server_error(cls, http_status: int = 500) -> Reply:
        return cls("server_error", http_status=http_status)

    @classmethod
    def network(cls) -> Reply:
        return cls("network")

    @classmethod
    def timeout(cls) -> Reply:
        return cls("timeout")


@dataclass(frozen=True)
class SentMessage:
    """One request the fake received, its form decoded (repeated fields as lists)."""

    request: httpx.Request
    form: dict[str, list[str]]
    sid: str | None

    def get(self, name: str) -> str | None:
        values = self.form.get(name)
        return values[0] if values else None


@dataclass
class FakeTwilio:
    account_sid: str
    auth_token: str
    delay: Callable[[httpx.Request], Awaitable[None]] | None = None
    clock: Clock = utcnow
    api_base: str = "https://api.twilio.com"
    media_cdn: str = "https://s3-external-1.amazonaws.com/media.twiliocdn.com"
    requests: list[SentMessage] = field(default_factory=list)
    # Inbound media by its CDN key: (bytes, content type); the GETs received; bytes sent.
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    media_requests: list[httpx.Request] = field(default_factory=list)
    media_served: int = 0
    # Every message resource created, oldest first (the Messages list answers from these).
    created: list[dict[str, Any]] = field(default_factory=list)
    list_requests: list[httpx.Request] = field(default_factory=list)
    # The account's numbers (E.164 → its sms_url) and status, for `rallypoint doctor`.
    numbers: dict[str, str] = field(default_factory=dict)
    account_status: str = "active"
    _scripts: dict[str, deque[Reply]] = field(default_factory=lambda: defaultdict(deque))
    _always: dict[str, Reply] = field(default_factory=dict)
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def script(self, to: str, *replies: Reply) -> None:
        """Answer the next sends to `to` (E.164, `whatsapp:` optional) with `replies`."""
        self._scripts[strip_whatsapp(to)].extend(replies)

    def always(self, to: str, reply: Reply) -> None:
        self._always[strip_whatsapp(to)] = reply

    @property
    def sent(self) -> list[SentMessage]:
        """The requests that created a message."""
        return [r for r in self.requests if r.sid is not None]

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.delay is not None:
            await self.delay(request)
        return self.handle(request)

    def add_media(self, content: bytes, content_type: str, message_sid: str = "") -> str:
        """Keep `content` as media of an inbound message; its MediaUrl."""
        n = len(self.media) + 1
        message_sid = message_sid or "MM" + hashlib.sha256(f"in:{n}".encode()).hexdigest()[:32]
        media_sid = "ME" + hashlib.sha256(f"media:{n}".encode()).hexdigest()[:32]
        self.media[hashlib.sha256(media_sid.encode()).hexdigest()] = (content, content_type)
        account = f"{self.api_base.rstrip('/')}/{API_VERSION}/Accounts/{self.account_sid}"
        return f"{account}/Messages/{message_sid}/Media/{media_sid}"

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path.endswith("/Messages.json"):
            self.list_requests.append(request)
            return self._list(request)
        account_path = f"/{API_VERSION}/Accounts/{self.account_sid}"
        if request.method == "GET" and request.url.path in (
            f"{account_path}.json",
            f"{account_path}/IncomingPhoneNumbers.json",
        ):
            return self._account(request)
        if request.method == "GET":
            self.media_requests.append(request)
            return self._media(request)
        form: dict[str, list[str]] = {}
        for name, value in parse_qsl(request.content.decode(), keep_blank_values=True):
            form.setdefault(name, []).append(value)
        expected = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages.json"
        if request.method != "POST" or request.url.path != expected:
            return self._record(request, form, _error(20404, 404, "resource not found"))
        if (
            request.headers.get("authorization")
            != httpx.BasicAuth(self.account_sid, self.auth_token)._auth_header
        ):
            return self._record(request, form, _error(20003, 401, "Authenticate"))
        to = strip_whatsapp((form.get("To") or [""])[0])
        queue = self._scripts.get(to)
        reply = queue.popleft() if queue else self._always.get(to, Reply.ok())
        if reply.kind == "network":
            self.requests.append(SentMessage(request, form, None))
            raise httpx.ConnectError("connection refused (fake)", request=request)
        if reply.kind == "timeout":
            self.requests.append(SentMessage(request, form, None))
            raise httpx.ReadTimeout("timed out (fake)", request=request)
        if reply.kind == "throttled":
            headers = {"Retry-After": reply.retry_after} if reply.retry_after else {}
            answer = _error(20429, 429, "Too Many Requests", headers)
        elif reply.kind == "server_error":
            answer = httpx.Response(reply.http_status, text="Service Unavailable")
        elif reply.kind == "error":
            answer = _error(reply.code or 0, reply.http_status, reply.message or "error")
        else:
            return self._created(request, form, reply)
        return self._record(request, form, answer)

    def add_number(self, phone_number: str, sms_url: str) -> None:
        """A number of this account, its 'A message comes in' webhook set to `sms_url`."""
        self.numbers[phone_number] = sms_url

    def _account(self, request: httpx.Request) -> httpx.Response:
        """GET the account (its status) or its IncomingPhoneNumbers (?PhoneNumber=)."""
        if request.headers.get("authorization") != self._expected_auth():
            return _error(20003, 401, "Authenticate")
        if request.url.path.endswith(f"{self.account_sid}.json"):
            return httpx.Response(
                200,
                json={
                    "sid": self.account_sid,
                    "friendly_name": "Rallypoint organizing",
                    "status": self.account_status,
                    "type": "Full",
                },
            )
        wanted = request.url.params.get("PhoneNumber")
        numbers = [
            {
                "sid": "PN" + hashlib.sha256(number.encode()).hexdigest()[:32],
                "phone_number": number,
                "sms_url": sms_url,
                "sms_method": "POST",
                "capabilities": {"sms": True, "mms": True, "voice": True},
            }
            for number, sms_url in self.numbers.items()
            if wanted in (None, number)
        ]
        return httpx.Response(200, json={"incoming_phone_numbers": numbers, "page": 0})

    def _media(self, request: httpx.Request) -> httpx.Response:
        cdn = httpx.URL(self.media_cdn)
        if request.url.host == cdn.host:
            if "authorization" in request.headers:
                return httpx.Response(400, text="Only one auth mechanism allowed")
            key = request.url.path.rsplit("/", 1)[-1]
            if key not in self.media:
                return httpx.Response(404, text="NoSuchKey")
            content, content_type = self.media[key]
            return httpx.Response(
                200, content=self._stream(content), headers={"Content-Type": content_type}
            )
        prefix = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/"
        path = request.url.path
        if not path.startswith(prefix) or "/Media/" not in path:
            return _error(20404, 404, "resource not found")
        if request.headers.get("authorization") != self._expected_auth():
            return _error(20003, 401, "Authenticate")
        key = hashlib.sha256(path.rsplit("/", 1)[-1].encode()).hexdigest()
        if key not in self.media:
            return _error(20404, 404, "resource not found")
        location = f"{self.media_cdn.rstrip('/')}/{self.account_sid}/{key}"
        return httpx.Response(307, headers={"Location": location})

    def _list(self, request: httpx.Request) -> httpx.Response:
        """GET Messages.json: the account's messages, newest first, filtered by `To` and
        `From` as Twilio does (exact match), one page of `PageSize` (default 50)."""
        if request.url.path != f"/{API_VERSION}/Accounts/{self.account_sid}/Messages.json":
            return _error(20404, 404, "resource not found")
        if request.headers.get("authorization") != self._expected_auth():
            return _error(20003, 401, "Authenticate")
        query = request.url.params
        page_size = int(query.get("PageSize", "50"))
        found = [
            m
            for m in reversed(self.created)
            if all(query.get(k) in (None, m[k.lower()]) for k in ("To", "From"))
        ]
        return httpx.Response(
            200,
            json={
                "messages": found[:page_size],
                "page": 0,
                "page_size": page_size,
                "next_page_uri": None,
                "uri": str(request.url.raw_path, "ascii"),
            },
        )

    async def _stream(self, content: bytes) -> AsyncIterator[bytes]:
        for start in range(0, len(content), MEDIA_CHUNK):
            chunk = content[start : start + MEDIA_CHUNK]
            self.media_served += len(chunk)
            yield chunk

    def _record(
        self,
        request: httpx.Request,
        form: dict[str, list[str]],
        answer: httpx.Response,
        sid: str | None = None,
    ) -> httpx.Response:
        self.requests.append(SentMessage(request, form, sid))
        return answer

    def _expected_auth(self) -> str:
        pair = f"{self.account_sid}:{self.auth_token}".encode()
        return "Basic " + base64.b64encode(pair).decode()

    def _created(
        self, request: httpx.Request, form: dict[str, list[str]], reply: Reply
    ) -> httpx.Response:
        n = next(self._counter)
        sid = "SM" + hashlib.sha256(f"{self.account_sid}:{n}".encode()).hexdigest()[:32]
        body = (form.get("Body") or [""])[0]
        media = form.get("MediaUrl") or []
        now = format_datetime(self.clock(), usegmt=True)
        resource = {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": _first(form, "From"),
            "messaging_service_sid": _first(form, "MessagingServiceSid"),
            "num_media": str(len(media)),
            "num_segments": str(_segments(body)),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": reply.status,
            "subresource_uris": {
                "media": f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}/Media.json"
            },
            "to": (form.get("To") or [""])[0],
            "uri": f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}.json",
        }
        self.created.append(resource)
        return self._record(request, form, httpx.Response(201, json=resource), sid)

    # Helpers for end-to-end tests: the callback Twilio would post for a sent message.

    def status_callback(
        self, sid: str, status: str, error_code: int | None = None, error_message: str = ""
    ) -> tuple[str, dict[str, str], dict[str, str]]:
        """(url, form, headers) of the signed StatusCallback Twilio would post for `sid`."""
        sent = next(r for r in self.requests if r.sid == sid)
        url = sent.get("StatusCallback")
        assert url, "that message was sent without a StatusCallback"
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "From": sent.get("From") or sent.get("MessagingServiceSid") or "",
            "MessageSid": sid,
            "MessageStatus": status,
            "SmsSid": sid,
            "SmsStatus": status,
            "To": sent.get("To") or "",
        }
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
            params["ErrorMessage"] = error_message or f"error {error_code}"
        return url, params, {"X-Twilio-Signature": self.sign(url, params)}

    def inbound(
        self, url: str, sender: str, to: str, body: str
    ) -> tuple[dict[str, str], dict[str, str]]:
        """(form, headers) of the signed webhook Twilio would post to `url` for a message
        from `sender` to our number `to` (both E.164, or `whatsapp:+…` for WhatsApp)."""
        sid = "SM" + secrets.token_hex(16)
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "Body": body,
            "From": sender,
            "MessageSid": sid,
            "NumMedia": "0",
            "NumSegments": str(_segments(body)),
            "SmsMessageSid": sid,
            "SmsSid": sid,
            "SmsStatus": "received",
            "To": to,
        }
        if sender.startswith("whatsapp:"):
            params["WaId"] = strip_whatsapp(sender).lstrip("+")
        return params, {"X-Twilio-Signature": self.sign(url, params)}

    def sign(self, url: str, params: dict[str, str]) -> str:
        signature: str = RequestValidator(self.auth_token).compute_signature(url, params)
        return signature


def _error(
    code: int, status: int, message: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    payload = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return httpx.Response(
        status,
        content=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def _first(form: dict[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None


def _segments(body: str) -> int:
    # Close enough for a fake: GSM-7 sizes, ignoring the extension table and UCS-2.
    return 1 if len(body) <= 160 else -(-len(body) // 153)

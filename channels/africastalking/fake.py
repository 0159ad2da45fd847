"""An in-process fake of Africa's Talking's messaging API, for tests, demos and benchmarks.

    fake = FakeAfricasTalking(username, api_key)
    client = httpx.AsyncClient(transport=httpx.MockTransport(fake))
    fake.script("+254712345678", Reply.recipient(406))  # next send: UserInBlacklist
    fake.always("+254712345679", Reply.http(500))        # every send: a 500

It checks the path, the `apiKey` header and the `username` field as Africa's Talking
does, answers XML unless asked for JSON (`Accept: application/json`), records every
request, and answers with real-shaped JSON (`ATXid_` + 32 hex). `delay` is an optional
async hook awaited before each answer, so benchmarks can model latency.

For end-to-end tests it also writes the callbacks Africa's Talking would post:
`inbound_form` (an incoming SMS) and `delivery_form` (a delivery report for a message it
accepted).
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import httpx

from channels.africastalking.codes import RECIPIENT_NAMES

PATH = "/version1/messaging"
AUTH_ERROR = "The supplied authentication is invalid"
COST = "KES 0.8000"


@dataclass(frozen=True)
class Reply:
    """A scripted answer: "ok" (201, the recipient's statusCode `code`), "no_recipients"
    (201, no recipient, `message` says why), "http" (status `http_status`, plain text),
    "throttled" (429), "network" (the connection fails) or "timeout" (no answer in
    time)."""

    kind: str = "ok"
    code: int = 101
    http_status: int = 201
    message: str = ""
    retry_after: str | None = None

    @classmethod
    def ok(cls, code: int = 101) -> Reply:
        return cls("ok", code=code)

    @classmethod
    def recipient(cls, code: int) -> Reply:
        """The send is answered 201, but this recipient's statusCode is `code`."""
        return cls("ok", code=code)

    @classmethod
    def no_recipients(cls, message: str) -> Reply:
        return cls("no_recipients", message=message)

    @classmethod
    def http(cls, http_status: int, message: str = "") -> Reply:
        return cls("http", http_status=http_status, message=message)

    @classmethod
    def throttled(cls, retry_after: float | str | None = None) -> Reply:
        value = None if retry_after is None else str(retry_after)
        return cls("throttled", http_status=429, retry_after=value)

    @classmethod
    def network(cls) -> Reply:
        return cls("network")

    @classmethod
    def timeout(cls) -> Reply:
        return cls("timeout")


@dataclass(frozen=True)
class SentSMS:
    """One request the fake received, its form decoded; `message_id` when accepted."""

    request: httpx.Request
    form: dict[str, str]
    message_id: str | None

    def get(self, name: str) -> str | None:
        return self.form.get(name)


@dataclass
class FakeAfricasTalking:
    username: str
    api_key: str
    delay: Callable[[httpx.Request], Awaitable[None]] | None = None
    requests: list[SentSMS] = field(default_factory=list)
    _scripts: dict[str, deque[Reply]] = field(default_factory=lambda: defaultdict(deque))
    _always: dict[str, Reply] = field(default_factory=dict)
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def script(self, to: str, *replies: Reply) -> None:
        """Answer the next sends to `to` (E.164) with `replies`, then normally."""
        self._scripts[to].extend(replies)

    def always(self, to: str, reply: Reply) -> None:
        self._always[to] = reply

    @property
    def sent(self) -> list[SentSMS]:
        """The requests whose message was accepted."""
        return [r for r in self.requests if r.message_id is not None]

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.delay is not None:
            await self.delay(request)
        return self.handle(request)

    def handle(self, request: httpx.Request) -> httpx.Response:
        form = dict(parse_qsl(request.content.decode(), keep_blank_values=True))
        if request.method != "POST" or request.url.path != PATH:
            return self._record(request, form, httpx.Response(404, text="Not Found"))
        if request.headers.get("apikey") != self.api_key or form.get("username") != self.username:
            return self._record(request, form, httpx.Response(401, text=AUTH_ERROR))
        to = form.get("to", "")
        if not to or "message" not in form:
            return self._record(request, form, httpx.Response(400, text="Missing to or message"))
        queue = self._scripts.get(to)
        reply = queue.popleft() if queue else self._always.get(to, Reply.ok())
        if reply.kind == "network":
            self.requests.append(SentSMS(request, form, None))
            raise httpx.ConnectError("connection refused (fake)", request=request)
        if reply.kind == "timeout":
            self.requests.append(SentSMS(request, form, None))
            raise httpx.ReadTimeout("timed out (fake)", request=request)
        if reply.kind == "throttled":
            headers = {"Retry-After": reply.retry_after} if reply.retry_after else {}
            answer = httpx.Response(429, text="Too Many Requests", headers=headers)
            return self._record(request, form, answer)
        if reply.kind == "http":
            text = reply.message or ("Internal Server Error" if reply.http_status >= 500 else "")
            return self._record(request, form, httpx.Response(reply.http_status, text=text))
        if reply.kind == "no_recipients":
            data = {"SMSMessageData": {"Message": reply.message, "Recipients": []}}
            return self._record(request, form, self._answer(request, data))
        return self._recipient(request, form, to, reply.code)

    def _recipient(
        self, request: httpx.Request, form: dict[str, str], to: str, code: int
    ) -> httpx.Response:
        accepted = 100 <= code <= 102
        message_id = None
        if accepted:
            n = next(self._counter)
            message_id = "ATXid_" + hashlib.sha256(f"{self.username}:{n}".encode()).hexdigest()[:32]
        recipient = {
            "statusCode": code,
            "number": to,
            "status": "Success" if accepted else RECIPIENT_NAMES.get(code, "Failed"),
            "cost": COST if accepted else "0",
            "messageId": message_id or "None",
        }
        summary = f"Sent to 1/1 Total Cost: {COST}" if accepted else "Sent to 0/1 Total Cost: 0"
        data = {"SMSMessageData": {"Message": summary, "Recipients": [recipient]}}
        return self._record(request, form, self._answer(request, data), message_id)

    @staticmethod
    def _answer(request: httpx.Request, data: Mapping[str, object]) -> httpx.Response:
        if request.headers.get("accept") != "application/json":
            # Without the header Africa's Talking answers XML.
            return httpx.Response(201, text="<AfricasTalkingResponse/>")
        return httpx.Response(201, json=data)

    def _record(
        self,
        request: httpx.Request,
        form: dict[str, str],
        answer: httpx.Response,
        message_id: str | None = None,
    ) -> httpx.Response:
        self.requests.append(SentSMS(request, form, message_id))
        return answer

    # The callbacks Africa's Talking would post, for end-to-end tests.

    def inbound_form(
        self, sender: str, to: str, text: str, message_id: str | None = None
    ) -> dict[str, str]:
        """An incoming SMS from `sender` to our short code or number `to`."""
        return {
            "date": "2026-03-04 15:00:00",
            "from": sender,
            "id": message_id or secrets.token_hex(16),
            "linkId": secrets.token_hex(8),
            "networkCode": "63902",
            "text": text,
            "to": to,
        }

    def delivery_form(
        self, message_id: str, status: str, failure_reason: str | None = None
    ) -> dict[str, str]:
        """The delivery report for a message this fake accepted."""
        sent = next(r for r in self.requests if r.message_id == message_id)
        form = {
            "id": message_id,
            "networkCode": "63902",
            "phoneNumber": sent.get("to") or "",
            "retryCount": "0",
            "status": status,
        }
        if failure_reason:
            form["failureReason"] = failure_reason
        return form

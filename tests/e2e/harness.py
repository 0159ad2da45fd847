"""A small organization for end-to-end tests: the app over ASGI with Twilio (SMS and
WhatsApp), optionally the WhatsApp Cloud API, and Telegram configured, every provider
answered by its own fake on one transport routed by host. Inbound webhooks are signed as
the providers sign them; the dispatcher runs on a virtual clock, so nothing sleeps."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from channels.telegram.fake import FakeTelegramApi
from channels.twilio.fake import FakeTwilio
from channels.whatsapp_cloud.fake import FakeWhatsAppCloud
from routing.context import AppContext
from routing.dispatch.dispatcher import Dispatcher
from routing.dispatch.ratelimit import RateLimits
from tests.channels import telegram_case, twilio_case, whatsapp_cloud_case
from tests.channels.contract import SignedRequest
from tests.conftest import FakeClock, bearer, new_key

MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]

TWILIO_HOST = httpx.URL(twilio_case.API_BASE).host
CLOUD_HOST = httpx.URL(whatsapp_cloud_case.API_BASE).host
TELEGRAM_BASE = "https://api.telegram.test"
TELEGRAM_HOST = httpx.URL(TELEGRAM_BASE).host


class VirtualTime:
    """A monotonic clock for the dispatcher's rate limits: sleeping moves it, instantly."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


@dataclass
class Providers:
    """The provider fakes, behind one transport that routes by host."""

    twilio: FakeTwilio = field(
        default_factory=lambda: FakeTwilio(
            twilio_case.ACCOUNT_SID, twilio_case.AUTH_TOKEN, api_base=twilio_case.API_BASE
        )
    )
    cloud: FakeWhatsAppCloud = field(
        default_factory=lambda: FakeWhatsAppCloud(
            access_token=whatsapp_cloud_case.ACCESS_TOKEN,
            phone_number_id=whatsapp_cloud_case.PHONE_NUMBER_ID,
            app_secret=whatsapp_cloud_case.APP_SECRET,
            api_base=whatsapp_cloud_case.API_BASE,
        )
    )
    telegram: FakeTelegramApi = field(
        default_factory=lambda: FakeTelegramApi(token=telegram_case.TOKEN)
    )
    unrouted: list[httpx.Request] = field(default_factory=list)

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if host in (TWILIO_HOST, httpx.URL(self.twilio.media_cdn).host):
            return await self.twilio(request)
        if host in (CLOUD_HOST, self.cloud.media_host):
            return self.cloud(request)
        if host == TELEGRAM_HOST:
            return self.telegram.handler(request)
        self.unrouted.append(request)
        return httpx.Response(599, text="no such provider in the test")

    # What each provider was asked to send, by recipient.
    def sms_to(self, phone: str) -> list[str]:
        return [
            m.get("Body") or ""
            for m in self.twilio.sent
            if m.get("To") == phone and m.get("From") == twilio_case.SMS_FROM
        ]

    def twilio_whatsapp_to(self, phone: str) -> list[str]:
        return [m.get("Body") or "" for m in self.twilio.sent if m.get("To") == f"whatsapp:{phone}"]

    def cloud_whatsapp_to(self, phone: str) -> list[str]:
        return [
            str(r.json.get("text", {}).get("body", ""))
            for r in self.cloud.accepted
            if r.json.get("to") == phone.lstrip("+")
        ]

    def telegram_to(self, chat_id: str | int) -> list[str]:
        return list(self.telegram.sent.get(str(chat_id), []))

    def requests_made(self) -> int:
        """Every send request any provider received (accepted or not)."""
        sends = [c for c in self.telegram.calls if c.method != "getMe"]
        return len(self.twilio.requests) + len(self.cloud.requests) + len(sends)


def settings_for(*, cloud_whatsapp: bool = False, **overrides: Any) -> dict[str, Any]:
    """Settings enabling Twilio SMS + Twilio WhatsApp (or the Cloud API) + Telegram."""
    values: dict[str, Any] = {
        **twilio_case.SETTINGS,
        **telegram_case.SETTINGS,
        "telegram_api_base": TELEGRAM_BASE,
        # The default stays Twilio's own STOP handling; tests that need our confirmation
        # override it.
    }
    if cloud_whatsapp:
        values.update(whatsapp_cloud_case.SETTINGS)
    values.update(overrides)
    return values


class Org:
    """The running app, its provider fakes, an admin client and signed-webhook helpers."""

    def __init__(self, client: httpx.AsyncClient, providers: Providers, clock: FakeClock) -> None:
        self.client = client
        self.providers = providers
        self.clock = clock
        self.ctx: AppContext = client.ctx  # type: ignore[attr-defined]
        self.time = VirtualTime()
        self._ids = itertools.count(1)

    @classmethod
    async def start(cls, make_client: MakeClient, clock: FakeClock, **settings: Any) -> Org:
        providers = Providers()
        client = await make_client(
            transport=httpx.MockTransport(providers), **settings_for(**settings)
        )
        org = cls(client, providers, clock)
        client.headers.update(bearer(await new_key(org.ctx)))
        return org

    async def key_for(self, role: str, team_id: int | None = None) -> dict[str, str]:
        return bearer(await new_key(self.ctx, role, team_id))

    # -- the API ----------------------------------------------------------------
    async def api(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        answer = await self.client.request(method, "/api/v1" + path, **kwargs)
        assert answer.status_code == expect, f"{method} {path}: {answer.status_code} {answer.text}"
        return answer.json() if answer.content else None

    async def team(self, name: str, **fields: Any) -> dict[str, Any]:
        created: dict[str, Any] = await self.api(
            "POST", "/teams", 201, json={"name": name, **fields}
        )
        return created

    async def supporter(self, **fields: Any) -> dict[str, Any]:
        created: dict[str, Any] = await self.api("POST", "/supporters", 201, json=fields)
        return created

    async def announce(
        self, body: str, audience: dict[str, Any], expect: int = 202, **kwargs: Any
    ) -> Any:
        return await self.api(
            "POST", "/announcements", expect, json={"body": body, "audience": audience}, **kwargs
        )

    # -- inbound, signed as each provider signs ---------------------------------
    async def deliver(self, request: SignedRequest) -> None:
        answer = await self.client.request(
            request.method, request.path, headers=request.headers, content=request.content
        )
        assert answer.status_code == 200, answer.text

    async def sms(self, phone: str, body: str) -> None:
        sid = f"SM{next(self._ids):032x}"
        await self.deliver(twilio_case.signed_post(twilio_case.sms_form(sid, phone, body)))

    async def twilio_whatsapp(self, phone: str, body: str, profile: str = "Amina W.") -> None:
        params = twilio_case.form("inbound_whatsapp.json")
        sid = f"SM{next(self._ids):032x}"
        params.update(
            MessageSid=sid,
            SmsMessageSid=sid,
            SmsSid=sid,
            From=f"whatsapp:{phone}",
            WaId=phone.lstrip("+"),
            ProfileName=profile,
            Body=body,
        )
        await self.deliver(twilio_case.signed_post(params))

    async def cloud_whatsapp(self, phone: str, body: str, name: str = "Amina W.") -> None:
        wamid = f"wamid.HBgLE2E{next(self._ids):020d}"
        notification = whatsapp_cloud_case.text_notification(wamid, phone.lstrip("+"), body, name)
        await self.deliver(whatsapp_cloud_case.signed_post(notification))

    async def telegram(self, chat_id: int, body: str) -> None:
        update = telegram_case.text_update(1000 + next(self._ids), chat_id, body)
        await self.deliver(telegram_case.post(update))

    # -- the dispatcher ---------------------------------------------------------
    async def dispatch(self) -> int:
        """Send everything due now, as the worker would; the number of rows processed."""
        limits = RateLimits(clock=self.time, sleep=self.time.sleep)
        return await Dispatcher(self.ctx, limits=limits).run_until_idle(max_rounds=50)

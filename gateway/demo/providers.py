"""The demo's providers: the in-repo fakes of Twilio (SMS), the WhatsApp Cloud API and
the Telegram Bot API on loopback ports, a capturing SMTP server for outbound email, and
fresh credentials for each; `settings_for` points the app at them."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from channels.email.fake import FakeSmtpServer, free_port
from channels.telegram.fake import FakeTelegramApi
from channels.twilio.fake import FakeTwilio
from channels.whatsapp_cloud.fake import FakeWhatsAppCloud
from gateway.demo.loopback import LoopbackServer
from gateway.demo.transcript import Transcript
from gateway.settings import Settings

SMS_FROM = "+15005550006"
ORG_EMAIL = "organizers@demo.rallypoint.invalid"
WHATSAPP_VERSION = "/v21.0"


@dataclass(frozen=True)
class Credentials:
    """Made up at every start: the demo never holds a real provider's secret."""

    twilio_sid: str = field(default_factory=lambda: "AC" + secrets.token_hex(16))
    twilio_token: str = field(default_factory=lambda: secrets.token_hex(16))
    whatsapp_token: str = field(default_factory=lambda: "EAA" + secrets.token_urlsafe(24))
    whatsapp_phone_id: str = field(default_factory=lambda: str(10**14 + secrets.randbelow(10**14)))
    whatsapp_secret: str = field(default_factory=lambda: secrets.token_hex(16))
    whatsapp_verify: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    telegram_token: str = field(
        default_factory=lambda: f"{secrets.randbelow(10**9)}:{secrets.token_urlsafe(26)}"
    )
    telegram_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))


def reachable(host: str) -> str:
    """Where this machine reaches a server listening on `host` (the demo calls itself)."""
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 (a comparison, nothing is bound here)
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


class DemoProviders:
    """The fakes, their loopback servers and what each supporter was sent (`transcript`)."""

    def __init__(self) -> None:
        self.credentials = creds = Credentials()
        self.transcript = Transcript()
        self.twilio = FakeTwilio(creds.twilio_sid, creds.twilio_token)
        self.whatsapp = FakeWhatsAppCloud(
            access_token=creds.whatsapp_token,
            phone_number_id=creds.whatsapp_phone_id,
            app_secret=creds.whatsapp_secret,
        )
        self.telegram = FakeTelegramApi(token=creds.telegram_token)
        self.smtp = FakeSmtpServer()
        self.inbound_smtp_port = free_port()
        self.servers = [
            LoopbackServer("twilio", self.twilio, self.observe),
            LoopbackServer("whatsapp", self.whatsapp, self.observe),
            LoopbackServer("telegram", self.telegram.handler, self.observe),
        ]
        twilio_server, whatsapp_server, _ = self.servers
        self.twilio.api_base = twilio_server.base_url
        self.whatsapp.api_base = whatsapp_server.base_url + WHATSAPP_VERSION

    async def start(self) -> None:
        self.smtp.start()
        for server in self.servers:
            await server.start()

    async def stop(self) -> None:
        for server in self.servers:
            await server.stop()
        self.smtp.stop()

    def observe(self) -> None:
        """Add to the transcript whatever the fakes were asked to send since last time."""
        self.transcript.observe(self.twilio, self.whatsapp, self.telegram, self.smtp)

    def settings_for(self, base: Settings, *, database_url: str, port: int) -> Settings:
        """`base` with every channel pointed at these fakes, its own database, and the
        public URL the demo's own webhooks are signed over."""
        creds = self.credentials
        twilio_server, whatsapp_server, telegram_server = self.servers
        overrides: dict[str, Any] = {
            "database_url": database_url,
            "port": port,
            "public_url": f"http://{reachable(base.host)}:{port}",
            "bootstrap_admin_key": None,
            "run_dispatcher": True,
            # Every kind of message goes at once, whatever the hour where supporters live.
            "quiet_hours_start": "00:00",
            "quiet_hours_end": "00:00",
            # The fake is not Twilio: our own STOP confirmation is what the supporter sees.
            "twilio_handles_opt_out": False,
            "twilio_account_sid": creds.twilio_sid,
            "twilio_auth_token": creds.twilio_token,
            "twilio_sms_from": SMS_FROM,
            "twilio_messaging_service_sid": None,
            "twilio_whatsapp_from": None,
            "twilio_api_base": twilio_server.base_url,
            "twilio_rate_per_second": 20.0,
            "whatsapp_access_token": creds.whatsapp_token,
            "whatsapp_phone_number_id": creds.whatsapp_phone_id,
            "whatsapp_app_secret": creds.whatsapp_secret,
            "whatsapp_verify_token": creds.whatsapp_verify,
            "whatsapp_api_base": whatsapp_server.base_url + WHATSAPP_VERSION,
            "telegram_bot_token": creds.telegram_token,
            "telegram_webhook_secret": creds.telegram_secret,
            "telegram_api_base": telegram_server.base_url,
            "telegram_bot_username": "rallypoint_demo_bot",
            "smtp_host": self.smtp.host,
            "smtp_port": self.smtp.port,
            "smtp_username": None,
            "smtp_password": None,
            "smtp_from": ORG_EMAIL,
            "smtp_starttls": False,
            "inbound_smtp_host": "127.0.0.1",
            "inbound_smtp_port": self.inbound_smtp_port,
            "inbound_smtp_tls_cert": None,
            "inbound_smtp_tls_key": None,
            "inbound_smtp_require_tls": False,
            "inbound_email_domains": [],
            "inbound_smtp_sender_auth": "off",
        }
        return base.model_copy(update=overrides)

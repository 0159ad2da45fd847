"""Play a supporter: send what they type to the app exactly as their provider would (a
signed webhook to the app's own endpoint over HTTP, or mail to its SMTP listener)."""

from __future__ import annotations

import re
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from urllib.parse import urlencode

import aiosmtplib
import httpx

from gateway.demo.providers import ORG_EMAIL, SMS_FROM, DemoProviders
from gateway.settings import Settings

CHANNELS = ("sms", "whatsapp", "telegram", "email")
PHONE = re.compile(r"\+[1-9][0-9]{7,14}")
CHAT_ID = re.compile(r"[1-9][0-9]{0,14}")
EMAIL = re.compile(r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+")
TIMEOUT = 15.0


class SimulationFailed(Exception):
    """The app refused or did not take what the simulator sent (the message says why)."""


def check_address(channel: str, address: str) -> str:
    """The address cleaned for `channel`; ValueError with a sentence for people."""
    text = address.strip()
    if channel in ("sms", "whatsapp"):
        text = re.sub(r"[\s().-]", "", text)
        if not PHONE.fullmatch(text):
            raise ValueError("Give a phone number in international form, e.g. +15555550123.")
        return text
    if channel == "telegram":
        if not CHAT_ID.fullmatch(text):
            raise ValueError("A Telegram chat id is a number, e.g. 5550123.")
        return text
    if channel == "email":
        if not EMAIL.fullmatch(text):
            raise ValueError("Give an email address, e.g. ana@example.org.")
        return text.lower()
    raise ValueError("Choose SMS, WhatsApp, Telegram or email.")


class Simulator:
    """Sends as a supporter; `providers.transcript` records it and what comes back."""

    def __init__(self, providers: DemoProviders, settings: Settings) -> None:
        self.providers = providers
        self.settings = settings
        # The app's own endpoints, at the public URL the webhooks are signed over.
        self.client = httpx.AsyncClient(
            base_url=settings.public_url, timeout=TIMEOUT, trust_env=False
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def send(self, channel: str, address: str, text: str, name: str = "") -> None:
        """Deliver `text` from `address` on `channel`; SimulationFailed if refused."""
        address = check_address(channel, address)
        name = name.strip() or "Supporter"
        if channel == "email":
            await self._mail(address, text, name)
        else:
            path, content, headers = self._webhook(channel, address, text, name)
            try:
                answer = await self.client.post(path, content=content, headers=headers)
            except httpx.HTTPError as exc:
                raise SimulationFailed(f"the app did not answer ({type(exc).__name__})") from exc
            if answer.status_code != 200:
                raise SimulationFailed(f"the webhook was refused ({answer.status_code})")
        self.providers.transcript.add("in", channel, address, text)
        self.providers.observe()

    def _webhook(
        self, channel: str, address: str, text: str, name: str
    ) -> tuple[str, bytes, dict[str, str]]:
        providers = self.providers
        if channel == "sms":
            path = "/webhooks/twilio"
            url = self.settings.public_url + path
            form, headers = providers.twilio.inbound(url, address, SMS_FROM, text)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            return path, urlencode(form).encode(), headers
        if channel == "whatsapp":
            body, headers = providers.whatsapp.inbound_text(address.lstrip("+"), text, name)
            return "/webhooks/whatsapp", body, headers
        secret = providers.credentials.telegram_secret
        body, headers = providers.telegram.text_update(int(address), text, name, secret)
        return "/webhooks/telegram", body, headers

    async def _mail(self, address: str, text: str, name: str) -> None:
        message = EmailMessage()
        message["From"] = formataddr((name, address))
        message["To"] = ORG_EMAIL
        message["Subject"] = "Message"
        message["Message-ID"] = make_msgid(domain=address.rsplit("@", 1)[1])
        message.set_content(text)
        try:
            await aiosmtplib.send(
                message,
                hostname="127.0.0.1",
                port=self.providers.inbound_smtp_port,
                start_tls=False,
                use_tls=False,
                timeout=TIMEOUT,
            )
        except aiosmtplib.SMTPException as exc:
            raise SimulationFailed("the mail was refused") from exc

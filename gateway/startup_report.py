"""The start-up lines: which channels are on, and the URL to paste into each provider's
console. Never a secret: a path that holds one shows a placeholder naming its variable."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from channels.registry import Registry
from gateway.settings import Settings

log = logging.getLogger("rallypoint")

# provider → (where it goes in the provider's console, path under RALLYPOINT_PUBLIC_URL).
WEBHOOK_URLS: dict[str, tuple[tuple[str, str], ...]] = {
    "twilio": (
        ("Twilio number, 'A message comes in' (SMS and WhatsApp senders)", "/webhooks/twilio"),
        (
            "Twilio status callback (sent with each message, nothing to paste)",
            "/webhooks/twilio/status",
        ),
    ),
    "whatsapp": (
        (
            "Meta app, WhatsApp > Configuration > Callback URL (verify token: "
            "WHATSAPP_VERIFY_TOKEN; subscribe to 'messages')",
            "/webhooks/whatsapp",
        ),
    ),
    "telegram": (
        ("Telegram webhook (run `rallypoint telegram set-webhook`)", "/webhooks/telegram"),
    ),
    "africastalking": (
        (
            "Africa's Talking SMS callback URL",
            "/webhooks/africastalking/<AFRICASTALKING_WEBHOOK_SECRET>",
        ),
        (
            "Africa's Talking delivery reports URL",
            "/webhooks/africastalking/<AFRICASTALKING_WEBHOOK_SECRET>/delivery",
        ),
    ),
}


def provider_urls(settings: Settings, registry: Registry) -> list[tuple[str, str, str]]:
    """(provider, where it goes, URL) for each provider that is on."""
    base = settings.public_url.rstrip("/")
    return [
        (provider, where, base + path)
        for provider in sorted(registry.by_provider)
        for where, path in WEBHOOK_URLS.get(provider, ())
    ]


def startup_lines(settings: Settings, registry: Registry) -> list[str]:
    channels = sorted(registry.enabled_channels)
    lines = [f"channels on: {', '.join(channels) if channels else 'none (no credentials set)'}"]
    base = settings.public_url.rstrip("/")
    for provider, where, url in provider_urls(settings, registry):
        lines.append(f"{provider}: {where}: {url}")
    if "email" in registry.by_provider:
        if settings.inbound_smtp_port:
            domains = ", ".join(settings.email_domains) or "(set RALLYPOINT_INBOUND_EMAIL_DOMAINS)"
            lines.append(
                f"email: MX of {domains} to this host, SMTP port {settings.inbound_smtp_port}"
            )
        else:
            lines.append("email: sending only (RALLYPOINT_INBOUND_SMTP_PORT unset: no replies)")
    if registry.by_provider and urlsplit(base).scheme != "https":
        lines.append(f"RALLYPOINT_PUBLIC_URL is {base}: providers need a public https URL")
    return lines


def log_startup(settings: Settings, registry: Registry) -> None:
    for line in startup_lines(settings, registry):
        log.info("%s", line)

"""Each provider's config, built from the settings: a provider is on when its required
credentials are set (CONTRACT.md, "Configuration")."""

from __future__ import annotations

import re

from channels.africastalking import AfricasTalkingConfig
from channels.email import EmailConfig
from channels.registry import ChannelConfigs
from channels.signal import SignalConfig
from channels.telegram import TelegramConfig
from channels.twilio import TwilioConfig
from channels.whatsapp_cloud import WhatsAppCloudConfig
from gateway.settings import Settings


def twilio_config(settings: Settings) -> TwilioConfig | None:
    if not (settings.twilio_account_sid and settings.twilio_auth_token):
        return None
    return TwilioConfig(
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token,
        sms_from=settings.twilio_sms_from or None,
        messaging_service_sid=settings.twilio_messaging_service_sid or None,
        whatsapp_from=settings.twilio_whatsapp_from or None,
        api_base=settings.twilio_api_base,
        status_callback_url=settings.public_url.rstrip("/") + "/webhooks/twilio/status",
        rate_per_second=settings.twilio_rate_per_second,
    )


# URL-safe, so the path segment reaches us as written; long enough not to be guessed.
CALLBACK_SECRET = re.compile(r"[A-Za-z0-9_-]{16,200}")


def africastalking_config(settings: Settings) -> AfricasTalkingConfig | None:
    if not (
        settings.africastalking_username
        and settings.africastalking_api_key
        and settings.africastalking_callback_secret
    ):
        return None
    if not CALLBACK_SECRET.fullmatch(settings.africastalking_callback_secret):
        # Not pydantic's error: that would print the value.
        raise ValueError(
            "AFRICASTALKING_CALLBACK_SECRET must be 16 to 200 letters, digits, - or _ (it "
            "goes in the callback URL's path), e.g. the output of "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return AfricasTalkingConfig(
        username=settings.africastalking_username,
        api_key=settings.africastalking_api_key,
        callback_secret=settings.africastalking_callback_secret,
        sender_id=settings.africastalking_sender_id or None,
        api_base=settings.africastalking_api_base,
        rate_per_second=settings.africastalking_rate_per_second,
    )


def whatsapp_cloud_config(settings: Settings) -> WhatsAppCloudConfig | None:
    if not (
        settings.whatsapp_access_token
        and settings.whatsapp_phone_number_id
        and settings.whatsapp_app_secret
        and settings.whatsapp_verify_token
    ):
        return None
    return WhatsAppCloudConfig(
        access_token=settings.whatsapp_access_token,
        phone_number_id=settings.whatsapp_phone_number_id,
        app_secret=settings.whatsapp_app_secret,
        verify_token=settings.whatsapp_verify_token,
        api_base=settings.whatsapp_api_base,
        rate_per_second=settings.whatsapp_rate_per_second,
    )


def email_config(settings: Settings) -> EmailConfig | None:
    if not (settings.smtp_host and settings.smtp_from):
        return None
    return EmailConfig(
        host=settings.smtp_host,
        port=settings.smtp_port,
        sender=settings.smtp_from,
        username=settings.smtp_username,
        password=settings.smtp_password,
        starttls=settings.smtp_starttls,
        default_subject=f"Message from {settings.org_name}",
        rate_per_second=settings.smtp_rate_per_second,
    )


def telegram_config(settings: Settings) -> TelegramConfig | None:
    if not (settings.telegram_bot_token and settings.telegram_webhook_secret):
        return None
    return TelegramConfig(
        token=settings.telegram_bot_token,
        webhook_secret=settings.telegram_webhook_secret,
        api_base=settings.telegram_api_base,
        rate_per_second=settings.telegram_rate_per_second,
    )


def signal_config(settings: Settings) -> SignalConfig | None:
    if not (settings.signal_api_base and settings.signal_number):
        return None
    return SignalConfig(
        api_base=settings.signal_api_base,
        number=settings.signal_number,
        receive_mode=settings.signal_receive_mode,
        poll_seconds=settings.signal_poll_seconds,
        rate_per_second=settings.signal_rate_per_second,
    )


def channel_configs(settings: Settings) -> ChannelConfigs:
    return ChannelConfigs(
        africastalking=africastalking_config(settings),
        twilio=twilio_config(settings),
        whatsapp_cloud=whatsapp_cloud_config(settings),
        email=email_config(settings),
        telegram=telegram_config(settings),
        signal=signal_config(settings),
    )

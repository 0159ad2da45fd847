"""The explicit list of adapters: adding a provider is one folder, one line here.

Each provider folder exports its config (`XConfig`) and `build_adapter(config,
http_client)`; a provider is on exactly when its config is given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, cast

import httpx

from channels.base import Channel, ChannelAdapter

# The providers that can send SMS, by the names RALLYPOINT_SMS_ROUTES gives them.
SMS_PROVIDERS = ("twilio", "africastalking")

if TYPE_CHECKING:
    from channels.africastalking import AfricasTalkingConfig
    from channels.email import EmailConfig
    from channels.signal import SignalConfig
    from channels.telegram import TelegramConfig
    from channels.twilio import TwilioConfig
    from channels.whatsapp_cloud import WhatsAppCloudConfig


@dataclass(frozen=True)
class ChannelConfigs:
    """One optional config per provider: None leaves that provider off.

    Field order matters: for a channel two providers serve, the later one sends, so the
    WhatsApp Cloud API comes after Twilio (whose WhatsApp it replaces). SMS is the
    exception: RALLYPOINT_SMS_ROUTES picks its provider per number (routing/sms_routes.py);
    the later one (Twilio) is only where a route leads nowhere.
    """

    africastalking: AfricasTalkingConfig | None = None
    twilio: TwilioConfig | None = None
    whatsapp_cloud: WhatsAppCloudConfig | None = None
    email: EmailConfig | None = None
    telegram: TelegramConfig | None = None
    signal: SignalConfig | None = None


def _factory(provider: str) -> Callable[[Any, httpx.AsyncClient], ChannelAdapter]:
    # Imported here so that a provider's SDK loads only when that provider is on.
    if provider == "africastalking":
        from channels.africastalking import build_adapter as africastalking

        return africastalking
    if provider == "twilio":
        from channels.twilio import build_adapter as twilio

        return twilio
    if provider == "whatsapp_cloud":
        from channels.whatsapp_cloud import build_adapter as whatsapp_cloud

        return whatsapp_cloud
    if provider == "email":
        from channels.email import build_adapter as email

        return email
    if provider == "telegram":
        from channels.telegram import build_adapter as telegram

        return telegram
    if provider == "signal":
        from channels.signal import build_adapter as signal

        return signal
    raise KeyError(provider)


@dataclass
class Registry:
    """The enabled adapters, by webhook provider name and by sending channel."""

    by_provider: dict[str, ChannelAdapter] = field(default_factory=dict)
    by_channel: dict[Channel, ChannelAdapter] = field(default_factory=dict)

    def add(self, adapter: ChannelAdapter) -> None:
        self.by_provider[adapter.provider] = adapter
        for channel in adapter.channels:
            self.by_channel[channel] = adapter

    def for_channel(self, channel: str) -> ChannelAdapter | None:
        # A str that is no Channel finds nothing, which is the answer for it.
        return self.by_channel.get(cast(Channel, channel))

    @property
    def enabled_channels(self) -> frozenset[str]:
        return frozenset(self.by_channel)

    async def aclose(self) -> None:
        for adapter in self.by_provider.values():
            await adapter.aclose()


def build_registry(configs: ChannelConfigs, http_client: httpx.AsyncClient) -> Registry:
    registry = Registry()
    for provider in fields(configs):
        config = getattr(configs, provider.name)
        if config is not None:
            registry.add(_factory(provider.name)(config, http_client))
    return registry

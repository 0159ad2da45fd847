"""The explicit list of adapters: adding a provider is one folder, one line here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

from channels.base import Channel, ChannelAdapter

if TYPE_CHECKING:
    from gateway.settings import Settings

# Each factory returns an adapter when its credentials are set, else None (channel off).
AdapterFactory = Callable[["Settings", httpx.AsyncClient], ChannelAdapter | None]


def _factories() -> list[AdapterFactory]:
    # Imported here so that a provider's SDK loads only when the registry is built.
    # Order matters: for a channel two providers serve, the later one sends, so the
    # WhatsApp Cloud API comes after Twilio (whose WhatsApp it replaces).
    from channels import whatsapp_cloud
    from channels.email.adapter import build_email_adapter
    from channels.telegram import build_telegram
    from channels.twilio import make_twilio_adapter

    return [make_twilio_adapter, whatsapp_cloud.from_settings, build_email_adapter, build_telegram]


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
        return self.by_channel.get(channel)  # type: ignore[call-overload]

    @property
    def enabled_channels(self) -> frozenset[str]:
        return frozenset(self.by_channel)

    async def aclose(self) -> None:
        for adapter in self.by_provider.values():
            await adapter.aclose()


def build_registry(settings: Settings, http_client: httpx.AsyncClient) -> Registry:
    registry = Registry()
    for factory in _factories():
        adapter = factory(settings, http_client)
        if adapter is not None:
            registry.add(adapter)
    return registry

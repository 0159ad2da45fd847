"""Which provider sends an SMS: RALLYPOINT_SMS_ROUTES, by the country of the number.

    KE,UG,NG:africastalking;*:twilio

Rules are separated by `;`; each names ISO 3166 regions (comma-separated, or `*` for
every other) and the provider that sends to their numbers. A number's region comes from
its country calling code (and, for shared codes such as +1, its number range), as the
`phonenumbers` library reads it. A route to a provider that is not configured for SMS
falls to the `*` route; where that leads nowhere either, the registry's SMS adapter
(Twilio if it is configured, else Africa's Talking) sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import phonenumbers

from channels.base import ChannelAdapter
from channels.registry import SMS_PROVIDERS, Registry

VARIABLE = "RALLYPOINT_SMS_ROUTES"
DEFAULT_ROUTES = "*:twilio"
EVERYWHERE = "*"


@dataclass(frozen=True)
class SmsRoutes:
    by_region: dict[str, str]  # "KE" → "africastalking"
    default: str | None  # the `*` route's provider

    def provider_for(self, region: str | None) -> str | None:
        if region is not None and region in self.by_region:
            return self.by_region[region]
        return self.default


@lru_cache(maxsize=16)
def parse_sms_routes(text: str) -> SmsRoutes:
    """The routes `text` writes; ValueError naming RALLYPOINT_SMS_ROUTES and the fault."""
    by_region: dict[str, str] = {}
    default: str | None = None
    rules = [rule.strip() for rule in text.split(";") if rule.strip()]
    if not rules:
        raise ValueError(f"{VARIABLE} is empty; e.g. {DEFAULT_ROUTES}")
    for rule in rules:
        regions, colon, provider = (part.strip() for part in rule.partition(":"))
        provider = provider.lower()
        if not colon or not regions or not provider:
            raise ValueError(
                f"{VARIABLE}: {rule!r} is not REGIONS:provider (e.g. KE,UG:africastalking)"
            )
        if provider not in SMS_PROVIDERS:
            raise ValueError(
                f"{VARIABLE}: {provider!r} is not an SMS provider (one of "
                f"{', '.join(SMS_PROVIDERS)})"
            )
        for region in (r.strip().upper() for r in regions.split(",")):
            if region == EVERYWHERE:
                if default is not None:
                    raise ValueError(f"{VARIABLE}: `*` is routed twice")
                default = provider
            elif not region or phonenumbers.country_code_for_region(region) == 0:
                raise ValueError(
                    f"{VARIABLE}: {region!r} is not a two-letter region code (e.g. KE, US)"
                )
            elif region in by_region:
                raise ValueError(f"{VARIABLE}: {region} is routed twice")
            else:
                by_region[region] = provider
    return SmsRoutes(by_region, default)


@lru_cache(maxsize=16_384)
def region_of(address: str) -> str | None:
    """The region (KE, US, …) of an E.164 number; None when it has none."""
    try:
        number = phonenumbers.parse(address, None)
    except phonenumbers.NumberParseException:
        return None
    # The range's own region (+1 416 → CA); for a number our copy of the numbering plan
    # does not hold (a new range), the country calling code's main region (+1 → US).
    region: str | None = phonenumbers.region_code_for_number(number)
    if not region and number.country_code:
        region = phonenumbers.region_code_for_country_code(number.country_code)
    return region if region and region != "ZZ" else None


def sms_adapter(registry: Registry, routes: str, address: str) -> ChannelAdapter | None:
    """The adapter that sends an SMS to `address` under the routes `routes`."""
    parsed = parse_sms_routes(routes)
    # Only routes by region need the number's region (phonenumbers: ~5% of a dispatch's
    # CPU when every number is new to region_of's cache).
    region = region_of(address) if parsed.by_region else None
    for provider in (parsed.provider_for(region), parsed.default):
        adapter = registry.by_provider.get(provider) if provider else None
        if adapter is not None and "sms" in adapter.channels:
            return adapter
    return registry.for_channel("sms")


def adapter_for(
    registry: Registry, routes: str, channel: str, address: str
) -> ChannelAdapter | None:
    """The adapter that sends on `channel` to `address`: SMS by the routes, every other
    channel by its one provider."""
    if channel == "sms":
        return sms_adapter(registry, routes, address)
    return registry.for_channel(channel)

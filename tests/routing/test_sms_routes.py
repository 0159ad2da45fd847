"""RALLYPOINT_SMS_ROUTES: parsed, refused with the variable named, and applied per number
(by its country) to the SMS providers that are configured."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import ValidationError

from channels.africastalking import AfricasTalkingConfig
from channels.registry import ChannelConfigs, Registry, build_registry
from channels.twilio import TwilioConfig
from gateway.settings import Settings
from routing.sms_routes import parse_sms_routes, region_of, sms_adapter

KENYA, UGANDA, US, CANADA, UK = (
    "+254711000111",
    "+256772000111",
    "+14155550100",
    "+14165550100",
    "+447700900123",
)
AT = AfricasTalkingConfig("ke-user", "atsk_key", "cb-s3cret-Zq8WvT2nLx5RpK7y")
TWILIO = TwilioConfig("AC" + "0" * 32, "token", sms_from="+14155550199")


def test_the_default_sends_everything_by_twilio() -> None:
    routes = parse_sms_routes(Settings(_env_file=None).sms_routes)  # type: ignore[call-arg]
    assert (routes.by_region, routes.default) == ({}, "twilio")


def test_regions_and_a_default() -> None:
    routes = parse_sms_routes(" ke, UG ,NG : AfricasTalking ; *:twilio ;")
    assert routes.by_region == {
        "KE": "africastalking",
        "UG": "africastalking",
        "NG": "africastalking",
    }
    assert routes.default == "twilio"
    assert routes.provider_for("KE") == "africastalking"
    assert routes.provider_for("US") == "twilio"
    assert routes.provider_for(None) == "twilio"


@pytest.mark.parametrize(
    ("value", "fault"),
    [
        ("KE:nexmo", "'nexmo' is not an SMS provider"),
        ("KX:africastalking", "'KX' is not a two-letter region code"),
        ("Kenya:africastalking", "'KENYA' is not a two-letter region code"),
        ("KE africastalking", "is not REGIONS:provider"),
        ("KE:", "is not REGIONS:provider"),
        (":twilio", "is not REGIONS:provider"),
        ("KE:africastalking;ke:twilio", "KE is routed twice"),
        ("*:twilio;*:africastalking", "`*` is routed twice"),
        (";;", "is empty"),
    ],
)
def test_a_bad_value_is_a_settings_error_naming_the_variable(value: str, fault: str) -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(_env_file=None, sms_routes=value)  # type: ignore[call-arg]
    assert "RALLYPOINT_SMS_ROUTES" in str(raised.value)
    assert fault in str(raised.value)


def test_the_variable_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RALLYPOINT_SMS_ROUTES", "KE:africastalking;*:twilio")
    assert Settings(_env_file=None).sms_routes == "KE:africastalking;*:twilio"  # type: ignore[call-arg]
    monkeypatch.setenv("RALLYPOINT_SMS_ROUTES", "KE:carrier-pigeon")
    with pytest.raises(ValidationError, match="RALLYPOINT_SMS_ROUTES"):
        Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("number", "region"),
    [
        (KENYA, "KE"),
        (UGANDA, "UG"),
        (US, "US"),
        (CANADA, "CA"),
        (UK, "GB"),
        ("+800", None),
        ("x", None),
    ],
)
def test_the_region_comes_from_the_number(number: str, region: str | None) -> None:
    assert region_of(number) == region


@pytest.fixture
async def both() -> AsyncIterator[Registry]:
    async with httpx.AsyncClient() as http:
        yield build_registry(ChannelConfigs(africastalking=AT, twilio=TWILIO), http)


def _provider(registry: Registry, routes: str, number: str) -> str | None:
    adapter = sms_adapter(registry, routes, number)
    return adapter.provider if adapter is not None else None


ROUTES = "KE,UG:africastalking;*:twilio"


async def test_each_number_goes_to_its_countrys_provider(both: Registry) -> None:
    assert _provider(both, ROUTES, KENYA) == "africastalking"
    assert _provider(both, ROUTES, UGANDA) == "africastalking"
    assert _provider(both, ROUTES, US) == "twilio"
    assert _provider(both, ROUTES, CANADA) == "twilio"
    assert _provider(both, "*:africastalking", US) == "africastalking"
    # Without a `*` route, other countries go to the registry's SMS provider (Twilio).
    assert _provider(both, "KE:africastalking", UK) == "twilio"


async def test_a_route_to_an_unconfigured_provider_falls_to_the_default() -> None:
    async with httpx.AsyncClient() as http:
        twilio_only = build_registry(ChannelConfigs(twilio=TWILIO), http)
        at_only = build_registry(ChannelConfigs(africastalking=AT), http)
        whatsapp_only_twilio = build_registry(
            ChannelConfigs(
                africastalking=AT,
                twilio=TwilioConfig("AC" + "0" * 32, "token", whatsapp_from="whatsapp:+1415"),
            ),
            http,
        )
        nothing = build_registry(ChannelConfigs(), http)
    assert _provider(twilio_only, ROUTES, KENYA) == "twilio"
    # `*` leads nowhere either: the SMS provider there is sends.
    assert _provider(at_only, ROUTES, US) == "africastalking"
    assert _provider(at_only, "*:twilio", US) == "africastalking"
    # Twilio without an SMS sender does not count as configured for SMS.
    assert _provider(whatsapp_only_twilio, "*:twilio", US) == "africastalking"
    assert _provider(nothing, ROUTES, KENYA) is None

"""Each SMS provider has its own rate, in segments a second: with RALLYPOINT_SMS_ROUTES
sending Kenyan numbers by Africa's Talking and the rest by Twilio, each provider's sends
are paced by its own rate and the segments it counts, independently of the other's.
Through the real adapters, against their fakes at the wire, on virtual time."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest

from channels.africastalking.fake import FakeAfricasTalking
from channels.twilio.fake import FakeTwilio
from routing.context import AppContext
from routing.dispatch.ratelimit import PACING
from tests.channels import twilio_case
from tests.channels.africastalking_case import API_KEY, SETTINGS, USERNAME
from tests.routing.fake_adapter import add_supporter, load, queue
from tests.routing.test_ratelimit import VirtualTime
from tests.routing.test_ratelimit_segments import LONG, SHORT, send_all

ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.mark.parametrize(("body", "segments"), [(SHORT, 1), (LONG, 3)])
async def test_each_sms_provider_is_paced_by_its_own_rate(
    make_client: ClientFactory, body: str, segments: int
) -> None:
    vt = VirtualTime()
    at = FakeAfricasTalking(USERNAME, API_KEY)
    twilio = FakeTwilio(twilio_case.ACCOUNT_SID, twilio_case.AUTH_TOKEN)
    seen: dict[str, list[float]] = {"africastalking": [], "twilio": []}

    def wire(request: httpx.Request) -> httpx.Response:
        if request.url.host == "api.africastalking.test":
            seen["africastalking"].append(vt())
            return at.handle(request)
        seen["twilio"].append(vt())
        return twilio.handle(request)

    client = await make_client(
        transport=httpx.MockTransport(wire),
        **SETTINGS,
        **twilio_case.SETTINGS,
        sms_routes="KE:africastalking;*:twilio",
        africastalking_rate_per_second=10,
        twilio_rate_per_second=2,
    )
    ctx: AppContext = client.ctx  # type: ignore[attr-defined]
    ids = []
    for n in range(4):
        for phone in (f"+25471100{n:04d}", f"+1415555{n:04d}"):
            sid = await add_supporter(ctx, {"sms": phone}, name=f"S{phone}")
            ids.append(await queue(ctx, sid, body))
    await send_all(ctx, vt, 8)

    assert [(await load(ctx, i)).status for i in ids] == ["sent"] * 8
    assert (len(at.sent), len(twilio.sent)) == (4, 4)
    # Africa's Talking: 10 segments a second. A window of 10 fits three 3-segment SMS.
    at_spacing = (10 / 3 if segments == 3 else 1) / (10 * PACING)
    assert seen["africastalking"] == pytest.approx([n * at_spacing for n in range(4)])
    # Twilio: 2 segments a second, a 3-segment SMS (more than a second holds) alone.
    twilio_spacing = segments / (2 * PACING)
    assert seen["twilio"] == pytest.approx([n * twilio_spacing for n in range(4)])

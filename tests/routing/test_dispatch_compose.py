"""What the adapter is handed: email threading and WhatsApp templates."""

from __future__ import annotations

from channels.base import InboundMessage, ProviderUnavailable
from routing.inbound.store import ingest
from tests.conftest import FakeClock
from tests.routing.fake_adapter import FakeAdapter, load, make_dispatcher, queue, with_adapters

EMAIL = "ada@example.org"


async def test_email_reply_threads_under_the_last_inbound_mail(
    make_client, clock: FakeClock
) -> None:
    email = FakeAdapter(channels=("email",), provider="fake-email")
    _, ctx = await with_adapters(make_client, email, smtp_from="team@rally.example.org")
    report = await ingest(
        ctx,
        [
            InboundMessage(
                channel="email",
                address=EMAIL,
                provider_message_id="<abc@mail.example>",
                body="Can I help on Saturday?",
                subject="Saturday plans",
                email_message_id="<abc@mail.example>",
                references="<root@mail.example>",
            )
        ],
    )
    inbound = await load(ctx, report.stored[0])
    mid = await queue(ctx, inbound.supporter_id, "Yes please!", channel="email")
    email.fail(EMAIL, ProviderUnavailable())
    dispatcher = make_dispatcher(ctx, clock)
    assert await dispatcher.run_once() == 1
    clock.advance(seconds=2)
    assert await dispatcher.run_once() == 1

    first, second = email.calls
    assert second.in_reply_to == "<abc@mail.example>"
    assert second.references == "<root@mail.example> <abc@mail.example>"
    assert second.subject == "Re: Saturday plans"
    assert second.email_message_id is not None
    assert second.email_message_id.endswith("@rally.example.org>")
    assert first.email_message_id == second.email_message_id  # the same mail, retried
    message = await load(ctx, mid)
    assert message.email_message_id == second.email_message_id
    assert message.in_reply_to == "<abc@mail.example>"
    assert message.status == "sent"


async def test_sms_carries_no_email_headers(make_client, clock: FakeClock) -> None:
    sms = FakeAdapter(channels=("sms",), provider="fake-sms")
    _, ctx = await with_adapters(make_client, sms)
    from tests.routing.fake_adapter import add_supporter

    sid = await add_supporter(ctx, {"sms": "+14155550100"})
    await queue(ctx, sid, "hi", template={"name": "ignored"})
    assert await make_dispatcher(ctx, clock).run_once() == 1
    (sent,) = sms.calls
    assert (sent.to, sent.body, sent.template, sent.email_message_id) == (
        "+14155550100",
        "hi",
        None,
        None,
    )

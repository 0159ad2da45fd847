"""The thin ASGI path for webhook POSTs (gateway/webhooks_asgi.py) answers exactly as the
FastAPI routes it stands in front of, and the Twilio shortcuts (one HMAC, NANP numbers)
decide as twilio's RequestValidator and phonenumbers do. Signatures are made by twilio's
RequestValidator."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl, urlencode

import httpx
import phonenumbers
import pytest
from fastapi import FastAPI, HTTPException
from sqlalchemy import func
from sqlmodel import select
from starlette.types import Receive, Scope, Send
from twilio.request_validator import RequestValidator

from channels.base import MalformedPayload
from channels.twilio.models import canonical_phone, form_signature_matches
from gateway.webhooks import parse_form
from storage.models import Message
from tests.channels.twilio_case import AUTH_TOKEN, PUBLIC_URL, SETTINGS, sign, signed_post, sms_form

MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]


def routed(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """A client for the same app that skips the thin path (FastAPI's own routes)."""
    app: FastAPI = client.app  # type: ignore[attr-defined]

    async def through_fastapi(scope: Scope, receive: Receive, send: Send) -> None:
        await FastAPI.__call__(app, scope, receive, send)

    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=through_fastapi), base_url=PUBLIC_URL
    )


def requests() -> list[tuple[str, dict[str, str], bytes]]:
    good = signed_post(sms_form("SM" + "1" * 32, "+14155550101", "hello"))
    status = signed_post(
        {"MessageSid": "SM" + "9" * 32, "MessageStatus": "delivered", "To": "+14155550101"},
        "/webhooks/twilio/status",
    )
    many = {f"f{i}": "x" for i in range(501)}
    too_many = signed_post(many)
    huge = {"MessageSid": "SM" + "2" * 32, "From": "+14155550102", "Body": "x" * 1_100_000}
    form_headers = {"Content-Type": "application/x-www-form-urlencoded"}
    return [
        (good.path, good.headers, good.content),
        (status.path, status.headers, status.content),
        (too_many.path, too_many.headers, too_many.content),
        ("/webhooks/twilio", {**form_headers, "X-Twilio-Signature": "bad"}, good.content),
        ("/webhooks/twilio", form_headers, good.content),
        ("/webhooks/nosuch", good.headers, good.content),
        ("/webhooks/twilio/nosuch", good.headers, good.content),
        ("/webhooks/twilio", {**good.headers, "X-Twilio-Signature": sign(PUBLIC_URL, huge)},
         urlencode(huge).encode()),
        ("/webhooks/twilio", {**form_headers, "X-Twilio-Signature": "x"}, b"\xff=\xfe"),
    ]  # fmt: skip


async def test_answers_match_the_fastapi_routes(make_client: MakeClient) -> None:
    fast = await make_client(**SETTINGS)
    slow = routed(fast)
    seen = set()
    try:
        for path, headers, content in requests():
            a = await fast.post(path, headers=headers, content=content)
            # The same request again is a duplicate for the store, not for the answer.
            b = await slow.post(path, headers=headers, content=content)
            assert (a.status_code, a.content) == (b.status_code, b.content), path
            # RallypointApp.__call__ adds the request id before either path (the slow one
            # here skips it): the rest of the headers are the same.
            assert a.headers.pop("x-request-id")
            assert a.headers == b.headers
            seen.add(a.status_code)
    finally:
        await slow.aclose()
    assert seen == {200, 400, 403, 404, 413}
    async with fast.ctx.sessions() as session:  # type: ignore[attr-defined]
        stored = (await session.exec(select(func.count()).select_from(Message))).one()
    assert stored == 1


async def test_a_streamed_body_over_the_limit_is_413(make_client: MakeClient) -> None:
    client = await make_client(**SETTINGS, max_body_bytes=1000)

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(5):
            yield b"Body=" + b"x" * 400 + b"&"

    answer = await client.post(
        "/webhooks/twilio",
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "x"},
        content=chunks(),
    )
    assert answer.status_code == 413
    assert answer.json() == {"detail": "payload too large"}


@pytest.mark.parametrize("signed", [PUBLIC_URL, "https://rallypoint.example.org:443"])
async def test_a_signature_with_or_without_the_default_port_is_accepted(
    make_client: MakeClient, signed: str
) -> None:
    client = await make_client(**SETTINGS)
    request = signed_post(
        sms_form("SM" + "3" * 32, "+14155550103", "hi"), signed_url=signed + "/webhooks/twilio"
    )
    answer = await client.post(request.path, headers=request.headers, content=request.content)
    assert answer.status_code == 200


def test_one_hmac_decides_as_the_request_validator() -> None:
    validator = RequestValidator(AUTH_TOKEN)
    rng = random.Random(7)
    urls = [
        "https://h.example/webhooks/twilio",
        "https://h.example:443/webhooks/twilio",
        "http://h.example:8080/webhooks/twilio?a=1&b=",
        "https://h.example:8443/webhooks/twilio/status",
    ]
    letters = "ab é€+&=%"
    accepted = 0
    for _ in range(3000):
        url = rng.choice(urls)
        form = tuple(
            ("".join(rng.choices(letters, k=rng.randint(0, 3))), "".join(rng.choices(letters, k=3)))
            for _ in range(rng.randint(0, 4))
        )
        params: dict[str, list[str]] = {}
        for name, value in form:
            params.setdefault(name, []).append(value)
        multi = type("Multi", (dict,), {"getall": lambda self, k: self[k]})(params)
        signature = validator.compute_signature(rng.choice(urls), multi)
        expected = validator.validate(url, multi, signature)
        assert form_signature_matches(AUTH_TOKEN.encode(), url, form, signature) is expected
        accepted += expected
    assert 0 < accepted < 3000


def test_nanp_numbers_are_canonical_as_phonenumbers_has_them() -> None:
    rng = random.Random(11)
    for _ in range(2000):
        text = "+1" + "".join(rng.choices("0123456789", k=10))
        number = phonenumbers.parse(text, None)
        assert phonenumbers.is_possible_number(number)
        assert canonical_phone(text) == phonenumbers.format_number(
            number, phonenumbers.PhoneNumberFormat.E164
        )
    assert canonical_phone("whatsapp:+442071838750") == "+442071838750"
    # Not ASCII digits: phonenumbers' way, not the shortcut's.
    assert canonical_phone("+1４１５５５５０１００") == "+14155550100"
    for bad in ["+1415555", "+999123456789", "hello"]:
        with pytest.raises(MalformedPayload):
            canonical_phone(bad)


def test_parse_form_reads_a_form_as_parse_qsl_does() -> None:
    rng = random.Random(7)
    pieces = ["a", "B", "=", "&", "+", "%20", "%2B", "%26", "%3D", "%", "%zz", "%C3%A9", "é", " "]
    for _ in range(3000):
        body = "".join(rng.choices(pieces, k=rng.randint(0, 12)))
        expected = tuple(parse_qsl(body, keep_blank_values=True))
        assert parse_form(body.encode()) == expected, body
    assert parse_form(b"&".join([b"a=1"] * 500)) == (("a", "1"),) * 500
    with pytest.raises(HTTPException) as refused:
        parse_form(b"&".join([b"a=1"] * 501))
    assert refused.value.status_code == 400
    with pytest.raises(HTTPException):
        parse_form(b"Body=\xff")

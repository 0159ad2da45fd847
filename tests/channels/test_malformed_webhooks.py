"""Signed but malformed webhooks, as fuzzing sent them: each is a 400 with nothing stored,
never a 500 (which closes the connection and, for Twilio, loses the message). The checks
on what the database can take run on SQLite too, so both backends answer alike."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import select

from storage.models import Message, Supporter
from tests.channels import telegram_case, twilio_case
from tests.channels.contract import SignedRequest

ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]


async def _count(client: httpx.AsyncClient, model: type) -> int:
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        return (await session.exec(select(func.count()).select_from(model))).one()


async def _send(client: httpx.AsyncClient, request: SignedRequest) -> httpx.Response:
    return await client.request(
        request.method, request.path, headers=request.headers, content=request.content
    )


def _telegram(change: Callable[[dict[str, Any]], object]) -> SignedRequest:
    update = telegram_case.text_update(910000001, 5550001, "hello")
    change(update["message"])
    return telegram_case.post(update)


def _raw_telegram(text_json: str) -> SignedRequest:
    update = json.dumps(telegram_case.text_update(910000002, 5550001, "PLACEHOLDER"))
    return telegram_case.post(update.replace('"PLACEHOLDER"', text_json).encode())


TELEGRAM = [
    ("date 1e20", _telegram(lambda m: m.update(date=1e20))),
    ("date -1e20", _telegram(lambda m: m.update(date=-1e20))),
    ("message without chat", _telegram(lambda m: m.pop("chat"))),
    ("text as a list", _telegram(lambda m: m.update(text=["STOP"]))),
    ("text as an object", _telegram(lambda m: m.update(text={"a": 1}))),
    ("chat as a string", _telegram(lambda m: m.update(chat="5550001"))),
    ("lone surrogate in text", _raw_telegram('"STOP \\ud800"')),
    ("NUL in text", _raw_telegram('"STOP\\u0000"')),
    (
        "deeply nested JSON",
        telegram_case.post(
            b'{"update_id": 1, "message": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        ),
    ),
]


@pytest.mark.parametrize(("label", "request_"), TELEGRAM, ids=[c[0] for c in TELEGRAM])
async def test_malformed_telegram_updates_are_400(
    make_client: ClientFactory, label: str, request_: SignedRequest
) -> None:
    client = await make_client(**telegram_case.SETTINGS)
    response = await _send(client, request_)
    assert response.status_code == 400, response.text
    assert response.json()["detail"].startswith("malformed payload")
    assert await _count(client, Message) == 0
    assert await _count(client, Supporter) == 0
    # The next good update is stored as ever.
    good = telegram_case.post(telegram_case.text_update(910000009, 5550001, "hi"))
    assert (await _send(client, good)).status_code == 200
    assert await _count(client, Message) == 1


def _sms(**changes: str) -> dict[str, str]:
    params = twilio_case.sms_form("SM" + "a" * 32, "+14155550100", "hello")
    params.update(changes)
    return params


LONG_SID = "SM" + "b" * 250
TWILIO = [
    ("NUL in Body", twilio_case.signed_post(_sms(Body="STOP\x00"))),
    (
        "MessageSid over 200 characters",
        twilio_case.signed_post(_sms(MessageSid=LONG_SID, SmsMessageSid=LONG_SID, SmsSid=LONG_SID)),
    ),
    ("NUL in ProfileName", twilio_case.signed_post(_sms(ProfileName="A\x00da"))),
]


@pytest.mark.parametrize(("label", "request_"), TWILIO, ids=[c[0] for c in TWILIO])
async def test_malformed_twilio_forms_are_400(
    make_client: ClientFactory, label: str, request_: SignedRequest
) -> None:
    client = await make_client(**twilio_case.SETTINGS)
    response = await _send(client, request_)
    assert response.status_code == 400, response.text
    assert await _count(client, Message) == 0
    assert await _count(client, Supporter) == 0
    good = twilio_case.signed_post(_sms())
    assert (await _send(client, good)).status_code == 200
    assert await _count(client, Message) == 1


@pytest.mark.parametrize("code", ["²", "9" * 5000, "-1", "1e5", "99999999999"])
async def test_status_callbacks_with_odd_error_codes_are_taken(
    make_client: ClientFactory, code: str
) -> None:
    client = await make_client(**twilio_case.SETTINGS)
    params = twilio_case.form("status_failed_21610.json")
    params["ErrorCode"] = code
    response = await _send(client, twilio_case.signed_post(params, "/webhooks/twilio/status"))
    assert response.status_code == 200, response.text

"""Every webhook adapter in the registry: 403 and nothing stored for a missing or wrong
signature, 400 and nothing stored for signed garbage, one message for a replay; and no
secret in any log record meanwhile (the send side: test_send_contract.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import select

from storage.models import Message, Supporter
from tests.channels.africastalking_case import AfricasTalkingCase
from tests.channels.contract import ContractCase, SignedRequest
from tests.channels.send_contract import all_logs, leaked
from tests.channels.telegram_case import TelegramCase
from tests.channels.twilio_case import TwilioCase
from tests.channels.whatsapp_cloud_case import WhatsAppCloudCase

CASES: list[ContractCase] = []
CASES.append(TelegramCase())
CASES.append(WhatsAppCloudCase())
CASES.append(TwilioCase())
CASES.append(AfricasTalkingCase())


def _case_id(case: ContractCase) -> str:
    return case.provider


async def _send(client: httpx.AsyncClient, request: SignedRequest) -> httpx.Response:
    return await client.request(
        request.method, request.path, headers=request.headers, content=request.content
    )


async def _count(client: httpx.AsyncClient, model: type) -> int:
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        return (await session.exec(select(func.count()).select_from(model))).one()


ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture(params=CASES, ids=_case_id)
def case(request: pytest.FixtureRequest) -> Iterator[ContractCase]:
    case: ContractCase = request.param
    with all_logs() as records:
        yield case
    assert not leaked(records, case.secrets)


def test_every_webhook_adapter_has_a_contract_case() -> None:
    from dataclasses import fields

    from channels.registry import ChannelConfigs

    # email arrives over SMTP, Signal from signal-cli-rest-api's receive endpoint.
    webhook_providers = {f.name for f in fields(ChannelConfigs)} - {"email", "signal"}
    assert len(CASES) >= len(webhook_providers)


async def test_missing_signature_is_403_and_stores_nothing(
    case: ContractCase, make_client: ClientFactory
) -> None:
    client = await make_client(**case.settings)
    request = case.inbound("contract-1", case.sender(), "hello")
    # A case whose secret is not in a header (Africa's Talking: in the path) says how to
    # leave it out.
    without_signature = getattr(case, "without_signature", None)
    if without_signature is not None:
        unsigned = without_signature(request)
    else:
        unsigned = request.without_header(case.signature_header)
    response = await _send(client, unsigned)
    assert response.status_code == 403
    assert await _count(client, Message) == 0
    assert await _count(client, Supporter) == 0


async def test_wrong_signature_is_403_and_stores_nothing(
    case: ContractCase, make_client: ClientFactory
) -> None:
    client = await make_client(**case.settings)
    request = case.wrong_signature(case.inbound("contract-2", case.sender(), "hello"))
    response = await _send(client, request)
    assert response.status_code == 403
    assert await _count(client, Message) == 0


async def test_signed_garbage_is_400_and_stores_nothing(
    case: ContractCase, make_client: ClientFactory
) -> None:
    client = await make_client(**case.settings)
    response = await _send(client, case.signed_garbage())
    assert response.status_code == 400
    assert await _count(client, Message) == 0
    assert await _count(client, Supporter) == 0


async def test_replay_is_200_and_stored_once(
    case: ContractCase, make_client: ClientFactory
) -> None:
    client = await make_client(**case.settings)
    request = case.inbound("contract-3", case.sender(), "hello twice")
    first = await _send(client, request)
    second = await _send(client, request)
    assert (first.status_code, second.status_code) == (200, 200)
    assert await _count(client, Message) == 1
    assert await _count(client, Supporter) == 1


async def test_webhook_answers_404_when_channel_is_off(
    case: ContractCase, make_client: ClientFactory
) -> None:
    client = await make_client()
    response = await _send(client, case.inbound("contract-4", case.sender(), "hello"))
    assert response.status_code == 404

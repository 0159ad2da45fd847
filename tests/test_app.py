from __future__ import annotations

import httpx

from tests.conftest import FakeClock


async def test_healthz_answers_with_enabled_channels(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "channels": [],
        "spool": {"records": 0, "files": 0, "bytes": 0, "oldest_age_seconds": None},
        "circuits": [],
    }


async def test_unknown_webhook_provider_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/webhooks/twilio", data={"Body": "hi"})
    assert response.status_code == 404


def test_fake_clock_moves_only_when_told() -> None:
    clock = FakeClock()
    start = clock()
    assert clock() == start
    assert clock.advance(seconds=5) - start == __import__("datetime").timedelta(seconds=5)

"""RALLYPOINT_BOOTSTRAP_ADMIN_KEY as a new operator uses it: a weak or copied value is
refused by `serve`; changing or unsetting it revokes the key the old value made (and a
revoked one stays revoked when its value comes back)."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from gateway.app import ensure_bootstrap_key
from gateway.settings import BOOTSTRAP_EXAMPLE
from storage.models import AuditEvent
from tests.conftest import bearer

Factory = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.mark.parametrize("value", ["short-but-set", BOOTSTRAP_EXAMPLE])
def test_serve_refuses_a_short_or_copied_bootstrap_value(
    value: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    from gateway.cli import main

    monkeypatch.chdir(tmp_path)  # no .env of the working tree
    monkeypatch.setenv("RALLYPOINT_DATABASE_URL", f"sqlite:///{tmp_path}/never.db")
    monkeypatch.setenv("RALLYPOINT_BOOTSTRAP_ADMIN_KEY", value)
    assert main(["serve"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: RALLYPOINT_BOOTSTRAP_ADMIN_KEY"), line
    assert value not in line  # the value is never echoed
    assert not (tmp_path / "never.db").exists()  # refused before anything was made


async def _start(make_client: Factory, value: str | None) -> httpx.AsyncClient:
    """One start of the service with this value (what `serve` does at start-up)."""
    client = await make_client(bootstrap_admin_key=value)
    await ensure_bootstrap_key(client.ctx)  # type: ignore[attr-defined]
    return client


async def _status(client: httpx.AsyncClient, key: str) -> int:
    return (await client.get("/api/v1/teams", headers=bearer(key))).status_code


async def test_a_changed_or_unset_value_revokes_the_key_the_old_one_made(
    make_client: Factory,
) -> None:
    first, second = secrets.token_hex(32), secrets.token_hex(32)
    client = await _start(make_client, first)
    assert await _status(client, first) == 200
    await ensure_bootstrap_key(client.ctx)  # type: ignore[attr-defined]  # a restart
    assert await _status(client, first) == 200

    client = await _start(make_client, second)
    assert await _status(client, second) == 200
    assert await _status(client, first) == 401

    client = await _start(make_client, None)
    assert await _status(client, second) == 401

    client = await _start(make_client, first)  # the old value again: still revoked
    assert await _status(client, first) == 401

    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        revoked = (
            await session.exec(select(AuditEvent).where(AuditEvent.action == "key_revoked"))
        ).all()
    assert [e.actor for e in revoked] == ["bootstrap", "bootstrap"]

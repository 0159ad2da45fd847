"""`rallypoint keys rotate-encryption`: every sealed value moves to the newest key, in
batches with progress on stderr, resumably; a database written without keys gets sealed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.cli import main
from storage.crypto import install, key_id, parse_keys
from storage.crypto_setup import setup_encryption
from storage.db import make_engine
from storage.rotation import rotate_encryption, sealed_tables
from tests.conftest import PG_URL
from tests.gateway.test_encryption_at_rest import KEY, NAME, OTHER_KEY, PHONE, SECRETS, _seed
from tests.gateway.test_erasure import api, organizer, raw_bytes

MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]


async def _key_ids(engine: AsyncEngine) -> set[str]:
    """The key ids of every sealed value stored."""
    found: set[str] = set()
    async with engine.connect() as conn:
        for table, columns in sealed_tables():
            for column in [c.key for c in columns] + (
                ["address_sealed"] if table.name == "supporter_addresses" else []
            ):
                sql = f"SELECT {column} FROM {table.name}"  # noqa: S608 - our own names
                for (value,) in await conn.execute(text(sql)):
                    if isinstance(value, str) and value.startswith("e1:"):
                        found.add(value.split(":")[1])
    return found


def _cli(monkeypatch: pytest.MonkeyPatch, url: str, keys: str, *args: str) -> int:
    monkeypatch.setenv("RALLYPOINT_DATABASE_URL", url)
    monkeypatch.setenv("RALLYPOINT_ENCRYPTION_KEYS", keys)
    return main(["keys", "rotate-encryption", *args])


async def test_rotation_moves_every_value_to_the_newest_key(
    make_client: MakeClient,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = await organizer(make_client, encryption_keys=KEY)
    sid = await _seed(client)
    engine = client.ctx.engine  # type: ignore[attr-defined]
    assert await _key_ids(engine) == {key_id(parse_keys(KEY)[0])}
    install(None)

    both = f"{OTHER_KEY},{KEY}"
    code = await asyncio.to_thread(_cli, monkeypatch, database_url, both, "--batch", "2")
    err = capsys.readouterr().err
    assert code == 0, err
    assert "messages: 2 rows checked" in err  # progress per batch
    assert "rows/s" in err
    assert await _key_ids(engine) == {key_id(parse_keys(OTHER_KEY)[0])}

    # The old key can go: the new one alone opens everything, through the API too.
    reader = await organizer(make_client, encryption_keys=OTHER_KEY)
    person = await api(reader, "GET", f"/supporters/{sid}")
    assert person["name"] == NAME and person["addresses"][0]["address"] == PHONE
    found = await api(reader, "GET", "/supporters", params={"q": "stargazer"})
    assert [s["id"] for s in found["items"]] == [sid]


async def test_rotation_resumes_after_an_interruption(make_client: MakeClient) -> None:
    client = await organizer(make_client, encryption_keys=KEY)
    await _seed(client)
    engine = make_engine(client.ctx.settings.database_url)  # type: ignore[attr-defined]
    lines: list[str] = []

    class Stop(Exception):
        pass

    def stop_after_two(line: str) -> None:
        lines.append(line)
        if len(lines) == 2:
            raise Stop

    both = f"{OTHER_KEY},{KEY}"
    with pytest.raises(Stop):
        await rotate_encryption(engine, both, batch=1, progress=stop_after_two)
    assert len(await _key_ids(engine)) == 2  # half done: both keys in use
    first = await rotate_encryption(engine, both, batch=1)
    second = await rotate_encryption(engine, both, batch=1)
    assert first.values_written > 0
    assert second.values_written == 0  # nothing left: a rerun only reads
    assert await _key_ids(engine) == {key_id(parse_keys(OTHER_KEY)[0])}
    await engine.dispose()
    install(None)


async def test_rotation_seals_a_database_written_without_keys(make_client: MakeClient) -> None:
    client = await organizer(make_client, encryption_keys=None)  # plaintext
    sid = await _seed(client)
    engine = client.ctx.engine  # type: ignore[attr-defined]
    if PG_URL is None:
        assert NAME.encode() in raw_bytes(client)
    report = await rotate_encryption(engine, KEY, batch=3)
    assert report.values_written > 0
    async with engine.begin() as conn:
        names = [r[0] for r in await conn.execute(text("SELECT name FROM supporters"))]
    assert all(n.startswith("e1:") for n in names)
    if PG_URL is None:
        data = raw_bytes(client)
        for secret in SECRETS:
            assert secret.encode() not in data, secret
    assert await setup_encryption(engine, KEY) is not None  # serve now starts
    reader = await organizer(make_client, encryption_keys=KEY)
    found = await api(reader, "GET", "/supporters", params={"q": PHONE})
    assert [s["id"] for s in found["items"]] == [sid]

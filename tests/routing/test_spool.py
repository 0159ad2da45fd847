"""The webhook spool: signed webhooks the database cannot take in time are answered 200,
kept on disk and stored, once each and in arrival order, when the database answers again
(by the same app or the next one started on the spool directory)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import pytest
from sqlalchemy.engine import make_url

from channels.base import WebhookRequest
from channels.email.fake import free_port
from gateway.app import create_app, shutdown
from routing.inbound.spool import spool_for
from routing.inbound.spool_codec import encode_events
from storage.spool import SpoolWriter
from tests.channels.twilio_case import PUBLIC_URL, SETTINGS, signed_post, sms_form
from tests.conftest import PG_URL, FakeClock, make_settings
from tests.routing.spool_case import (
    PHONE,
    ClientFactory,
    eventually,
    inbound,
    lock_sqlite,
    post_sms,
    release,
    sid,
    spooled_records,
)

sqlite_only = pytest.mark.skipif(bool(PG_URL), reason="holds the SQLite write lock")
FAST = {**SETTINGS, "spool_after_ms": 150}
BODIES = ["first: STOP", "second", "third"]


@sqlite_only
async def test_locked_database_spools_then_stores_once_in_order(
    make_client: ClientFactory, database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client(**FAST)
    spool_dir = tmp_path / "spool"
    lock = lock_sqlite(database_url)
    try:
        for n, body in enumerate(BODIES):
            answer = await asyncio.wait_for(post_sms(client, n, body), 5)
            assert answer.status_code == 200, answer.text
        # Twilio retries the first one while it waits in the spool.
        assert (await post_sms(client, 0, BODIES[0])).status_code == 200
        assert spooled_records(spool_dir) == 4
        health = (await client.get("/healthz")).json()["spool"]
        assert health["records"] == 4 and health["oldest_age_seconds"] >= 0
    finally:
        release(lock)

    expected = [(sid(n), body) for n, body in enumerate(BODIES)]

    async def all_stored() -> bool:
        return await inbound(client) == expected and spooled_records(spool_dir) == 0

    await eventually(all_stored)
    assert (await client.get("/healthz")).json()["spool"]["records"] == 0
    assert not any(body in r.getMessage() for r in caplog.records for body in BODIES)


@sqlite_only
async def test_next_app_on_the_spool_dir_replays(
    make_client: ClientFactory, database_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    client = await make_client(**FAST)
    lock = lock_sqlite(database_url)
    try:
        for n, body in enumerate(BODIES):
            assert (await post_sms(client, n, body)).status_code == 200
        # The process stops while the database is still locked: its spool is left as is.
        await spool_for(client.ctx).aclose()  # type: ignore[attr-defined]
        assert spooled_records(tmp_path / "spool") == 3
    finally:
        release(lock)

    settings = make_settings(database_url, spool_dir=str(tmp_path / "spool"), **FAST)
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):

        async def all_stored() -> bool:
            expected = [(sid(n), body) for n, body in enumerate(BODIES)]
            return await inbound(client) == expected and spooled_records(tmp_path / "spool") == 0

        await eventually(all_stored)


async def test_refused_connections_spool_and_a_restarted_app_stores(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    # A PostgreSQL server that refuses connections (nothing listens on the port).
    refused = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/rallypoint"
    settings = make_settings(refused, spool_dir=str(tmp_path / "spool"), **FAST)
    app = create_app(settings, http_client=httpx.AsyncClient())
    down = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL)
    try:
        for n, body in enumerate(BODIES):
            answer = await post_sms(down, n, body)
            assert answer.status_code == 200, answer.text
        health = await down.get("/healthz")
        assert health.status_code == 503
        assert health.json()["spool"]["records"] == 3
    finally:
        await down.aclose()
        await shutdown(app.state.ctx)

    up = await make_client(**FAST)
    async with up.app.router.lifespan_context(up.app):  # type: ignore[attr-defined]

        async def all_stored() -> bool:
            expected = [(sid(n), body) for n, body in enumerate(BODIES)]
            return await inbound(up) == expected and spooled_records(tmp_path / "spool") == 0

        await eventually(all_stored)


@sqlite_only
async def test_unverified_webhook_is_refused_and_never_spooled(
    make_client: ClientFactory, database_url: str, tmp_path: Path
) -> None:
    client = await make_client(**FAST)
    lock = lock_sqlite(database_url)
    try:
        forged = signed_post(sms_form(sid(1), PHONE, "forged"), token="not-the-token")
        answer = await client.post(forged.path, headers=forged.headers, content=forged.content)
        assert answer.status_code == 403
        assert spooled_records(tmp_path / "spool") == 0
    finally:
        release(lock)
    assert await inbound(client) == []


async def test_corrupted_spool_file_is_moved_aside_and_the_rest_replayed(
    make_client: ClientFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool_dir = tmp_path / "spool"
    # A dead process's file: a good record, garbage, another good one, a torn last record.
    client = await make_client(**FAST)
    spool = spool_for(client.ctx)  # type: ignore[attr-defined]

    events = [
        client.ctx.registry.by_provider["twilio"].parse(  # type: ignore[attr-defined]
            _frozen(sms_form(sid(n), PHONE, body))
        )
        for n, body in enumerate(["kept one", "kept two"])
    ]
    writer = SpoolWriter(spool_dir)
    writer.append(encode_events(events[0], "twilio"), 1)
    path = writer.path
    assert path is not None
    writer.close()
    with path.open("ab") as file:
        file.write(b"0badc0de 2 {not a record}\n")
        file.write(b"\x00\xff garbage without a checksum\n")
    second = SpoolWriter(spool_dir)
    second.append(encode_events(events[1], "twilio"), 3)
    second.close()
    with path.open("ab") as file:
        file.write(b'1234abcd 4 {"source":"twi')  # torn: the process died mid-write

    caplog.set_level(logging.ERROR, logger="routing.inbound.spool")
    await spool.replay_once()
    assert await inbound(client) == [(sid(0), "kept one"), (sid(1), "kept two")]
    assert spooled_records(spool_dir) == 0
    assert [p.name for p in (spool_dir / "aside").iterdir()] == [path.stem + ".corrupt"]
    [line] = [r.getMessage() for r in caplog.records]
    assert "3 unreadable records" in line and "kept" not in line


def _frozen(params: dict[str, str]) -> WebhookRequest:
    request = signed_post(params)
    return WebhookRequest(
        method="POST",
        url="https://rallypoint.example.org/webhooks/twilio",
        path="/webhooks/twilio",
        query={},
        headers={k.lower(): v for k, v in request.headers.items()},
        body=request.content,
        form=tuple(parse_qsl(request.content.decode(), keep_blank_values=True)),
    )


class TcpProxy:
    """A port that refuses connections until `open()`, then forwards them to PostgreSQL:
    a database server that is down and comes back."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.server: asyncio.Server | None = None

    async def open(self) -> None:
        self.server = await asyncio.start_server(self._forward, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except OSError:
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@pytest.mark.skipif(not PG_URL, reason="needs RALLYPOINT_TEST_DATABASE_URL")
async def test_postgresql_down_then_back_the_same_app_replays(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    assert PG_URL is not None
    real = make_url(PG_URL)
    proxy = TcpProxy(real.host or "127.0.0.1", real.port or 5432)
    url = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    settings = make_settings(url, spool_dir=str(tmp_path / "spool"), **FAST)
    app = create_app(settings, http_client=httpx.AsyncClient())
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL)
    client.ctx = app.state.ctx  # type: ignore[attr-defined]
    try:
        for n, body in enumerate(BODIES):
            assert (await post_sms(client, n, body)).status_code == 200
        assert spooled_records(tmp_path / "spool") == 3
        await proxy.open()  # the server is back

        async def all_stored() -> bool:
            expected = [(sid(n), body) for n, body in enumerate(BODIES)]
            return await inbound(client) == expected and spooled_records(tmp_path / "spool") == 0

        await eventually(all_stored)
        assert (await client.get("/healthz")).json()["spool"]["records"] == 0
    finally:
        await client.aclose()
        await shutdown(app.state.ctx)
        await proxy.close()


async def test_a_database_that_answers_in_time_never_touches_the_spool(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    client = await make_client(**SETTINGS)  # the default deadline: 2 s
    for n, body in enumerate(BODIES):
        assert (await post_sms(client, n, body)).status_code == 200
    assert await inbound(client) == [(sid(n), body) for n, body in enumerate(BODIES)]
    assert not (tmp_path / "spool").exists()  # no file made, nothing fsync'd

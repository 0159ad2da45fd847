"""The Africa's Talking callback secret is in the URL's path, and the HTTP server logs
every request's path: served by a real uvicorn, no log record of any logger (access log
included) holds the secret, whatever the answer was."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path
from urllib.parse import urlencode

import httpx
import uvicorn

from gateway.app import create_app
from gateway.log_redaction import SecretPathFilter, redact
from tests.channels.africastalking_case import SECRET, SETTINGS, SHORT_CODE, load_testdata
from tests.channels.send_contract import all_logs, leaked
from tests.conftest import make_settings

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def test_no_log_line_of_a_served_callback_holds_the_secret(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, spool_dir=str(tmp_path / "spool"), **SETTINGS)
    app = create_app(settings)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    # The access log on, at INFO, as `rallypoint serve` runs it.
    config = uvicorn.Config(app, log_level="info", access_log=True, lifespan="on")
    server = uvicorn.Server(config)
    inbound = load_testdata("inbound_sms.json")
    with all_logs() as records:
        serving = asyncio.create_task(server.serve(sockets=[listener]))
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
                base = f"/webhooks/africastalking/{SECRET}"
                answers = [
                    await c.post(base, content=urlencode(inbound).encode(), headers=FORM),
                    await c.post(
                        f"{base}/delivery",
                        content=urlencode({"id": "ATXid_1", "status": "Success"}).encode(),
                        headers=FORM,
                    ),
                    await c.post(f"{base}/nonsense", content=b"id=1", headers=FORM),
                    await c.post(f"{base}?from={SHORT_CODE}", content=b"garbage", headers=FORM),
                    await c.post(f"{base}/", content=b"", headers=FORM),
                    await c.post(f"{base}/a/b", content=b"", headers=FORM),
                    await c.post(f"/webhooks/africastalking/{SECRET}x", content=b"", headers=FORM),
                ]
        finally:
            server.should_exit = True
            await asyncio.wait_for(serving, 30)
    assert [a.status_code for a in answers] == [200, 200, 400, 400, 307, 404, 403]
    access = [r.getMessage() for r in records if r.name == "uvicorn.access"]
    assert len(access) == len(answers)
    assert 'POST /webhooks/africastalking/<secret>/delivery HTTP/1.1" 200' in "\n".join(access)
    # httpcore is only this test's client here (Africa's Talking's end of the wire; the
    # app's own client runs on aiohttp): at DEBUG it logs the 307's Location header.
    ours = [r for r in records if not r.name.startswith("httpcore")]
    assert not leaked(ours, [SECRET])


def test_the_filter_keeps_the_access_formatter_s_arguments() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "POST", f"/webhooks/africastalking/{SECRET}/delivery", "1.1", 200),
        None,
    )
    assert SecretPathFilter().filter(record)
    assert record.args == (
        "127.0.0.1:5000",
        "POST",
        "/webhooks/africastalking/<secret>/delivery",
        "1.1",
        200,
    )
    assert uvicorn.logging.AccessFormatter("%(request_line)s").format(record) == (
        "POST /webhooks/africastalking/<secret>/delivery HTTP/1.1"
    )


def test_other_paths_are_left_alone() -> None:
    for text in ("/webhooks/twilio/status", "/api/v1/messages/3", "/webhooks/africastalking"):
        assert redact(text) == text
    assert redact(f"https://x.org/webhooks/africastalking/{SECRET}?a=1") == (
        "https://x.org/webhooks/africastalking/<secret>?a=1"
    )


def test_one_filter_of_every_app_hides_the_secret_path_and_the_query_values(
    database_url: str, tmp_path: Path
) -> None:
    create_app(make_settings(database_url, spool_dir=str(tmp_path / "spool"), **SETTINGS))
    access = logging.getLogger("uvicorn.access")
    assert [type(f) for f in access.filters] == [SecretPathFilter]
    path = f"/webhooks/africastalking/{SECRET}?from={SHORT_CODE}&token=4711"
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", path, "1.1", 200),
        None,
    )
    assert access.filter(record)
    assert record.args == (
        "127.0.0.1:5000",
        "GET",
        "/webhooks/africastalking/<secret>?from=…&token=…",
        "1.1",
        200,
    )

"""`rallypoint serve` with RALLYPOINT_LOG_FORMAT=json, as a real process: every line of its
output is one JSON object; the lines written while serving a request (uvicorn's access
line and the app's own) carry that request's id, which the response echoes; access lines
never show a query string's values; the start-up lines list the channels and their URLs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests.deploy.test_serve_process import clean_env, free_port

SECRETS = {
    "WHATSAPP_ACCESS_TOKEN": "EAAG-access-token-secret",
    "WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
    "WHATSAPP_APP_SECRET": "meta-app-secret-value",
    "WHATSAPP_VERIFY_TOKEN": "verify-token-secret",
    "TELEGRAM_BOT_TOKEN": "123456:telegram-bot-token-secret",
    "TELEGRAM_WEBHOOK_SECRET": "telegram-webhook-secret",
}


def serve_and_request(
    database_url: str, tmp_path: Path, log_format: str
) -> tuple[list[str], list[httpx.Response]]:
    port = free_port()
    env = clean_env(
        RALLYPOINT_DATABASE_URL=database_url,
        RALLYPOINT_PORT=str(port),
        RALLYPOINT_PUBLIC_URL="https://rally.example.org",
        RALLYPOINT_LOG_FORMAT=log_format,
        RALLYPOINT_SPOOL_DIR=str(tmp_path / "spool"),
        WHATSAPP_API_BASE="http://127.0.0.1:9",
        TELEGRAM_API_BASE="http://127.0.0.1:9",
        **SECRETS,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(40, proc.kill)  # bounds every wait below
    watchdog.start()
    lines: list[str] = []
    responses: list[httpx.Response] = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "Uvicorn running on" in line:
                break
        else:
            pytest.fail("serve ended before it was ready: " + "".join(lines))
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=10) as client:
            responses.append(client.get("/healthz", headers={"X-Request-ID": "trace-abc.123"}))
            verify = SECRETS["WHATSAPP_VERIFY_TOKEN"]
            query = f"hub.mode=subscribe&hub.verify_token={verify}&hub.challenge=4711"
            responses.append(client.get(f"/webhooks/whatsapp?{query}"))
            responses.append(
                client.post(
                    "/webhooks/telegram",
                    json={"update_id": 1},
                    headers={"X-Telegram-Bot-Api-Secret-Token": "wrong", "X-Request-ID": "bad id!"},
                )
            )
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=20)
        lines.extend(rest.splitlines(keepends=True))
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    return [line.rstrip("\n") for line in lines if line.strip()], responses


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_json_logs_carry_request_ids_and_no_secrets(database_url: str, tmp_path: Path) -> None:
    lines, (health, handshake, refused) = serve_and_request(database_url, tmp_path, "json")
    assert health.status_code == 200 and health.headers["x-request-id"] == "trace-abc.123"
    assert handshake.status_code == 200 and handshake.text == "4711"
    assert refused.status_code == 403
    generated = refused.headers["x-request-id"]
    assert generated != "bad id!" and len(generated) == 16  # not sane: one is made
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    for record in records:
        assert {"ts", "level", "logger", "msg", "request_id"} <= record.keys()
    by_request: dict[str | None, list[dict[str, str]]] = {}
    for record in records:
        by_request.setdefault(record["request_id"], []).append(record)
    (health_line,) = by_request["trace-abc.123"]
    assert health_line["logger"] == "uvicorn.access" and "GET /healthz" in health_line["msg"]
    refused_lines = {r["logger"]: r["msg"] for r in by_request[generated]}
    assert "signature rejected" in refused_lines["gateway.webhooks"]
    assert "POST /webhooks/telegram" in refused_lines["uvicorn.access"]
    (handshake_line,) = [r for r in records if "GET /webhooks/whatsapp" in r["msg"]]
    assert handshake_line["request_id"] == handshake.headers["x-request-id"]
    assert "hub.verify_token=…" in handshake_line["msg"] and "4711" not in handshake_line["msg"]
    # Start-up: the channels on and the URLs to paste, outside any request.
    startup = [r["msg"] for r in by_request[None]]
    assert "channels on: telegram, whatsapp" in startup
    assert any(m.endswith("https://rally.example.org/webhooks/whatsapp") for m in startup)
    assert any(m.endswith("https://rally.example.org/webhooks/telegram") for m in startup)
    output = "\n".join(lines)
    for secret in SECRETS.values():
        if secret != SECRETS["WHATSAPP_PHONE_NUMBER_ID"]:
            assert secret not in output


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_text_logs_are_the_default_and_redact_query_strings(
    database_url: str, tmp_path: Path
) -> None:
    lines, (health, handshake, _) = serve_and_request(database_url, tmp_path, "")
    assert health.headers["x-request-id"] == "trace-abc.123"
    assert not any(line.startswith("{") for line in lines)
    (access,) = [line for line in lines if "GET /healthz" in line]
    assert access.endswith("[trace-abc.123]")
    (handshake_line,) = [line for line in lines if "GET /webhooks/whatsapp" in line]
    assert SECRETS["WHATSAPP_VERIFY_TOKEN"] not in handshake_line
    assert handshake_line.endswith(f"[{handshake.headers['x-request-id']}]")

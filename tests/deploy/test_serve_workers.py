"""`rallypoint serve --workers 2` as a real process: two server processes answer on the
one port (each request's access line carries the pid of the process that answered), and
SIGTERM to the parent stops both with status 0."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from gateway.cli import build_parser
from tests.deploy.test_serve_process import clean_env, free_port

REQUESTS = 64  # each on a new connection: the kernel hashes each to one of the sockets


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT, fork")
def test_two_processes_answer_on_one_port(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = clean_env(
        RALLYPOINT_DATABASE_URL=database_url,
        RALLYPOINT_PORT=str(port),
        RALLYPOINT_LOG_FORMAT="json",
        RALLYPOINT_WEB_CONCURRENCY="2",
        RALLYPOINT_SPOOL_DIR=str(tmp_path / "spool"),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve"],
        cwd=tmp_path,  # no .env from the repository
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(150, proc.kill)  # bounds every wait below (a loaded CI)
    watchdog.start()
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        ready = 0
        for line in proc.stderr:
            lines.append(line)
            ready += "Application startup complete" in line
            if ready == 2:
                break
        else:
            pytest.fail("serve ended before both processes were ready: " + "".join(lines))
        for _ in range(REQUESTS):
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
                assert client.get("/healthz").status_code == 200
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=30)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    records = [
        json.loads(line) for line in [*lines, *rest.splitlines(keepends=True)] if line[0] == "{"
    ]
    answered = [r for r in records if r["logger"] == "uvicorn.access" and "/healthz" in r["msg"]]
    assert len(answered) == REQUESTS
    pids = {r["pid"] for r in answered}
    assert len(pids) == 2 and proc.pid not in pids
    # Both stopped gracefully: each child logs its own shutdown.
    assert sum("Finished server process" in r["msg"] for r in records) == 2
    assert proc.returncode == 0, "".join(lines) + rest


def test_workers_must_be_a_small_positive_number(capsys: pytest.CaptureFixture[str]) -> None:
    assert build_parser().parse_args(["serve", "--workers", "4"]).workers == 4
    for bad in ("0", "x", "65"):
        with pytest.raises(SystemExit) as exited:
            build_parser().parse_args(["serve", "--workers", bad])
        assert exited.value.code == 2
        assert "give a number of processes from 1 to 64" in capsys.readouterr().err

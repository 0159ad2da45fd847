"""`rallypoint serve` as a real process: the Dockerfile's HEALTHCHECK command passes
against it (and fails with nothing listening), and SIGTERM ends it with status 0."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def healthcheck_command() -> list[str]:
    """The exec-form command of the Dockerfile's HEALTHCHECK, `python` made this one."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    (line,) = [line for line in text.splitlines() if line.startswith("HEALTHCHECK")]
    command = json.loads(line.split(" CMD ", 1)[1])
    assert command[0] == "python"
    return [sys.executable, *command[1:]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**values: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("RALLYPOINT_", "TWILIO_", "WHATSAPP_", "TELEGRAM_", "SMTP_"))
    }
    return {**env, "PYTHONPATH": str(ROOT), **values}


def test_the_dockerfile_runs_as_a_user_that_is_not_root() -> None:
    lines = (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert lines.index(next(line for line in lines if line.startswith("USER "))) < lines.index(
        next(line for line in lines if line.startswith("CMD "))
    )


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_serve_passes_the_healthcheck_and_exits_zero_on_sigterm(
    database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = clean_env(RALLYPOINT_DATABASE_URL=database_url, RALLYPOINT_PORT=str(port))
    down = subprocess.run(healthcheck_command(), env=env, capture_output=True, timeout=20)
    assert down.returncode != 0  # nothing listens yet: the check must fail
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve"],
        cwd=tmp_path,  # no .env from the repository
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(40, proc.kill)  # bounds every wait below
    watchdog.start()
    try:
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if "Uvicorn running on" in line:
                break
        else:
            pytest.fail("serve ended before it was ready: " + "".join(seen))
        up = subprocess.run(healthcheck_command(), env=env, capture_output=True, timeout=20)
        assert up.returncode == 0, up.stderr
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=20)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    assert proc.returncode == 0, "".join(seen) + rest

"""Run `rallypoint …` as its own process (`python -m gateway.cli`), with only the
variables given (none from this shell or a `.env`), without blocking the test's loop (a
provider fake may be serving on it)."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 60.0
PREFIXES = ("RALLYPOINT_", "TWILIO_", "WHATSAPP_", "TELEGRAM_", "SMTP_")


@dataclass(frozen=True)
class Ran:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


async def rallypoint(*args: str, cwd: Path, env: dict[str, str], stdin: bytes = b"") -> Ran:
    base = {k: v for k, v in os.environ.items() if not k.startswith(PREFIXES)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        *args,
        cwd=cwd,  # no .env from the repository
        env={**base, "PYTHONPATH": str(ROOT), **env},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return Ran(proc.returncode, out.decode(), err.decode())

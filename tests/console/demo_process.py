"""`rallypoint serve --demo` as a real subprocess, for the demo-mode tests and nothing
else: a free port, its own working directory (where it makes rallypoint-demo.db), the
credentials it prints, a bounded start and a kill at the end."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from channels.email.fake import free_port

START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
REAL_DATABASE = "rallypoint.db"
PROVIDER_PREFIXES = ("RALLYPOINT_", "TWILIO_", "WHATSAPP_", "TELEGRAM_", "SMTP_")


@dataclass
class DemoProcess:
    base_url: str
    workdir: Path
    email: str
    password: str
    api_key: str
    output: str

    def url(self, path: str = "/console/") -> str:
        return self.base_url + path

    def query(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        """Read the demo's own database file (it is SQLite by design)."""
        with sqlite3.connect(self.workdir / "rallypoint-demo.db") as db:
            return list(db.execute(sql, params).fetchall())


@asynccontextmanager
async def running_demo(workdir: Path) -> AsyncIterator[DemoProcess]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(PROVIDER_PREFIXES)}
    env.update(
        RALLYPOINT_PORT=str(port),
        RALLYPOINT_LOG_LEVEL="WARNING",
        # The configured database and credentials: the demo must use neither.
        RALLYPOINT_DATABASE_URL=f"sqlite:///{workdir / REAL_DATABASE}",
        TWILIO_ACCOUNT_SID="AC" + "0" * 32,
        TWILIO_AUTH_TOKEN="a-real-token-the-demo-must-not-use",
    )
    log = (workdir / "demo.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        "serve",
        "--demo",
        cwd=workdir,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=log,
    )
    try:
        assert process.stdout is not None
        output = await asyncio.wait_for(_until_ready(process.stdout), START_TIMEOUT)
        found = {name: re.search(rf"^\s*{name}:\s*(\S+)\s*$", output, re.M) for name in FIELDS}
        missing = [name for name, match in found.items() if match is None]
        assert not missing, f"the demo printed no {missing}: {output!r}"
        values = {name: match.group(1) for name, match in found.items() if match}
        yield DemoProcess(
            f"http://127.0.0.1:{port}",
            workdir,
            values["Email"],
            values["Password"],
            values["API key"],
            output,
        )
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                process.kill()
                await process.wait()
        log.close()


FIELDS = ("Email", "Password", "API key")


async def _until_ready(stdout: asyncio.StreamReader) -> str:
    lines: list[str] = []
    while True:
        line = await stdout.readline()
        if not line:
            raise RuntimeError("the demo exited before it was ready: " + "".join(lines))
        lines.append(line.decode())
        if "Ctrl-C" in lines[-1]:
            return "".join(lines)

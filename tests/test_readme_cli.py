"""Every `rallypoint …` line in the README's shell examples runs as written, in README
order, in a fresh folder as a reader's shell would run it (the venv's `bin` on PATH, as
`source .venv/bin/activate` puts it; a `.venv` beside it, as in a checkout), with Telegram
answered by its fake on a loopback port."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from channels.telegram.fake import FakeTelegramApi
from gateway.demo.loopback import LoopbackServer
from tests.gateway.cli_process import PREFIXES, ROOT

README = ROOT / "README.md"
BIN = Path(sys.executable).parent
COMMAND = re.compile(r"(^|\$\(|\|\s*|&&\s*)(\.venv/bin/)?rallypoint\s")
TOKEN, SECRET = "123456:AAE-readme-token", "readme-webhook-secret"


def readme_command_lines() -> list[str]:
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    return [line for block in blocks for line in block.splitlines() if COMMAND.search(line)]


@pytest.fixture
async def telegram() -> AsyncIterator[tuple[FakeTelegramApi, LoopbackServer]]:
    fake = FakeTelegramApi(token=TOKEN)
    server = LoopbackServer("telegram", fake.handler, lambda: None)
    await server.start()
    yield fake, server
    await server.stop()


async def run_line(line: str, cwd: Path, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        "bash",
        "-e",
        "-o",
        "pipefail",
        "-c",
        line,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # its own process group, so a timeout stops all of it
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 120)
    except TimeoutError:
        os.killpg(proc.pid, signal.SIGKILL)  # a line that does not end must not outlive us
        await proc.wait()
        raise AssertionError(f"{line!r} did not end within 120 s") from None
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def test_the_readme_has_the_operations_examples() -> None:
    lines = readme_command_lines()
    for command in ("doctor", "backup", "stats", "requeue", "telegram set-webhook", "import"):
        assert any(f"rallypoint {command}" in line for line in lines), command
    assert not any("[" in line.split("#")[0] for line in lines)  # no [optional] syntax


async def test_every_rallypoint_line_in_the_readme_runs(
    telegram: tuple[FakeTelegramApi, LoopbackServer], tmp_path: Path
) -> None:
    fake, server = telegram
    (tmp_path / ".venv").symlink_to(BIN.parent)
    (tmp_path / "people.csv").write_text("name,phone\nAmina,+254712345678\n", encoding="utf-8")
    (tmp_path / "nationbuilder-export.csv").write_text(
        "first_name,last_name,email,mobile_number,mobile_opt_in,tag_list,zip\n"
        'Baraka,Otieno,baraka@example.org,+254722000111,true,"driver, canvass",40100\n',
        encoding="utf-8",
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith(PREFIXES)}
    env = {
        **base,
        "PATH": f"{BIN}{os.pathsep}{base.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
        "RALLYPOINT_PUBLIC_URL": "https://rally.example.org",
        "RALLYPOINT_DEFAULT_REGION": "KE",
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "TELEGRAM_API_BASE": server.base_url,
    }
    lines = readme_command_lines()
    for line in lines:
        if "--team Nairobi" in line:  # the README's example team, made as the console would
            with sqlite3.connect(tmp_path / "rallypoint.db") as db:
                db.execute("INSERT INTO teams (name, created_at) VALUES ('Nairobi', '2026-12-01')")
        code, out, err = await run_line(line, tmp_path, env)
        assert code == 0, f"{line}\n{out}{err}"
        assert "error:" not in err, line
    assert fake.webhook_url == "https://rally.example.org/webhooks/telegram"
    assert list((tmp_path / "backups").iterdir())  # the backup line wrote its file

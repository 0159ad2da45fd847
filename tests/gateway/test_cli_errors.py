"""Every `rallypoint` command that fails says so in one `error:` line on stderr and exits
non-zero: a usage mistake, a bad variable, a database that is not there or not answering."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.test_serve_process import free_port
from tests.gateway.cli_process import rallypoint

COMMANDS = [
    ["migrate"],
    ["worker"],
    ["keys", "list"],
    ["users", "deactivate", "2"],
    ["import", "supporters.csv"],
    ["stats"],
    ["requeue", "--failed", "--since", "2026-12-01T00:00Z"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
async def test_a_database_that_does_not_answer_is_one_error_line(
    command: list[str], tmp_path: Path
) -> None:
    (tmp_path / "supporters.csv").write_text("name,phone\nAda,+14155550101\n")
    url = f"postgresql+asyncpg://rallypoint:db-secret@127.0.0.1:{free_port()}/rallypoint"
    ran = await rallypoint(*command, cwd=tmp_path, env={"RALLYPOINT_DATABASE_URL": url})
    assert ran.code != 0
    (line,) = ran.stderr.splitlines()
    assert line.startswith("error: "), line
    assert "db-secret" not in ran.output


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (
            ["stats"],
            {"RALLYPOINT_DATABASE_URL": "sqlite:////no/such/folder/rallypoint.db"},
            "error: RALLYPOINT_DATABASE_URL: no such directory /no/such/folder",
        ),
        (
            ["stats"],
            {"RALLYPOINT_PORT": "eighty"},
            "error: RALLYPOINT_PORT: Input should be a valid integer, unable to parse string "
            "as an integer",
        ),
        (
            ["keys", "create", "--role", "boss"],
            {},
            "error: rallypoint keys create: argument --role: invalid choice: 'boss' (choose "
            "from 'admin', 'coordinator', 'team_lead') (see rallypoint keys create --help)",
        ),
        (
            ["keys", "revoke", "99"],
            {},
            "error: no API key with id 99",
        ),
    ],
)
async def test_usage_and_settings_mistakes_are_one_error_line(
    args: list[str], env: dict[str, str], expected: str, tmp_path: Path
) -> None:
    env = {"RALLYPOINT_DATABASE_URL": f"sqlite:///{tmp_path / 'r.db'}", **env}
    ran = await rallypoint(*args, cwd=tmp_path, env=env)
    assert ran.code != 0
    assert ran.stderr.splitlines() == [expected]

"""`docker compose up` with nothing but the required variables set: every container the
compose file describes must build its settings, with the documented defaults. Docker cannot
run here, so the compose file is read and interpolated the way compose does."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from pydantic import AliasChoices

from gateway.settings import ALL_DEFAULT_ORDER, Settings

ROOT = Path(__file__).resolve().parents[2]
# ${VAR}, ${VAR:-default}, ${VAR-default}; `$$` is a literal dollar.
VARIABLE = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?-)(?P<default>[^}]*))?\}"
)


def interpolate(value: str, shell: dict[str, str]) -> str:
    """Compose's interpolation of `value` given the shell's (and .env's) variables."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, default = match.group("name", "op", "default")
        if name in shell and not (op == ":-" and shell[name] == ""):
            return shell[name]
        return default or ""

    return VARIABLE.sub(one, value)


def container_environments(shell: dict[str, str]) -> dict[str, dict[str, str]]:
    """Each Rallypoint service's environment, as its container would see it."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    found = {}
    for name, service in compose["services"].items():
        if service.get("image", "").startswith("rallypoint") or "build" in service:
            environment = service.get("environment") or {}
            found[name] = {
                key: interpolate("" if value is None else str(value), shell)
                for key, value in environment.items()
            }
    return found


def test_interpolation_follows_compose() -> None:
    shell = {"SET": "x", "EMPTY": ""}
    assert interpolate("${SET:-d}|${EMPTY:-d}|${EMPTY-d}|${UNSET-d}|${UNSET}|$$", shell) == (
        "x|d||d||$"
    )


@pytest.mark.parametrize("shell", [{}, {"SMTP_PORT": "", "RALLYPOINT_PUBLIC_URL": ""}])
def test_every_container_starts_with_defaults(
    shell: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    environments = container_environments(shell)
    assert {"migrate", "serve", "worker"} <= set(environments)
    for name, environment in environments.items():
        with monkeypatch.context() as patch:
            for key in environment:
                patch.delenv(key, raising=False)
            for key, value in environment.items():
                patch.setenv(key, value)
            settings = Settings(_env_file=None)  # type: ignore[call-arg]
        assert settings.database_url.startswith("postgresql+asyncpg://"), name
        assert settings.public_url == "http://127.0.0.1:8000", name
        assert settings.channel_order == list(ALL_DEFAULT_ORDER), name
        assert settings.max_attempts == 6, name
        assert (settings.smtp_port, settings.smtp_starttls, settings.smtp_host) == (
            587,
            True,
            None,
        ), name
        assert settings.bootstrap_admin_key is None, name
        assert settings.inbound_email_domains == [], name
    assert environments["serve"]["RALLYPOINT_INBOUND_SMTP_PORT"] == "2525"
    assert environments["serve"]["RALLYPOINT_RUN_DISPATCHER"] == "false"


def test_values_from_the_shell_reach_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    shell = {
        "RALLYPOINT_PUBLIC_URL": "https://rp.example.org",
        "RALLYPOINT_CHANNEL_ORDER": "sms,email",
        "SMTP_PORT": "465",
        "SMTP_STARTTLS": "false",
        "RALLYPOINT_MAX_ATTEMPTS": "3",
    }
    environment = container_environments(shell)["serve"]
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.public_url == "https://rp.example.org"
    assert settings.channel_order == ["sms", "email"]
    assert (settings.smtp_port, settings.smtp_starttls, settings.max_attempts) == (465, False, 3)


def test_empty_values_count_as_unset_for_every_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    names = []
    for field in Settings.model_fields.values():
        assert isinstance(field.validation_alias, AliasChoices)
        names += [str(name) for name in field.validation_alias.choices]
    for name in names:
        monkeypatch.delenv(name, raising=False)
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    for name in names:
        monkeypatch.setenv(name, "")
    assert Settings(_env_file=None) == defaults  # type: ignore[call-arg]


def test_an_empty_line_in_the_env_file_counts_as_unset(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("SMTP_PORT=\nRALLYPOINT_CHANNEL_ORDER=\n", encoding="utf-8")
    settings = Settings(_env_file=env_file)  # type: ignore[call-arg]
    assert settings.smtp_port == 587
    assert settings.channel_order == list(ALL_DEFAULT_ORDER)


def test_signal_cli_rest_api_is_optional_and_signal_is_off_by_default() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    signal = compose["services"]["signal-cli-rest-api"]
    # Behind a profile: a plain `docker compose up` neither pulls nor starts it.
    assert signal["profiles"] == ["signal"]
    assert signal["environment"]["MODE"] == "json-rpc"
    assert any(v.endswith(":/home/.local/share/signal-cli") for v in signal["volumes"])
    for name, service in compose["services"].items():
        assert "signal-cli-rest-api" not in (service.get("depends_on") or {}), name
    serve = container_environments({})["serve"]
    assert serve["SIGNAL_API_BASE"] == "" and serve["SIGNAL_NUMBER"] == ""


def test_the_spool_of_serve_is_on_a_volume() -> None:
    """Webhooks spooled while the database was away must survive a recreated container."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    serve = compose["services"]["serve"]
    spool = serve["environment"]["RALLYPOINT_SPOOL_DIR"]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in serve["volumes"]}
    assert mounts.get(spool) in compose["volumes"]
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert f"-o rallypoint -g rallypoint {spool}" in dockerfile  # owned by the service user

"""IMAP_* settings: empty means unset, and a value that cannot work is refused with an
error naming the variable, before anything connects."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.background import imap_config
from gateway.settings import Settings

REQUIRED = {"IMAP_HOST": "imap.example.org", "IMAP_USERNAME": "team", "IMAP_PASSWORD": "pw"}


def settings_from(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_defaults_and_empty_values(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from(
        monkeypatch, **REQUIRED, IMAP_PORT="", IMAP_MAILBOX="", IMAP_POLL_SECONDS=""
    )
    config = imap_config(settings)
    assert (config.host, config.port, config.tls) == ("imap.example.org", 993, True)
    assert (config.mailbox, config.processed_mailbox) == ("INBOX", "Rallypoint/Processed")
    assert config.poll_seconds == 60.0


def test_unset_host_reads_no_mailbox(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings_from(monkeypatch, IMAP_HOST="").imap_host is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("IMAP_PORT", "imaps"),
        ("IMAP_PORT", "70000"),
        ("IMAP_POLL_SECONDS", "0"),
        ("IMAP_POLL_SECONDS", "soon"),
        ("IMAP_TLS", "maybe"),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    with pytest.raises(ValidationError) as error:
        settings_from(monkeypatch, **REQUIRED, **{name: value})
    assert name in str(error.value)


@pytest.mark.parametrize("missing", ["IMAP_USERNAME", "IMAP_PASSWORD"])
def test_host_without_credentials_names_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    env = {k: v for k, v in REQUIRED.items() if k != missing}
    with pytest.raises(ValueError, match=missing):
        imap_config(settings_from(monkeypatch, **env))


def test_plain_imap_only_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="IMAP_TLS"):
        imap_config(settings_from(monkeypatch, **REQUIRED, IMAP_TLS="false"))
    for host in ("127.0.0.1", "localhost", "::1"):
        config = imap_config(
            settings_from(monkeypatch, **{**REQUIRED, "IMAP_HOST": host}, IMAP_TLS="false")
        )
        assert config.tls is False


def test_password_is_not_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError) as error:
        imap_config(
            settings_from(monkeypatch, **{**REQUIRED, "IMAP_PASSWORD": "s3cret-pw"}, IMAP_TLS="0")
        )
    assert "s3cret-pw" not in str(error.value)


def test_serve_stops_at_start_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from gateway.cli import main

    monkeypatch.chdir(tmp_path)  # no .env of the working tree
    monkeypatch.setenv("RALLYPOINT_DATABASE_URL", f"sqlite:///{tmp_path}/never.db")
    for name, value in {**REQUIRED, "IMAP_PASSWORD": "s3cret-pw", "IMAP_TLS": "false"}.items():
        monkeypatch.setenv(name, value)
    assert main(["serve"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: IMAP_TLS=false"), line
    assert "s3cret-pw" not in line

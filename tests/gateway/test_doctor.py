"""`rallypoint doctor` as a process, against the provider fakes served on loopback ports
and a real SMTP server: one line per check, exit 1 when any fails, never a secret."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from channels.email.fake import FakeSmtpServer
from channels.telegram.fake import FakeTelegramApi
from channels.twilio.fake import FakeTwilio
from channels.whatsapp_cloud.fake import FakeWhatsAppCloud
from gateway.demo.loopback import LoopbackServer
from tests.deploy.test_serve_process import free_port
from tests.gateway.cli_process import rallypoint

PUBLIC = "https://rally.example.org"
SID, AUTH_TOKEN = "AC" + "1" * 32, "twilio-auth-token-secret"
WA_TOKEN, WA_PHONE_ID = "EAAG-whatsapp-token-secret", "106540352242922"
TG_TOKEN, TG_SECRET = "123456:AAE-telegram-token-secret", "tg-webhook-secret"
SMTP_USER, SMTP_PASSWORD = "mailer", "smtp-password-secret"
SECRETS = (AUTH_TOKEN, WA_TOKEN, TG_TOKEN, TG_SECRET, SMTP_PASSWORD, "wa-app-secret")


@dataclass
class Providers:
    twilio: FakeTwilio
    whatsapp: FakeWhatsAppCloud
    telegram: FakeTelegramApi
    smtp: FakeSmtpServer
    servers: dict[str, LoopbackServer]

    def env(self, database_url: str, **overrides: str) -> dict[str, str]:
        values = {
            "RALLYPOINT_DATABASE_URL": database_url,
            "RALLYPOINT_PUBLIC_URL": PUBLIC,
            "TWILIO_ACCOUNT_SID": SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_SMS_FROM": "+14155550100",
            "TWILIO_API_BASE": self.servers["twilio"].base_url,
            "WHATSAPP_ACCESS_TOKEN": WA_TOKEN,
            "WHATSAPP_PHONE_NUMBER_ID": WA_PHONE_ID,
            "WHATSAPP_APP_SECRET": "wa-app-secret",
            "WHATSAPP_VERIFY_TOKEN": "wa-verify-token",
            "WHATSAPP_API_BASE": self.servers["whatsapp"].base_url + "/v21.0",
            "TELEGRAM_BOT_TOKEN": TG_TOKEN,
            "TELEGRAM_WEBHOOK_SECRET": TG_SECRET,
            "TELEGRAM_API_BASE": self.servers["telegram"].base_url,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.smtp.port),
            "SMTP_FROM": "Organizers <team@rally.example.org>",
            "SMTP_USERNAME": SMTP_USER,
            "SMTP_PASSWORD": SMTP_PASSWORD,
            "SMTP_STARTTLS": "false",
        }
        return {**values, **overrides}


@pytest.fixture
async def providers() -> AsyncIterator[Providers]:
    twilio = FakeTwilio(SID, AUTH_TOKEN)
    whatsapp = FakeWhatsAppCloud(WA_TOKEN, WA_PHONE_ID)
    telegram = FakeTelegramApi(token=TG_TOKEN)
    servers = {
        "twilio": LoopbackServer("twilio", twilio, lambda: None),
        "whatsapp": LoopbackServer("whatsapp", whatsapp, lambda: None),
        "telegram": LoopbackServer("telegram", telegram.handler, lambda: None),
    }
    for server in servers.values():
        await server.start()
    with FakeSmtpServer(credentials=(SMTP_USER, SMTP_PASSWORD)) as smtp:
        yield Providers(twilio, whatsapp, telegram, smtp, servers)
    for server in servers.values():
        await server.stop()


async def test_doctor_passes_when_everything_is_set_up(
    providers: Providers, database_url: str, tmp_path: Path
) -> None:
    providers.twilio.add_number("+14155550100", f"{PUBLIC}/webhooks/twilio")
    providers.telegram.webhook_url = f"{PUBLIC}/webhooks/telegram"
    ran = await rallypoint("doctor", cwd=tmp_path, env=providers.env(database_url))
    assert ran.code == 0, ran.output
    lines = ran.stdout.splitlines()
    assert all(line.startswith("ok    ") for line in lines), lines
    names = [line[6:].split(":", 1)[0] for line in lines]
    assert names == [
        "database",
        "database migrations",
        "public url",
        "twilio credentials",
        "twilio webhook of +14155550100",
        "whatsapp credentials",
        "telegram credentials",
        "telegram webhook",
        "email smtp",
    ]
    assert f"ok    twilio webhook of +14155550100: {PUBLIC}/webhooks/twilio" in lines
    assert f"ok    telegram webhook: {PUBLIC}/webhooks/telegram" in lines
    assert "ok    telegram credentials: bot @rallypoint_bot" in lines
    assert any("15550783881 (Rallypoint Organizing, quality GREEN)" in line for line in lines)
    assert any(line.endswith("connect, EHLO, login accepted") for line in lines)
    assert ran.stderr == ""
    for secret in SECRETS:
        assert secret not in ran.output


async def test_doctor_names_each_failure_and_exits_1(providers: Providers, tmp_path: Path) -> None:
    providers.twilio.add_number("+14155550100", "https://old-host.example.org/sms")
    providers.telegram.webhook_url = ""
    env = providers.env(
        f"sqlite:///{tmp_path / 'missing.db'}",
        RALLYPOINT_PUBLIC_URL="http://rally.example.org",
        WHATSAPP_PHONE_NUMBER_ID="999999999",
        SMTP_PASSWORD="wrong-password",
    )
    ran = await rallypoint("doctor", cwd=tmp_path, env=env)
    assert ran.code == 1
    lines = ran.stdout.splitlines()
    expected = {
        "database": "no such file (run `rallypoint migrate`)",
        "public url": "http://rally.example.org: providers need an https URL",
        "twilio webhook of +14155550100": "Twilio posts to https://old-host.example.org/sms, "
        "not http://rally.example.org/webhooks/twilio",
        "whatsapp credentials": "Meta answered 400 (Unsupported get request.",
        "telegram webhook": "none set (run `rallypoint telegram set-webhook`)",
        "email smtp": "535",
    }
    for name, reason in expected.items():
        (line,) = [line for line in lines if line.startswith(f"FAIL  {name}: ")]
        assert reason in line, line
    assert "ok    twilio credentials: account " + SID + " is active" in lines
    assert not (tmp_path / "missing.db").exists()  # doctor made no empty database
    assert ran.stderr.splitlines() == [f"error: 6 of {len(lines)} checks failed"]
    for secret in (*SECRETS, "wrong-password"):
        assert secret not in ran.output


async def test_doctor_reports_pending_migrations_and_wrong_credentials(
    providers: Providers, database_url: str, tmp_path: Path
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("an unmigrated database is made here as a SQLite file")
    empty = tmp_path / "empty.db"
    empty.touch()
    closed = f"http://127.0.0.1:{free_port()}"
    env = providers.env(
        f"sqlite:///{empty}",
        TWILIO_AUTH_TOKEN="not-the-token",
        TELEGRAM_API_BASE=closed,
    )
    ran = await rallypoint("doctor", cwd=tmp_path, env=env)
    assert ran.code == 1
    lines = ran.stdout.splitlines()
    assert any(
        line.startswith("FAIL  database migrations: at no revision (never migrated), head is ")
        for line in lines
    )
    assert "FAIL  twilio credentials: Twilio answered 401 (20003: Authenticate)" in lines
    assert "FAIL  telegram credentials: getMe: no answer from the provider (ConnectError)" in lines
    assert "not-the-token" not in ran.output


async def test_doctor_without_channels_fails_on_that(database_url: str, tmp_path: Path) -> None:
    ran = await rallypoint(
        "doctor",
        cwd=tmp_path,
        env={"RALLYPOINT_DATABASE_URL": database_url, "RALLYPOINT_PUBLIC_URL": PUBLIC},
    )
    assert ran.code == 1
    assert ran.stdout.splitlines()[-1] == (
        "FAIL  channels: none is configured (see README, Configuration)"
    )
    assert ran.stderr.splitlines() == ["error: 1 of 4 checks failed"]

"""The operations commands: `telegram set-webhook`, `doctor`, `backup`, `stats`,
`requeue` (registered on the `rallypoint` parser by `add_commands`)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from gateway.settings import Settings

if TYPE_CHECKING:
    from channels.checks import CheckResult
    from gateway.stats import Stats

TIMEOUT = httpx.Timeout(15.0, connect=5.0)


def error(message: str, code: int = 1) -> int:
    """The one `error:` line a failed command prints, and its exit status."""
    print(f"error: {message}", file=sys.stderr)
    return code


def quiet_http_log() -> None:
    """httpx logs each request at INFO: noise around a command's one line of answer."""
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))


def telegram_webhook_url(settings: Settings) -> str:
    return settings.public_url.rstrip("/") + "/webhooks/telegram"


def cmd_telegram_set_webhook(settings: Settings, _args: argparse.Namespace) -> int:
    from channels.telegram.webhook_setup import TelegramCallFailed, set_webhook
    from gateway.channel_configs import telegram_config

    quiet_http_log()
    config = telegram_config(settings)
    if config is None:
        return error("Telegram is off: set TELEGRAM_BOT_TOKEN and TELEGRAM_WEBHOOK_SECRET", 2)
    url = telegram_webhook_url(settings)

    async def run() -> None:
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            await set_webhook(config, client, url)

    try:
        asyncio.run(run())
    except TelegramCallFailed as exc:
        return error(str(exc))
    print(f"telegram webhook set: {url} (with TELEGRAM_WEBHOOK_SECRET as its secret token)")
    return 0


def cmd_doctor(settings: Settings, _args: argparse.Namespace) -> int:
    """One line per check; exit 1 when any fails."""
    from gateway.doctor import render, run_checks

    quiet_http_log()

    async def run() -> list[CheckResult]:
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            return await run_checks(settings, client)

    results = asyncio.run(run())
    for result in results:
        print(render(result))
    failures = sum(not r.ok for r in results)
    if failures:
        return error(f"{failures} of {len(results)} checks failed")
    return 0


def cmd_backup(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from gateway.backup import BackupRefused, backup

    target = Path(args.path)
    try:
        size = backup(settings.database_url, target)
    except (BackupRefused, OSError) as exc:
        return error(str(exc), getattr(exc, "code", 1))
    print(f"backed up the database to {target} ({size} bytes, integrity check ok)")
    return 0


def cmd_stats(settings: Settings, args: argparse.Namespace) -> int:
    import json

    from gateway.keys import cli_session
    from gateway.stats import read_stats
    from storage.clock import utcnow

    async def run() -> Stats:
        async with cli_session(settings) as session:
            return await read_stats(session, utcnow())

    stats = asyncio.run(run())
    if args.json:
        print(json.dumps(stats.as_dict()))
    else:
        print("\n".join(stats.lines()))
    return 0


def parse_since(value: str) -> datetime:
    """An ISO 8601 time (`2026-12-01T00:00Z`, `2026-12-01`); without a zone it is UTC."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--since {value!r} is not an ISO 8601 time (e.g. 2026-12-01T00:00Z)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def cmd_requeue(settings: Settings, args: argparse.Namespace) -> int:
    from gateway.audit import record
    from gateway.keys import cli_session
    from routing.dispatch.requeue import requeue_failed
    from storage.clock import utcnow

    async def run() -> int:
        async with cli_session(settings) as session:
            now = utcnow()
            count = await requeue_failed(session, since=args.since, now=now)
            if count:
                target = f"messages failed since {args.since.isoformat()}: {count}"
                record(session, "messages_requeued", at=now, actor="cli", target=target)
            await session.commit()
            return count

    count = asyncio.run(run())
    since = args.since.astimezone(UTC).isoformat(timespec="minutes")
    print(f"re-queued {count} failed message{'' if count == 1 else 's'} (failed since {since})")
    return 0


def add_commands(sub: argparse._SubParsersAction[Any]) -> None:
    telegram = sub.add_parser("telegram", help="Telegram bot set-up").add_subparsers(
        dest="telegram_command", required=True
    )
    telegram.add_parser(
        "set-webhook",
        help="register RALLYPOINT_PUBLIC_URL/webhooks/telegram with the secret token",
    ).set_defaults(func=cmd_telegram_set_webhook)
    sub.add_parser(
        "doctor",
        help="check the database, the public URL, and each configured provider's "
        "credentials and webhook URL (one line per check; exit 1 if any fails)",
    ).set_defaults(func=cmd_doctor)
    backup = sub.add_parser(
        "backup", help="a consistent copy of the SQLite database, taken while it runs"
    )
    backup.add_argument("path", help="the file to write (must not exist)")
    backup.set_defaults(func=cmd_backup)
    stats = sub.add_parser(
        "stats", help="supporters by channel and consent, messages of the last 24 h, outbox"
    )
    stats.add_argument("--json", action="store_true", help="one JSON object instead of lines")
    stats.set_defaults(func=cmd_stats)
    requeue = sub.add_parser(
        "requeue", help="send failed messages again (each once, on the channel it failed on)"
    )
    requeue.add_argument(
        "--failed", action="store_true", required=True, help="the failed outbound messages"
    )
    requeue.add_argument(
        "--since",
        type=parse_since,
        required=True,
        help="those that failed at or after this time (ISO 8601: 2026-12-01T00:00Z)",
    )
    requeue.set_defaults(func=cmd_requeue)

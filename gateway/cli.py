"""`rallypoint serve | worker | migrate | keys create|list|revoke|rotate-encryption |
users create|list|deactivate | import | telegram set-webhook | doctor | backup | stats |
requeue`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Coroutine, Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError

from gateway.cli_errors import OneLineErrors, sqlite_folder
from gateway.ops_cli import add_commands as add_ops_commands
from gateway.settings import Settings

log = logging.getLogger("rallypoint")


def _configure_logging(settings: Settings) -> None:
    from gateway.log_setup import configure_logging

    configure_logging(settings.log_level, settings.log_format)


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    if args.demo:
        from gateway.demo.run import serve_demo

        return run_loop(serve_demo(settings))

    from gateway.app import create_app
    from gateway.background import imap_config, listener_tls_context
    from gateway.uvicorn_server import QuietExitServer

    if settings.inbound_smtp_port:
        try:  # a bad TLS setting is one line here, not a traceback at start-up
            listener_tls_context(settings)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if settings.imap_host:
        try:
            imap_config(settings)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    refused = run_loop(_check_encryption(settings))
    if refused:
        return refused
    workers = args.workers if args.workers is not None else settings.web_concurrency
    if workers > 1:
        return _serve_processes(settings, workers)
    QuietExitServer(_uvicorn_config(create_app(settings, run_background=True, settle=True))).run()
    return 0


def _uvicorn_config(app: Any) -> Any:
    import uvicorn

    settings: Settings = app.state.ctx.settings
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        # Access lines are INFO: above that level uvicorn need not build one per request.
        access_log=logging.getLevelNamesMapping().get(settings.log_level.upper(), 0)
        <= logging.INFO,
        timeout_graceful_shutdown=10,
        proxy_headers=True,
        log_config=None,  # our handler, format and request ids (gateway/log_setup.py)
    )


def _serve_processes(settings: Settings, workers: int) -> int:
    """`serve --workers N`: N processes on one port (gateway/serve_processes.py)."""
    from gateway.app import create_app
    from gateway.serve_processes import ChildServer, reuseport_socket, run_processes, supported

    reason = supported()
    if reason is not None:
        print(f"error: {reason}", file=sys.stderr)
        return 2
    try:  # the port checked once here: a bind error is one line, not N tracebacks
        reuseport_socket(settings.host, settings.port).close()
    except OSError as exc:
        print(f"error: cannot listen on {settings.host}:{settings.port}: {exc}", file=sys.stderr)
        return 2

    def serve_child(index: int) -> int:
        sock = reuseport_socket(settings.host, settings.port)
        # Process 0 runs the background services; the others answer HTTP only.
        app = create_app(settings, run_background=index == 0, settle=True)
        logging.getLogger("rallypoint").info(
            "serve process %s of %s on http://%s:%s",
            index + 1,
            workers,
            settings.host,
            settings.port,
        )
        ChildServer(_uvicorn_config(app)).run(sockets=[sock])
        return 0

    return run_processes(workers, serve_child)


async def _check_encryption(settings: Settings) -> int:
    """The keys against the database before serving: a mismatch is one line and exit 2."""
    from storage.crypto_setup import EncryptionSetupError, setup_encryption
    from storage.db import is_sqlite, make_engine
    from storage.migrate import upgrade

    if is_sqlite(settings.database_url):
        await upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        await setup_encryption(engine, settings.encryption_keys)
    except EncryptionSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        await engine.dispose()
    return 0


def run_loop(main: Coroutine[Any, Any, int]) -> int:
    """Run `main` on uvloop (as `serve` does under uvicorn) where it is installed: the
    dispatcher spends most of its time in the event loop's own bookkeeping."""
    try:
        import uvloop
    except ImportError:  # e.g. Windows: the standard loop
        return asyncio.run(main)
    return uvloop.run(main)


def cmd_worker(settings: Settings, _args: argparse.Namespace) -> int:
    from gateway.worker import run_worker

    return run_loop(run_worker(settings))


def cmd_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from storage.migrate import upgrade_sync

    upgrade_sync(settings.database_url)
    print("database is up to date", file=sys.stderr)
    return 0


def cmd_keys_create(settings: Settings, args: argparse.Namespace) -> int:
    from gateway.keys import create_key, parse_duration

    try:
        expires_in = parse_duration(args.expires_in) if args.expires_in else None
        key = asyncio.run(
            create_key(
                settings, role=args.role, team=args.team, name=args.name, expires_in=expires_in
            )
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(key)
    return 0


def _cell(value: object) -> str:
    """A `keys list` column: `-` for nothing, times to the second, always one line."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return " ".join(str(value).split()) or "-"


def cmd_keys_list(settings: Settings, _args: argparse.Namespace) -> int:
    """One tab-separated line per key, revoked ones too; never the key or its hash."""
    from gateway.keys import all_keys

    print("id\trole\tteam\tname\tprefix\tcreated_at\tlast_used_at\trevoked_at\texpires_at")
    for row, team in asyncio.run(all_keys(settings)):
        columns = (row.id, row.role, team, row.name, row.prefix, row.created_at)
        times = (row.last_used_at, row.revoked_at, row.expires_at)
        print("\t".join(_cell(v) for v in (*columns, *times)))
    return 0


def cmd_keys_revoke(settings: Settings, args: argparse.Namespace) -> int:
    from gateway.keys import KeyNotFound, LastAdminKey, revoke

    try:
        row, just_now = asyncio.run(revoke(settings, args.id))
    except (KeyNotFound, LastAdminKey) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if just_now:
        print(f"revoked key {row.id} ({row.role}): refused from now on", file=sys.stderr)
    else:
        print(f"key {row.id} was already revoked at {_cell(row.revoked_at)}", file=sys.stderr)
    return 0


def cmd_users_create(settings: Settings, args: argparse.Namespace) -> int:
    """The password is one line on stdin (never an argument: it would show in `ps`)."""
    from gateway.users import cli_create_user

    password = sys.stdin.readline().rstrip("\r\n")
    try:
        row = asyncio.run(
            cli_create_user(
                settings,
                email=args.email,
                password=password,
                role=args.role,
                team=args.team,
                name=args.name,
            )
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"created user {row.id} ({row.email}, {row.role})", file=sys.stderr)
    return 0


def cmd_users_list(settings: Settings, _args: argparse.Namespace) -> int:
    """One tab-separated line per user, inactive ones too; never a password hash."""
    from gateway.users import cli_all_users

    print("id\temail\trole\tteam\tname\tactive\tcreated_at\tlast_sign_in_at")
    for row, team in asyncio.run(cli_all_users(settings)):
        columns = (row.id, row.email, row.role, team, row.name, "yes" if row.active else "no")
        print("\t".join(_cell(v) for v in (*columns, row.created_at, row.last_sign_in_at)))
    return 0


def cmd_users_deactivate(settings: Settings, args: argparse.Namespace) -> int:
    from gateway.users import UserNotFound, cli_deactivate

    try:
        row = asyncio.run(cli_deactivate(settings, args.id))
    except UserNotFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"deactivated user {row.id} ({row.email}): signed out everywhere", file=sys.stderr)
    return 0


def cmd_keys_rotate_encryption(settings: Settings, args: argparse.Namespace) -> int:
    from storage.crypto_setup import EncryptionSetupError
    from storage.rotation import rotate_encryption

    async def rotate() -> int:
        from storage.db import is_sqlite, make_engine
        from storage.migrate import upgrade

        if is_sqlite(settings.database_url):
            await upgrade(settings.database_url)
        engine = make_engine(settings.database_url)
        try:
            report = await rotate_encryption(
                engine,
                settings.encryption_keys,
                batch=args.batch,
                progress=lambda line: print(line, file=sys.stderr, flush=True),
            )
        finally:
            await engine.dispose()
        print(
            f"rotated: {report.rows_read} rows checked, {report.values_written} values "
            f"rewritten in {report.seconds:.1f} s ({report.rows_per_second:,.0f} rows/s)",
            file=sys.stderr,
        )
        return 0

    try:
        return asyncio.run(rotate())
    except (EncryptionSetupError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    import json

    from gateway.import_file import import_file
    from gateway.import_rejects import RejectsFile
    from routing.people.importer import ImportFileError, ImportOptions
    from storage.crypto_setup import EncryptionSetupError

    def progress(rows: int) -> None:
        print(f"{rows} rows read", file=sys.stderr, flush=True)

    try:
        with RejectsFile(args.rejects) as rejects:
            options = ImportOptions(
                dry_run=args.dry_run,
                create_fields=args.create_fields,
                merge_duplicates=args.merge_duplicates,
                partial=args.partial,
                progress=progress,
                on_reject=rejects.write if args.rejects else None,
            )
            summary = asyncio.run(import_file(settings, args.file, team=args.team, options=options))
    except (ImportFileError, OSError, EncryptionSetupError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary.as_dict()))
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"give a number of processes from 1 to 64, not {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrors(prog="rallypoint", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="HTTP server: webhooks, REST API and console")
    serve.add_argument(
        "--demo",
        action="store_true",
        help="try it without provider accounts: fake providers on this computer, a demo "
        "organization in ./rallypoint-demo.db (made anew at each start) and the Simulator",
    )
    serve.add_argument(
        "--workers",
        type=_positive,
        help="server processes on the one port (SO_REUSEPORT; default "
        "RALLYPOINT_WEB_CONCURRENCY or 1); the first also runs the background services. "
        "For PostgreSQL: SQLite has one writer",
    )
    serve.set_defaults(func=cmd_serve)
    sub.add_parser("worker", help="the dispatcher alone (outbox to providers)").set_defaults(
        func=cmd_worker
    )
    sub.add_parser("migrate", help="bring the database schema up to date").set_defaults(
        func=cmd_migrate
    )
    keys = sub.add_parser("keys", help="API keys").add_subparsers(
        dest="keys_command", required=True
    )
    create = keys.add_parser("create", help="print a new API key once (only its hash is stored)")
    create.add_argument("--role", required=True, choices=["admin", "coordinator", "team_lead"])
    create.add_argument("--team", help="team id or name (required for team_lead)")
    create.add_argument("--name", help="a label for the key")
    create.add_argument("--expires-in", help="refuse the key after this long: 90d, 12h or 2w")
    create.set_defaults(func=cmd_keys_create)
    keys.add_parser("list", help="every key, revoked ones too (never the key itself)").set_defaults(
        func=cmd_keys_list
    )
    rotate = keys.add_parser(
        "rotate-encryption",
        help="re-encrypt stored data under the newest RALLYPOINT_ENCRYPTION_KEYS key "
        "(also encrypts a database written without keys); resumable, safe while serving",
    )
    rotate.add_argument("--batch", type=int, default=1000, help="rows per transaction")
    rotate.set_defaults(func=cmd_keys_rotate_encryption)
    revoke = keys.add_parser("revoke", help="revoke a key at once (its row stays, for audit)")
    revoke.add_argument("id", type=int, help="the key's id (from keys list)")
    revoke.set_defaults(func=cmd_keys_revoke)
    users = sub.add_parser("users", help="console users").add_subparsers(
        dest="users_command", required=True
    )
    ucreate = users.add_parser("create", help="create a user; the password is read from stdin")
    ucreate.add_argument("--email", required=True)
    ucreate.add_argument("--role", required=True, choices=["admin", "coordinator", "team_lead"])
    ucreate.add_argument("--team", help="team id or name (required for team_lead)")
    ucreate.add_argument("--name", help="the person's name")
    ucreate.set_defaults(func=cmd_users_create)
    users.add_parser("list", help="every user (never a password)").set_defaults(func=cmd_users_list)
    deactivate = users.add_parser("deactivate", help="refuse a user and end their sessions")
    deactivate.add_argument("id", type=int, help="the user's id (from users list)")
    deactivate.set_defaults(func=cmd_users_deactivate)
    importer = sub.add_parser("import", help="import supporters from a CSV file")
    importer.add_argument(
        "file",
        help="CSV with a header row (name, phone, whatsapp, ...; or an Action Network, "
        "Mobilize, EveryAction/VAN or NationBuilder export)",
    )
    importer.add_argument("--team", help="import as this team's lead (team id or name)")
    importer.add_argument(
        "--dry-run", action="store_true", help="report what would happen; write nothing"
    )
    importer.add_argument(
        "--create-fields",
        action="store_true",
        help="make a text custom field of each column that names none (else: reported)",
    )
    importer.add_argument(
        "--merge-duplicates",
        action="store_true",
        help="a row repeating an earlier row's address updates it (else: rejected)",
    )
    importer.add_argument(
        "--partial",
        action="store_true",
        help="import the readable rows of a file with unreadable ones (else: nothing)",
    )
    importer.add_argument(
        "--rejects", metavar="PATH", help="write the rejected rows, with row and reason, here"
    )
    importer.set_defaults(func=cmd_import)
    add_ops_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:  # one line per wrong variable would be several: the first
        problem = exc.errors()[0]
        name = ".".join(str(part) for part in problem["loc"]).upper() or "a setting"
        print(f"error: {name}: {problem['msg']}", file=sys.stderr)
        return 2
    _configure_logging(settings)
    from storage.crypto import KeyFormatError, parse_keys

    try:
        parse_keys(settings.encryption_keys)
    except KeyFormatError as exc:  # names the variable and the key's position, not the key
        print(f"error: {exc}", file=sys.stderr)
        return 2
    folder = sqlite_folder(settings.database_url)
    if folder is not None and not folder.is_dir():  # aiosqlite fails on it untidily
        print(f"error: RALLYPOINT_DATABASE_URL: no such directory {folder}", file=sys.stderr)
        return 2
    try:
        code: int = args.func(settings, args)
    except DBAPIError as exc:
        log.debug("database error", exc_info=True)
        reason = (str(exc.orig).splitlines() or [""])[0] or type(exc.orig).__name__
        print(f"error: database: {reason}", file=sys.stderr)
        return 1
    except OSError as exc:
        log.debug("operating system error", exc_info=True)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())

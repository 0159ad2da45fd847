"""`rallypoint import FILE.csv`: the REST import's rules, run against the configured database."""

from __future__ import annotations

from gateway.audit import record
from gateway.settings import Settings
from routing.people.importer import ImportFileError, ImportOptions, ImportSummary, import_csv
from routing.webhooks import events as webhook_events
from storage.clock import utcnow
from storage.crypto_setup import setup_encryption
from storage.db import is_sqlite, make_engine, make_session_factory
from storage.migrate import upgrade
from storage.queries import find_team


async def import_file(
    settings: Settings,
    path: str,
    *,
    team: str | None = None,
    options: ImportOptions | None = None,
) -> ImportSummary:
    """`rallypoint import FILE.csv`: the REST import's rules, against the configured database."""
    if is_sqlite(settings.database_url):
        await upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        await setup_encryption(engine, settings.encryption_keys)
        subscribed = webhook_events.Subscribed()
        await subscribed.refresh(engine)  # imported supporters are `supporter.created`
        sessions = make_session_factory(engine, info={webhook_events.SUBSCRIBED: subscribed})
        lead_team_id = None
        if team is not None:
            async with sessions() as session:
                found = await find_team(session, team)
            if found is None:
                raise ImportFileError(f"no team {team!r}")
            lead_team_id = found.id
        with open(path, "rb") as stream:  # noqa: ASYNC230 - a local file, read in chunks
            summary = await import_csv(
                sessions,
                stream,
                clock=utcnow,
                default_region=settings.default_region,
                lead_team_id=lead_team_id,
                erasure_key=settings.erasure_key,
                options=options,
            )
        if summary.dry_run:
            return summary
        async with sessions() as session:
            record(
                session,
                "supporters_imported",
                at=utcnow(),
                actor="cli",
                target=summary.audit_target(),
            )
            await session.commit()
        return summary
    finally:
        await engine.dispose()

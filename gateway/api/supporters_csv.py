"""/api/v1/supporters/import and /export: supporters in and out as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, File, HTTPException, Query, Request, Response, UploadFile, status
from fastapi.responses import StreamingResponse
from fastapi.routing import APIRoute
from sqlmodel import col, select
from starlette.datastructures import UploadFile as StarletteUpload
from starlette.types import Message

from gateway.api.problems import errors
from gateway.api.schemas_supporters import ImportSummary
from gateway.api.scope import lead_team, supporter_scope
from gateway.audit import record, request_ip
from gateway.auth import AnyRole, Context, Principal
from gateway.context import GatewayContext
from routing.people.csv_formulas import escape_cell
from routing.people.fields import all_fields
from routing.people.importer import ADDRESS_COLUMNS, ImportFileError, ImportOptions, import_csv
from routing.people.importer import ImportSummary as RowsImported
from storage.field_values import values_by_supporter
from storage.models import Supporter
from storage.queries import addresses_by_supporter, tags_by_supporter, teams_by_supporter

router = APIRouter(prefix="/supporters", tags=["supporters"])

EXPORT_COLUMNS = (
    "id",
    "name",
    *ADDRESS_COLUMNS,
    "preferred_channels",
    "language",
    "timezone",
    "tags",
    "teams",
    "opted_out",
    "data_saver",
    "last_inbound_at",
)
# Then one column per custom field, by name. The columns between id and opted_out, and the
# custom fields: text, formula-escaped (routing/people/csv_formulas.py).
_TEXT_COLUMNS = EXPORT_COLUMNS[1:-3]
_BATCH = 500


def import_too_large(limit: int) -> HTTPException:
    return HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE,
        f"the import is larger than {limit} bytes (RALLYPOINT_MAX_IMPORT_BYTES); "
        "split the file and import the parts",
    )


class ImportSizeLimit(APIRoute):
    """The import's route: a request body over `max_import_bytes` is refused with 413
    before the form is parsed and anything written, reading no more than the limit (a
    declared Content-Length over it is refused unread; a streamed body as soon as it passes
    it)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def limited(request: Request) -> Response:
            ctx: GatewayContext = request.app.state.ctx
            limit = ctx.settings.max_import_bytes
            declared = request.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > limit:
                raise import_too_large(limit)
            received = 0

            async def receive() -> Message:
                nonlocal received
                message = await request.receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > limit:
                        raise import_too_large(limit)
                return message

            return await handler(Request(request.scope, receive))

        return limited


async def run_import(
    file: StarletteUpload,
    principal: Principal,
    ctx: GatewayContext,
    options: ImportOptions | None = None,
) -> RowsImported:
    """The import both this route and the console's import page run (a team lead's rows
    go to their team); raises ImportFileError when the file itself is unusable."""
    if options is not None and options.create_fields and principal.is_team_lead:
        raise ImportFileError("a team lead cannot create custom fields; ask a coordinator")
    return await import_csv(
        ctx.sessions,
        file.file,
        clock=ctx.clock,
        default_region=ctx.settings.default_region,
        lead_team_id=lead_team(principal),
        erasure_key=ctx.settings.erasure_key,
        options=options,
    )


async def import_supporters(
    file: Annotated[UploadFile, File(description="CSV, UTF-8, header row")],
    request: Request,
    principal: AnyRole,
    ctx: Context,
    dry_run: Annotated[bool, Query(description="report what would happen; write nothing")] = False,
    create_fields: Annotated[
        bool, Query(description="columns naming no custom field become text fields")
    ] = False,
    merge_duplicates: Annotated[
        bool, Query(description="a row repeating an earlier row's address updates it")
    ] = False,
    partial: Annotated[
        bool, Query(description="import the readable rows of a file with unreadable ones")
    ] = False,
) -> ImportSummary:
    """Create or update supporters from a CSV (ours, or an Action Network, Mobilize,
    EveryAction/VAN or NationBuilder export); bad rows are reported and write nothing."""
    options = ImportOptions(
        dry_run=dry_run,
        create_fields=create_fields,
        merge_duplicates=merge_duplicates,
        partial=partial,
    )
    try:
        summary = await run_import(file, principal, ctx, options)
    except ImportFileError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    if dry_run:
        return ImportSummary(**summary.as_dict())
    async with ctx.sessions() as session:
        record(
            session,
            "supporters_imported",
            at=ctx.clock(),
            actor=principal.label,
            target=summary.audit_target(),
            ip=request_ip(request),
        )
        await session.commit()
    return ImportSummary(**summary.as_dict())


router.add_api_route(
    "/import",
    import_supporters,
    methods=["POST"],
    response_model=ImportSummary,
    route_class_override=ImportSizeLimit,
    responses=errors({413: "the body is larger than RALLYPOINT_MAX_IMPORT_BYTES"}),
)


@router.get("/export", response_class=StreamingResponse)
async def export_supporters(principal: AnyRole, ctx: Context) -> StreamingResponse:
    """Every visible supporter as CSV (the import's columns plus id, opted_out,
    last_inbound_at, then one column per custom field); a text cell a spreadsheet would
    run as a formula is escaped with a leading quote."""
    scope = supporter_scope(principal)

    async with ctx.sessions() as session:
        custom = [f.name for f in await all_fields(session)]

    async def rows() -> AsyncIterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([*EXPORT_COLUMNS, *custom])
        after = 0
        while True:
            async with ctx.sessions() as session:
                stmt = select(Supporter).where(col(Supporter.id) > after)
                if scope is not None:
                    stmt = stmt.where(scope)
                batch = list(
                    (await session.exec(stmt.order_by(col(Supporter.id)).limit(_BATCH))).all()
                )
                ids = [s.id for s in batch if s.id is not None]
                addresses = await addresses_by_supporter(session, ids)
                tags = await tags_by_supporter(session, ids)
                teams = await teams_by_supporter(session, ids)
                values = await values_by_supporter(session, ids)
            for s in batch:
                assert s.id is not None
                by_channel = {a.channel: a.address for a in addresses[s.id]}
                cells = [
                    s.name,
                    *(by_channel.get(channel, "") for channel in ADDRESS_COLUMNS.values()),
                    "|".join(s.preferred_channels or []),
                    s.language or "",
                    s.timezone or "",
                    "|".join(tags[s.id]),
                    "|".join(t.name for t in teams[s.id]),
                ]
                writer.writerow(
                    [
                        s.id,
                        *map(escape_cell, _TEXT_COLUMNS, cells),
                        "true" if s.opted_out else "false",
                        "true" if s.data_saver else "false",
                        s.last_inbound_at.isoformat() if s.last_inbound_at else "",
                        *(escape_cell(name, values[s.id].get(name, "")) for name in custom),
                    ]
                )
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            if len(batch) < _BATCH:
                return
            after = ids[-1]

    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="supporters.csv"'},
    )

"""CSV import in the console (GET/POST /console/supporters/import): the same import, size
limit and rules as POST /api/v1/supporters/import; the result page gives the created and
updated counts and every rejected row with its reason (escaped: rows are what a file said)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from starlette.datastructures import UploadFile

from gateway.api.supporters_csv import ImportSizeLimit, run_import
from gateway.console.security import CurrentUser
from gateway.console.templating import render
from routing.people.importer import COLUMNS, ImportFileError, ImportOptions

router = APIRouter()


def _page(request: Request, user: CurrentUser, **context: object) -> dict[str, object]:
    ctx = request.app.state.ctx
    return {
        "columns": COLUMNS,
        "can_create_fields": not user.principal.is_team_lead,
        "max_bytes": ctx.settings.max_import_bytes,
        "error": None,
        "result": None,
        **context,
    }


@router.get("/supporters/import", include_in_schema=False)
async def import_form(request: Request, user: CurrentUser) -> Response:
    return render(request, "supporter_import.html", _page(request, user))


async def import_upload(request: Request, user: CurrentUser) -> Response:
    """Run the import on the uploaded file; the file's own problems re-render the form."""
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return render(
            request,
            "supporter_import.html",
            _page(request, user, error="Choose a CSV file to import."),
            status_code=status.HTTP_400_BAD_REQUEST,
        )
    options = ImportOptions(
        dry_run=form.get("dry_run") == "on",
        create_fields=form.get("create_fields") == "on",
        merge_duplicates=form.get("merge_duplicates") == "on",
        partial=form.get("partial") == "on",
    )
    try:
        summary = await run_import(upload, user.principal, request.app.state.ctx, options)
    except ImportFileError as exc:
        return render(
            request,
            "supporter_import.html",
            _page(request, user, error=f"{upload.filename}: {exc}"),
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
    return render(
        request,
        "supporter_import.html",
        _page(request, user, result=summary, filename=upload.filename),
    )


# ImportSizeLimit: a body over RALLYPOINT_MAX_IMPORT_BYTES is refused (413) unread.
router.add_api_route(
    "/supporters/import",
    import_upload,
    methods=["POST"],
    include_in_schema=False,
    route_class_override=ImportSizeLimit,
)

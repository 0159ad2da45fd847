"""The coordinator console: server-rendered pages under /console/ (CONTRACT.md, "Coordinator
console"). `install(app)` adds it to the FastAPI app (gateway/app.py calls it).

How to add a page
-----------------
1. A module here, e.g. `gateway/console/supporters.py`, with `router = APIRouter()` and
   paths relative to /console (`@router.get("/supporters")`); add the module to
   `PAGES` below. Every route then runs `security.csrf_protect` (router-wide).
2. Ask for the signed-in user with the `CurrentUser` dependency
   (`from gateway.console.security import CurrentUser`): without a live session the
   sign-in page answers instead (the route never runs). `user.user` is the `User` row,
   `user.principal` a `gateway.auth.Principal` for the REST API's scope helpers
   (`gateway/api/scope.py`: `visible_rows`, `visible_conversation`, `lead_team`...), so a
   team lead sees only their team, exactly as with a team-lead API key; `user.id` for
   "assigned to me" and `sent_by` (`principal.label` is "user:<id>"). Database session:
   `SessionDep` from gateway/api/scope.py. Mutations go through the same routing/ and
   gateway functions as the REST API.
3. Answer `render(request, "supporters.html", {...}, status_code=...)`
   (gateway/console/templating.py). The template starts `{% extends "base.html" %}`
   and fills `{% block title %}` and `{% block content %}` (optional:
   `{% block head %}` for extra tags, `{% block scripts %}` at the end of <body>).
   Autoescape is on and undefined names are errors: never use `|safe` on anything a
   supporter or user wrote. The base context has `user` (ConsoleUser | None),
   `csrf_token`, `nav`, `path`, `request` and `static_url(path)`.
4. Forms: `{% from "macros.html" import csrf_field, flash with context %}` ("with
   context": the macro reads `csrf_token`) and `{{ csrf_field() }}` inside every
   `<form method="post">`. htmx requests carry the token by themselves
   (`hx-headers` on <body>). Without the token → 403, nothing changes.
5. Navigation: add a `NavLink("Supporters", "/console/supporters", roles=...)` to `NAV`
   in templating.py.
6. Errors: raise `HTTPException(status, detail)` as in the API: under /console/ it becomes
   the plain error page (errors.py; `detail` is shown for 403 and 429 only). A form with
   bad input should rather render its page again with status 400/422, the typed values
   kept and the message in `{{ flash(message, "error") }}` (role="alert"); `flash(msg)`
   alone is a success note (role="status"). Unexpected exceptions → plain 500 page.
7. Static files: gateway/console/static/ (served at /console/static/, cached a year:
   link with `static_url("console.css")`, whose ?v= changes with the content).
8. Browser tests (Playwright's async API, Debian's Chromium): fixtures in
   tests/console/conftest.py; a module starts `pytestmark =
   pytest.mark.asyncio(loop_scope="session")`. `console` = a live server (uvicorn on
   127.0.0.1, port 0, this test's database; `console.clock` a FakeClock, `await
   console.seed(fn)` runs `await fn(session)`, `await console.make_user(role, team_id)`,
   `await console.make_team(name)`, `console.url(path)`); `page` = a fresh page, each
   test run at desktop AND at 390x844; `await signed_in_page(role="coordinator",
   team=None)` signs a new user in through the real form and returns the page on the
   inbox. Examples: tests/console/test_sign_in.py, test_inbox.py; plain HTTP checks
   (httpx over ASGI, `make_client`): test_console_http.py.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

from gateway.console import (
    announcement_report,
    announcements,
    checkins,
    event_attendance,
    events,
    inbox,
    live,
    polls,
    saved_replies,
    signin,
    simulator,
    status,
    supporter_edit,
    supporter_import,
    supporter_profile,
    supporters,
    teams,
    thread,
)
from gateway.console.errors import install_error_handlers
from gateway.console.security import csrf_protect

PAGES = (
    signin,
    inbox,
    thread,
    saved_replies,
    live,
    supporters,
    supporter_import,
    supporter_profile,
    supporter_edit,
    teams,
    announcements,
    announcement_report,
    polls,
    checkins,
    events,
    event_attendance,
    status,
    simulator,
)
STATIC_MAX_AGE = 365 * 24 * 3600


class CachedStatic(StaticFiles):
    """Static files with a year's cache: their URLs carry a content hash (static_url)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["Cache-Control"] = f"public, max-age={STATIC_MAX_AGE}, immutable"
        return response


def build_router() -> APIRouter:
    router = APIRouter(prefix="/console", dependencies=[Depends(csrf_protect)])
    for page in PAGES:
        router.include_router(page.router)
    return router


def install(app: FastAPI) -> None:
    """Mount the console's pages, static files and error pages on `app`."""
    from importlib.resources import files

    app.include_router(build_router())
    directory = str(files("gateway.console").joinpath("static"))
    app.mount("/console/static", CachedStatic(directory=directory), name="console-static")
    install_error_handlers(app)

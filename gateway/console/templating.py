"""Jinja2 rendering for console pages: autoescaped templates, the base context every page
gets, static URLs that change with the file's content (so they can be cached for a year),
and the navigation."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined

from gateway.console.sessions import ConsoleUser

PRE_CSRF_COOKIE = "rp_csrf"
SESSION_COOKIE = "rp_session"
COOKIE_PATH = "/console/"


@dataclass(frozen=True)
class NavLink:
    label: str
    href: str
    roles: tuple[str, ...] = ("admin", "coordinator", "team_lead")
    demo_only: bool = False  # shown only under `rallypoint serve --demo`


# The console's sections, in nav order. A new section adds its line here.
NAV: list[NavLink] = [
    NavLink("Inbox", "/console/"),
    NavLink("Supporters", "/console/supporters"),
    NavLink("Announcements", "/console/announcements"),
    NavLink("Polls", "/console/polls"),
    NavLink("Check-ins", "/console/checkins"),
    NavLink("Events", "/console/events"),
    NavLink("Teams", "/console/teams", roles=("admin", "coordinator")),
    NavLink("Saved replies", "/console/saved-replies"),
    NavLink("Status", "/console/status", roles=("admin",)),
    NavLink("Simulator", "/console/simulator", demo_only=True),
]


@lru_cache(maxsize=256)
def static_url(path: str) -> str:
    """/console/static/<path>?v=<content hash>: a changed file gets a new URL."""
    data = files("gateway.console").joinpath("static", path).read_bytes()
    return f"/console/static/{path}?v={hashlib.sha256(data).hexdigest()[:12]}"


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("gateway.console", "templates"),
        autoescape=True,  # everything, always: supporters' names and bodies are HTML-escaped
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static_url"] = static_url
    return env


templates = _environment()


def secure_cookies(request: Request) -> bool:
    """Cookies are `Secure` whenever RALLYPOINT_PUBLIC_URL is https."""
    return str(request.app.state.ctx.settings.public_url).lower().startswith("https://")


def demo_mode(request: Request) -> bool:
    """Whether this app runs as `rallypoint serve --demo` (gateway/demo sets app.state.demo)."""
    return getattr(request.app.state, "demo", None) is not None


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> HTMLResponse:
    """Render `template` with the base context: `user` (ConsoleUser or None), `csrf_token`
    (the session's, or before sign-in a double-submit token also set as a cookie), `nav`
    (the links this user may follow), `demo` (demo mode: base.html shows its banner) and
    `request`."""
    user: ConsoleUser | None = getattr(request.state, "console_user", None)
    new_pre_token = None
    if user is not None:
        csrf_token = user.csrf_token
    else:
        csrf_token = request.cookies.get(PRE_CSRF_COOKIE) or ""
        if len(csrf_token) < 32:
            csrf_token = new_pre_token = secrets.token_urlsafe(32)
    demo = demo_mode(request)
    base: dict[str, Any] = {
        "request": request,
        "user": user,
        "csrf_token": csrf_token,
        "nav": [
            link
            for link in NAV
            if user is not None and user.user.role in link.roles and (demo or not link.demo_only)
        ],
        "path": request.url.path,
        "demo": demo,
    }
    base.update(context or {})
    html = templates.get_template(template).render(base)
    response = HTMLResponse(html, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    if new_pre_token is not None:
        response.set_cookie(
            PRE_CSRF_COOKIE,
            new_pre_token,
            path=COOKIE_PATH,
            httponly=True,
            samesite="strict",
            secure=secure_cookies(request),
        )
    return response

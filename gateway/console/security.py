"""Who is signed in (`current_user`) and the CSRF check every console route runs.

CSRF: a state-changing request (POST, PUT, PATCH, DELETE) under /console/ must carry the
session's token, as the form field `csrf_token` (macro `csrf_field()` in
templates/macros.html) or the `X-CSRF-Token` header (htmx sends it: base.html sets
`hx-headers`); otherwise 403 and the route never runs. Before sign-in, the sign-in form
carries a double-submit token that must match the `rp_csrf` cookie.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from gateway.auth import Context
from gateway.console.sessions import ConsoleUser, load_session
from gateway.console.templating import PRE_CSRF_COOKIE, SESSION_COOKIE

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SIGN_IN_PATH = "/console/sign-in"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class NotSignedIn(Exception):
    """Raised by `current_user`; answered with the sign-in page (gateway/console/errors)."""


async def optional_user(request: Request, ctx: Context) -> ConsoleUser | None:
    """The signed-in user, or None; looked up once per request (request.state)."""
    if hasattr(request.state, "console_user"):
        cached: ConsoleUser | None = request.state.console_user
        return cached
    idle = timedelta(hours=ctx.settings.session_hours)
    async with ctx.sessions() as session:
        user = await load_session(session, request.cookies.get(SESSION_COOKIE), ctx.clock(), idle)
    request.state.console_user = user
    return user


async def current_user(
    user: Annotated[ConsoleUser | None, Depends(optional_user)],
) -> ConsoleUser:
    """The signed-in user; without a live session the sign-in page answers instead."""
    if user is None:
        raise NotSignedIn()
    return user


CurrentUser = Annotated[ConsoleUser, Depends(current_user)]


async def _sent_token(request: Request) -> str | None:
    header = request.headers.get("x-csrf-token")
    if header is not None:
        return header
    if request.headers.get("content-type", "").split(";")[0].strip().lower() in FORM_TYPES:
        value = (await request.form()).get("csrf_token")  # cached: the route reads it again
        return value if isinstance(value, str) else None
    return None


async def csrf_protect(
    request: Request, user: Annotated[ConsoleUser | None, Depends(optional_user)]
) -> None:
    """Router-wide dependency of the console (gateway/console/__init__.py)."""
    if request.method not in UNSAFE_METHODS:
        return
    is_sign_in = request.url.path == SIGN_IN_PATH
    if user is None and not is_sign_in:
        raise NotSignedIn()  # nothing to forge without a session: ask to sign in
    expected = [user.csrf_token] if user is not None else []
    if is_sign_in:
        expected.append(request.cookies.get(PRE_CSRF_COOKIE) or "")
    sent = await _sent_token(request)
    if not sent or not any(
        token and secrets.compare_digest(sent.encode(), token.encode()) for token in expected
    ):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "This form has expired or did not come from this site. Reload the page and try again.",
        )

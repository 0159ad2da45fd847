"""Signing in and out of the console.

A wrong email or password answers the sign-in page again (401, the email kept) and
counts against that email; the tenth failure within 15 minutes refuses that email for 15
minutes (429), a right password included (gateway/console/sessions.py). Every sign-in,
failed sign-in, refused sign-in and sign-out is audited.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response, status
from fastapi.responses import RedirectResponse
from sqlmodel import select

from gateway.audit import record
from gateway.auth import Context
from gateway.console.security import SIGN_IN_PATH, optional_user
from gateway.console.sessions import (
    clear_failures,
    end_session,
    is_locked,
    note_failure,
    open_session,
)
from gateway.console.templating import (
    COOKIE_PATH,
    SESSION_COOKIE,
    render,
    secure_cookies,
)
from gateway.passwords import hash_password, needs_rehash, verify_password
from storage.models import User

router = APIRouter()
WRONG = "Wrong email or password."
LOCKED = "Too many failed sign-ins for this email. Try again in 15 minutes."


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a console path of ours, never another site."""
    if (
        not target
        or not target.startswith("/console/")
        or "//" in target
        or "\\" in target
        or target.startswith(SIGN_IN_PATH)
    ):
        return "/console/"
    return target


def render_sign_in(
    request: Request,
    *,
    next_path: str = "/console/",
    email: str = "",
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "sign_in.html",
        {"email": email, "error": error, "next_path": safe_next(next_path)},
        status_code=status_code,
    )


@router.get("/sign-in", include_in_schema=False)
async def sign_in_form(request: Request, ctx: Context) -> Response:
    if await optional_user(request, ctx) is not None:
        return RedirectResponse("/console/", status.HTTP_303_SEE_OTHER)
    return render_sign_in(request, next_path=request.query_params.get("next", "/console/"))


@router.post("/sign-in", include_in_schema=False)
async def sign_in(
    request: Request,
    ctx: Context,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next_path: Annotated[str, Form(alias="next", max_length=2000)] = "/console/",
) -> Response:
    address = email.strip().lower()
    now = ctx.clock()
    ip = request.client.host if request.client else None
    async with ctx.sessions() as session:
        if await is_locked(session, address, now):
            record(session, "sign_in_refused", at=now, target=address, ip=ip)
            await session.commit()
            return render_sign_in(
                request, next_path=next_path, email=email, error=LOCKED, status_code=429
            )
        user = (await session.exec(select(User).where(User.email == address))).first()
        ok = await verify_password(user.password_hash if user else None, password)
        if (
            user is None
            or not ok
            or not user.active
            or (user.role == "team_lead" and user.team_id is None)
        ):
            await note_failure(session, address, now)
            record(session, "sign_in_failed", at=now, target=address, ip=ip)
            await session.commit()
            return render_sign_in(
                request, next_path=next_path, email=email, error=WRONG, status_code=401
            )
        if needs_rehash(user.password_hash):
            user.password_hash = await hash_password(password)
        # A new token at every sign-in; a session this browser had before ends.
        await end_session(session, request.cookies.get(SESSION_COOKIE))
        token = await open_session(session, user, now)
        await clear_failures(session, address)
        record(session, "sign_in", at=now, actor=f"user:{user.id}", target=address, ip=ip)
        await session.commit()
    response = RedirectResponse(safe_next(next_path), status.HTTP_303_SEE_OTHER)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
    )
    return response


@router.post("/sign-out", include_in_schema=False)
async def sign_out(request: Request, ctx: Context) -> Response:
    """Ends the session server-side: the old cookie signs no one in afterwards."""
    user = await optional_user(request, ctx)
    async with ctx.sessions() as session:
        await end_session(session, request.cookies.get(SESSION_COOKIE))
        if user is not None:
            record(session, "sign_out", at=ctx.clock(), actor=f"user:{user.id}")
        await session.commit()
    response = RedirectResponse("/console/", status.HTTP_303_SEE_OTHER)
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
    return response

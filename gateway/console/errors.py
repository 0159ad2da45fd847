"""Console error answers: under /console/ every failure is a plain HTML page (never a
stack trace, never JSON); elsewhere the handlers that were installed before answer."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import PlainTextResponse

from gateway.console.security import NotSignedIn
from gateway.console.templating import render

log = logging.getLogger(__name__)
Handler = Callable[[Request, Exception], Awaitable[Response]]

_MESSAGES = {
    400: "The request could not be understood.",
    403: "You may not do this.",
    404: "There is no such page.",
    405: "This page cannot be used that way.",
    413: "What was sent is too large. Split the file and send the parts.",
    422: "Some of what was sent could not be used. Go back and check the form.",
    429: "Too many attempts. Wait a while and try again.",
    500: "Something went wrong on our side. Nothing was changed; try again.",
}


def in_console(request: Request) -> bool:
    return request.url.path == "/console" or request.url.path.startswith("/console/")


def error_page(request: Request, status_code: int, detail: str | None = None) -> Response:
    """The plain error page; `detail` is shown if it is a sentence meant for people."""
    message = detail if detail and status_code in (403, 429) else None
    return render(
        request,
        "error.html",
        {
            "status_code": status_code,
            "title": HTTPStatus(status_code).phrase,
            "message": message or _MESSAGES.get(status_code, "The request failed."),
        },
        status_code=status_code,
    )


def sign_in_page(request: Request, status_code: int = 200) -> Response:
    from gateway.console.signin import render_sign_in

    query = f"?{request.url.query}" if request.url.query else ""
    target = request.url.path + query if request.method == "GET" else "/console/"
    response = render_sign_in(request, next_path=target, status_code=status_code)
    if request.headers.get("hx-request"):  # htmx: reload into the sign-in page
        response.headers["HX-Redirect"] = "/console/"
    return response


def install_error_handlers(app: FastAPI) -> None:
    """Wrap the app's handlers: the console's answer under /console/, theirs elsewhere."""
    previous_http: Handler = app.exception_handlers.get(  # type: ignore[assignment]
        StarletteHTTPException, http_exception_handler
    )
    previous_validation: Handler = app.exception_handlers.get(  # type: ignore[assignment]
        RequestValidationError, request_validation_exception_handler
    )
    previous_any: Handler | None = app.exception_handlers.get(Exception)  # type: ignore[assignment]

    async def on_http(request: Request, exc: Exception) -> Response:
        if in_console(request) and isinstance(exc, StarletteHTTPException):
            response = error_page(request, exc.status_code, str(exc.detail))
            for name, value in (exc.headers or {}).items():
                response.headers[name] = value
            return response
        return await previous_http(request, exc)

    async def on_validation(request: Request, exc: Exception) -> Response:
        if in_console(request):
            return error_page(request, 422)
        return await previous_validation(request, exc)

    async def on_any(request: Request, exc: Exception) -> Response:
        if in_console(request):
            log.error("console page failed: %s %s", request.method, request.url.path)
            return error_page(request, 500)
        if previous_any is not None:
            return await previous_any(request, exc)
        return PlainTextResponse("Internal Server Error", status_code=500)

    async def on_not_signed_in(request: Request, _exc: Exception) -> Response:
        return sign_in_page(request, 200 if request.method in ("GET", "HEAD") else 401)

    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(Exception, on_any)
    app.add_exception_handler(NotSignedIn, on_not_signed_in)

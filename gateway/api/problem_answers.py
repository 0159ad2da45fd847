"""Every error under /api/v1 as RFC 9457 problem details (`application/problem+json`):
`{type, title, status, detail, errors?: [{field, message}]}`. A 422 names each field
and what is wrong with it, never the value that was sent."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)
PREFIX = "/api/v1"
MEDIA_TYPE = "application/problem+json"
Handler = Callable[[Request, Exception], Awaitable[Response]]


def in_api(request: Request) -> bool:
    path = request.url.path
    return path == PREFIX or path.startswith(PREFIX + "/")


def problem_response(
    status: int,
    detail: str,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",  # RFC 9457 4.2.1: the status code says it all
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers, media_type=MEDIA_TYPE)


def field_errors(raw: Sequence[Any]) -> list[dict[str, str]]:
    """FastAPI/pydantic errors as `{field, message}`, the submitted value left out (also
    from a message that quotes it)."""
    found = []
    for error in raw:
        if not isinstance(error, dict):
            found.append({"field": "", "message": str(error)})
            continue
        field = ".".join(str(part) for part in error.get("loc", ()))
        message = str(error.get("msg", "invalid"))
        value = error.get("input")
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            text = str(value)
            if text and len(text) > 1:
                message = message.replace(repr(text), "the value").replace(text, "the value")
        found.append({"field": field, "message": message})
    return found


def _summary(errors: list[dict[str, str]]) -> str:
    fields = [e["field"] for e in errors if e["field"]]
    if not fields:
        return "the request is invalid"
    return "invalid: " + ", ".join(dict.fromkeys(fields))


def answer_http(exc: StarletteHTTPException) -> JSONResponse:
    detail = exc.detail
    errors: list[dict[str, str]] | None = None
    if isinstance(detail, list):
        errors = field_errors(detail)
        detail = _summary(errors)
    elif not isinstance(detail, str):
        detail = HTTPStatus(exc.status_code).phrase
    return problem_response(
        exc.status_code, str(detail), errors=errors, headers=dict(exc.headers or {}) or None
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Problem details under /api/v1; the handlers installed before answer elsewhere."""
    previous_http: Handler = app.exception_handlers.get(  # type: ignore[assignment]
        StarletteHTTPException, http_exception_handler
    )
    previous_validation: Handler = app.exception_handlers.get(  # type: ignore[assignment]
        RequestValidationError, request_validation_exception_handler
    )
    previous_any: Handler | None = app.exception_handlers.get(Exception)  # type: ignore[assignment]

    async def on_http(request: Request, exc: Exception) -> Response:
        if in_api(request) and isinstance(exc, StarletteHTTPException):
            return answer_http(exc)
        return await previous_http(request, exc)

    async def on_validation(request: Request, exc: Exception) -> Response:
        if in_api(request) and isinstance(exc, RequestValidationError):
            errors = field_errors(exc.errors())
            return problem_response(422, _summary(errors), errors=errors)
        return await previous_validation(request, exc)

    async def on_any(request: Request, exc: Exception) -> Response:
        if in_api(request):
            log.error(  # the type only: an exception's text may hold what was sent
                "API request failed: %s %s: %s",
                request.method,
                request.url.path,
                type(exc).__name__,
            )
            return problem_response(500, "something went wrong on our side")
        if previous_any is not None:
            return await previous_any(request, exc)
        return PlainTextResponse("Internal Server Error", status_code=500)

    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(Exception, on_any)

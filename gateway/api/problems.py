"""The error answers of the REST API in the OpenAPI document.

Every error is RFC 9457 problem details, `application/problem+json` (problem_answers.py):
`{type, title, status, detail}`, and for 422 `errors: [{field, message}]`. Routes name
their own particular answers (`responses=errors({409: "why"})`);
`document_errors` adds what every route can answer: 401 and 403 (the key), 404 where the
path names a row, 400 where the body cannot be parsed, 422 (bad input)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "properties": {
        "type": {"type": "string", "description": "about:blank (the status says it all)"},
        "title": {"type": "string", "description": "the status's phrase"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "what went wrong, in a sentence"},
        "errors": {
            "type": "array",
            "description": "(422) each invalid field and why; the value sent is not repeated",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                "required": ["field", "message"],
            },
        },
    },
    "required": ["type", "title", "status", "detail"],
}

COMMON = {
    401: "missing, unknown or revoked API key",
    429: "more requests with this key than RALLYPOINT_API_RATE_PER_MINUTE (see Retry-After)",
    403: "the key's role, or a team lead's team, does not allow this",
    422: "a parameter, header or body field is invalid or names nothing",
}
NOT_FOUND = "no such row, or not one this key may see"


def problem(description: str) -> dict[str, Any]:
    """One documented error answer."""
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": PROBLEM_SCHEMA}},
    }


def errors(reasons: Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status with why it is given."""
    return {code: problem(why) for code, why in reasons.items()}


def document_errors(schema: dict[str, Any], prefix: str = "/api/v1/") -> dict[str, Any]:
    """Add the error answers every API operation can give to those it documents itself
    (an OpenAPI document as FastAPI builds it, changed in place and returned)."""
    for path, operations in schema.get("paths", {}).items():
        if not path.startswith(prefix):
            continue
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            wanted = dict(COMMON)
            if "{" in path:  # a path parameter names a row (or a team)
                wanted[404] = NOT_FOUND
            if "requestBody" in operation:
                wanted[400] = "the body cannot be read as the content type it declares"
            for code, why in wanted.items():
                responses.setdefault(str(code), problem(why))
            # FastAPI documents its own list of errors; a route's own 422 is a sentence.
            responses["422"]["content"] = problem("")["content"]
            for code, response in responses.items():
                if code.isdigit() and int(code) >= 400 and "content" not in response:
                    response["content"] = problem("")["content"]
    return schema

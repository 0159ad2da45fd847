"""The id of the HTTP request being served, for every log line written while serving it.

It is the caller's `X-Request-ID` when that looks like an id (a proxy's or a load
balancer's, so one request can be followed across them), else one made here; the response
carries it back in the same header.
"""

from __future__ import annotations

import random
import re
from contextvars import ContextVar

HEADER = b"x-request-id"
# Letters, digits and `._:-`, at most 128: nothing that could forge a log line or be data.
SANE = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
_current: ContextVar[str | None] = ContextVar("rallypoint_request_id", default=None)


def current_request_id() -> str | None:
    return _current.get()


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name.lower() == HEADER and SANE.fullmatch(value):
            return value.decode("ascii")
    # An id, not a secret: 64 bits from the process's generator (reseeded in a forked
    # child) instead of a system call per request.
    return f"{random.getrandbits(64):016x}"


def set_request_id(request_id: str | None) -> None:
    """Set for the rest of the current context (each ASGI request runs in its own task)."""
    _current.set(request_id)

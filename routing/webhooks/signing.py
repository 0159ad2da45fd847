"""The `Rallypoint-Signature` header: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
"<t>.<raw body>")>`. Receivers recompute it and reject a `t` too far from their clock
(`TOLERANCE_SECONDS`), so a captured delivery cannot be replayed later."""

from __future__ import annotations

import hashlib
import hmac
import secrets

HEADER = "Rallypoint-Signature"
TOLERANCE_SECONDS = 300


def new_secret() -> str:
    """A fresh signing secret (`whsec_` and 43 url-safe characters)."""
    return "whsec_" + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The header's value for `body` sent at `timestamp` (unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"

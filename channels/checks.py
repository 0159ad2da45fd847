"""What `rallypoint doctor` learns from a provider: one neutral result per check.

Each adapter folder has a `check.py` whose `check_*` coroutine asks the provider about its
credentials and webhook and returns these; the gateway prints them. A detail never holds a
secret: only what the provider said, ids we configured, and URLs we publish.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class CheckResult:
    name: str  # e.g. "telegram credentials"
    ok: bool
    detail: str


def passed(name: str, detail: str) -> CheckResult:
    return CheckResult(name, True, detail)


def failed(name: str, detail: str) -> CheckResult:
    return CheckResult(name, False, detail)


def unreachable(exc: httpx.HTTPError) -> str:
    """A transport failure, named by its type: its text may hold the request URL."""
    return f"no answer from the provider ({type(exc).__name__})"

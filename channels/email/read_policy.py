"""The email policy inbound mail is parsed with: `email.policy.default`, with parsed
headers remembered.

The default policy parses a header again on every `msg[...]` or `get_content_type()`;
reading one reply (bounce checks, auto-reply checks, choosing the body part) asks for
Content-Type a dozen times, and that parsing was most of the cost of ingesting a mail.
Parsed headers are immutable values, so the same (name, value) can share one."""

from __future__ import annotations

import email.policy
from email.headerregistry import BaseHeader, HeaderRegistry
from functools import lru_cache
from typing import Any

CACHED_HEADERS = 4096


class RememberingHeaderRegistry(HeaderRegistry):
    def __init__(self) -> None:
        super().__init__()
        self._parse = lru_cache(maxsize=CACHED_HEADERS)(super().__call__)

    def __call__(self, name: str, value: Any) -> BaseHeader:
        if not isinstance(value, str):
            return super().__call__(name, value)
        parsed: BaseHeader = self._parse(name, value)
        return parsed


READ_POLICY = email.policy.default.clone(header_factory=RememberingHeaderRegistry())

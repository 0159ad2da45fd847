"""The webhook contract every HTTP adapter meets. Each adapter's tests module provides a
`ContractCase` (tests/channels/<provider>_case.py) and lists it in CASES below."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Protocol


@dataclass(frozen=True)
class SignedRequest:
    method: str
    path: str  # with query string
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes = b""

    def without_header(self, name: str) -> SignedRequest:
        return replace(
            self, headers={k: v for k, v in self.headers.items() if k.lower() != name.lower()}
        )


class ContractCase(Protocol):
    provider: str  # the registry's provider name (webhook path segment)
    channel: str  # the channel its inbound messages arrive on
    signature_header: str
    settings: dict[str, Any]  # settings overrides that enable the adapter
    secrets: tuple[str, ...]  # the secrets in `settings`: never in a log record

    def inbound(self, provider_message_id: str, sender: str, body: str) -> SignedRequest:
        """A correctly signed inbound text message from `sender` (canonical address)."""

    def sender(self) -> str:
        """A canonical sender address valid on this channel."""

    def wrong_signature(self, request: SignedRequest) -> SignedRequest:
        """The same request with a signature made with the wrong secret."""

    def signed_garbage(self) -> SignedRequest:
        """A correctly signed request whose payload is not one we understand."""

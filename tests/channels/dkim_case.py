"""DKIM for tests: an RSA key made here signs mail with dkimpy, and a fake DNS (dkimpy's
`dnsfunc`) serves its public half, so no test touches the network."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from channels.email.sender_auth import SenderAuth

SIGNED_HEADERS = [b"from", b"to", b"subject", b"message-id"]


@dataclass
class Signer:
    """An RSA key, published (when asked) in `dns` as <selector>._domainkey.<domain>."""

    pem: bytes
    record: bytes
    dns: dict[bytes, bytes] = field(default_factory=dict)
    lookups: list[bytes] = field(default_factory=list)
    timeouts: set[bytes] = field(default_factory=set)

    def publish(self, domain: str, selector: str = "s1") -> None:
        self.dns[f"{selector}._domainkey.{domain}.".encode()] = self.record

    def sign(self, raw: bytes, domain: str, selector: str = "s1", *, length: bool = False) -> bytes:
        header = dkim.sign(
            raw,
            selector.encode(),
            domain.encode(),
            self.pem,
            include_headers=SIGNED_HEADERS,
            length=length,
        )
        return header + raw

    def lookup(self, name: bytes, timeout: float = 5) -> bytes | None:
        """dkimpy's dnsfunc (DNS names are case-insensitive)."""
        self.lookups.append(name)
        if name.lower() in self.timeouts:
            raise dkim.DnsTimeoutError("timed out")
        return self.dns.get(name.lower())

    def auth(self) -> SenderAuth:
        return SenderAuth(mode="dkim", dnsfunc=self.lookup)


def new_signer() -> Signer:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return Signer(pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public))


def mail(
    sender: str = "amina@example.org",
    body: str = "START",
    *,
    message_id: str = "<m1@example.org>",
    subject: str = "Re: hello",
) -> bytes:
    lines = [f"From: Amina <{sender}>", "To: team@rally.example.org", f"Subject: {subject}"]
    lines.append(f"Message-ID: {message_id}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body + "\r\n").encode()

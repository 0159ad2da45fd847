"""Whether inbound mail is from whom its `From` says (RALLYPOINT_INBOUND_SMTP_SENDER_AUTH).

Anyone can write any `From`. The listener asks `SenderAuth` and sets each inbound
message's `sender_verified`; routing stores unverified mail but runs no automation for it.
Unverified mail is known by a digest of its bytes, not its Message-ID (parse.provider_id),
so it never makes a verified mail with the same Message-ID look like a retry.

- `off`: not checked; `sender_verified` stays None.
- `dkim`: a DKIM signature (RFC 6376, checked by dkimpy) verifies, signs the From header,
  has no `l=` (a body length limit lets anything be appended), and its `d=` is the From
  address's domain or a parent of it (DMARC relaxed alignment in its simple form: the
  From domain equals `d=` or is a subdomain of it; a `d=` without a dot never counts).
- `authserv:<id>`: our own mail server checked, and wrote its verdict in an
  Authentication-Results header (RFC 8601) naming itself `<id>`; every other such header
  is the sender's own word and ignored. Verified on `dmarc=pass` for the From domain, or
  `dkim=pass` with an aligned `header.d`, unless one of our headers says `dmarc=fail`.

Either way the message has exactly one From header holding one address, the one it was
filed under. Only a DNS timeout while fetching the key of an aligned signature, with no
other aligned signature verifying, raises CheckLater (the listener answers 451 and the
sending server retries); anything else that cannot be confirmed is unverified.
"""

from __future__ import annotations

import asyncio
import email.policy
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from email.message import Message
from email.parser import BytesHeaderParser

import authres
import dkim
from dkim.dnsplug import get_txt
from dkim.util import InvalidTagValueList, parse_tag_value

from channels.base import InboundMessage, StatusUpdate
from channels.email.parse import provider_id

log = logging.getLogger(__name__)

# dkimpy's `dnsfunc`: (name: bytes, timeout=seconds) -> the TXT record, or None.
DnsFunc = Callable[..., bytes | None]

DNS_TIMEOUT = 5.0  # one key lookup
CHECK_DEADLINE = 20.0  # the whole DKIM check of one message
MAX_SIGNATURES = 3  # aligned signatures tried per message (each may cost a lookup)


class CheckLater(Exception):
    """The check could not finish for a reason that may pass (a DNS timeout)."""


def aligned(from_domain: str, signer: str) -> bool:
    """Whether `signer` (a DKIM d=) is `from_domain` or a parent domain of it."""
    signer = signer.strip().rstrip(".").lower()
    return "." in signer and (from_domain == signer or from_domain.endswith("." + signer))


def from_domain(headers: Message, address: str) -> str | None:
    """The From domain when there is one From header, with one address, and it is
    `address`; else None (unverifiable)."""
    values = headers.get_all("from") or []
    found = list(getattr(values[0], "addresses", ())) if len(values) == 1 else []
    if len(found) != 1 or found[0].addr_spec.lower() != address or not found[0].domain:
        return None
    return str(found[0].domain).lower()


def dkim_verdict(raw: bytes, domain: str, dnsfunc: DnsFunc, timeout: float = DNS_TIMEOUT) -> bool:
    """Whether an aligned DKIM signature of `raw` verifies (blocking: DNS lookups).

    Raises CheckLater when none did and a key lookup of one of them timed out."""
    try:
        checker = dkim.DKIM(raw, timeout=timeout)
    except dkim.DKIMException:
        return False
    timed_out = False

    def lookup(name: bytes, timeout: float = timeout) -> bytes | None:
        nonlocal timed_out
        try:
            return dnsfunc(name, timeout=timeout)
        except dkim.DnsTimeoutError:
            timed_out = True  # dkimpy counts it a failure; we ask the sender to retry
            raise

    signatures = [value for name, value in checker.headers if name.lower() == b"dkim-signature"]
    tried = 0
    for index, value in enumerate(signatures):
        try:
            tags = parse_tag_value(value)
        except InvalidTagValueList:
            continue
        signer = tags.get(b"d", b"").decode("ascii", "replace")
        signed = {name.strip().lower() for name in tags.get(b"h", b"").split(b":")}
        if not aligned(domain, signer) or b"from" not in signed or b"l" in tags:
            continue
        if tried == MAX_SIGNATURES:
            break
        tried += 1
        try:
            if checker.verify(idx=index, dnsfunc=lookup):
                return True
        except Exception as exc:  # dkimpy raises for a malformed signature or key
            log.info("dkim: a signature by %s did not verify: %s", signer, exc)
    if timed_out:
        raise CheckLater("a DKIM key lookup timed out")
    return False


def authserv_verdict(headers: Message, domain: str, authserv_id: str) -> bool:
    """Whether the Authentication-Results of `authserv_id` vouch for the From domain."""
    passed = failed = False
    for value in headers.get_all("authentication-results") or []:
        try:
            header = authres.AuthenticationResultsHeader.parse_value(" ".join(str(value).split()))
        except (authres.core.AuthResError, ValueError):
            continue  # not well-formed: not our server's
        if header.authserv_id != authserv_id:
            continue
        for result in header.results:
            found = {(p.type, p.name): str(p.value or "").lower() for p in result.properties}
            if result.method == "dmarc":
                about = found.get(("header", "from"), domain)
                failed |= result.result == "fail"
                passed |= result.result == "pass" and about == domain
            elif result.method == "dkim" and result.result == "pass":
                signer = found.get(("header", "d")) or found.get(("header", "i"), "")
                passed |= aligned(domain, signer.rpartition("@")[2])
    return passed and not failed


@dataclass
class SenderAuth:
    """One of the modes above; `dnsfunc` answers dkimpy's key lookups (tests fake it)."""

    mode: str = "off"  # "off", "dkim" or "authserv"
    authserv_id: str = ""
    dnsfunc: DnsFunc = get_txt
    dns_timeout: float = DNS_TIMEOUT

    @classmethod
    def from_setting(cls, value: str) -> SenderAuth:
        """From the (validated) setting: "off", "dkim" or "authserv:<id>"."""
        mode, _, authserv_id = value.partition(":")
        return cls(mode=mode, authserv_id=authserv_id)

    async def check(self, raw: bytes, address: str) -> bool | None:
        """None when off, else whether `raw` (filed under `address`) is from its sender.

        Raises CheckLater for a temporary failure (see the module docstring)."""
        if self.mode == "off":
            return None
        try:
            return await self._verdict(raw, address)
        except CheckLater:
            raise
        except Exception:
            log.exception("sender check failed; the message counts as unverified")
            return False

    async def _verdict(self, raw: bytes, address: str) -> bool:
        headers = BytesHeaderParser(policy=email.policy.default).parsebytes(raw)
        domain = from_domain(headers, address)
        if domain is None:
            return False
        if self.mode == "authserv":
            return authserv_verdict(headers, domain, self.authserv_id)
        verdict = asyncio.to_thread(dkim_verdict, raw, domain, self.dnsfunc, self.dns_timeout)
        try:
            return await asyncio.wait_for(verdict, CHECK_DEADLINE)
        except TimeoutError:
            raise CheckLater("the DKIM check took too long") from None

    async def mark(
        self, raw: bytes, events: Sequence[InboundMessage | StatusUpdate]
    ) -> list[InboundMessage | StatusUpdate]:
        """`events` with each inbound message's `sender_verified` set, and its provider id
        as that verdict makes it (parse.provider_id: unverified mail cannot take the id of
        a verified one and have it dropped as a retry)."""
        marked: list[InboundMessage | StatusUpdate] = []
        for event in events:
            if isinstance(event, InboundMessage) and self.mode != "off":
                verified = await self.check(raw, event.address)
                event = replace(
                    event,
                    sender_verified=verified,
                    provider_message_id=provider_id(event.email_message_id, raw, verified),
                )
            marked.append(event)
        return marked

"""Sender verification of inbound mail (channels/email/sender_auth.py): messages signed by
dkimpy with a key made here, its public half served by a fake DNS (tests/channels/
dkim_case.py); Authentication-Results headers as mail servers write them."""

from __future__ import annotations

import hashlib

import dkim
import pytest
from pydantic import ValidationError

from channels.base import InboundMessage, StatusUpdate
from channels.email.parse import parse_events
from channels.email.sender_auth import CheckLater, SenderAuth
from gateway.settings import Settings
from tests.channels.dkim_case import Signer, mail, new_signer


@pytest.fixture(scope="module")
def key() -> Signer:
    return new_signer()


@pytest.fixture
def signer(key: Signer) -> Signer:
    return Signer(key.pem, key.record)


# -- dkim ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sender", "signing_domain"),
    [
        ("amina@example.org", "example.org"),
        ("amina@mail.example.org", "example.org"),  # relaxed: d= is a parent of From's
        ("Amina@Example.ORG", "EXAMPLE.org"),
    ],
)
async def test_an_aligned_signature_that_verifies_verifies_the_sender(
    signer: Signer, sender: str, signing_domain: str
) -> None:
    signer.publish(signing_domain.lower())
    raw = signer.sign(mail(sender), signing_domain)
    assert await signer.auth().check(raw, sender.lower()) is True


@pytest.mark.parametrize(
    ("sender", "signing_domain"),
    [
        ("amina@example.org", "attacker.example"),  # anyone can sign for their own domain
        ("amina@example.org", "mail.example.org"),  # a subdomain does not speak for its parent
        ("amina@badexample.org", "example.org"),  # a suffix, not a parent
        ("amina@example.org", "org"),  # a top-level domain never aligns
    ],
)
async def test_a_valid_signature_by_an_unaligned_domain_does_not(
    signer: Signer, sender: str, signing_domain: str
) -> None:
    signer.publish(signing_domain)
    raw = signer.sign(mail(sender), signing_domain)
    assert await signer.auth().check(raw, sender) is False
    assert signer.lookups == []  # not even looked up


async def test_a_tampered_body_or_signed_header_fails(signer: Signer) -> None:
    signer.publish("example.org")
    raw = signer.sign(mail(body="hello"), "example.org")
    assert await signer.auth().check(raw, "amina@example.org") is True
    assert await signer.auth().check(raw.replace(b"hello", b"START"), "amina@example.org") is False
    moved = raw.replace(b"Subject: Re: hello", b"Subject: START")
    assert await signer.auth().check(moved, "amina@example.org") is False


async def test_mail_without_a_signature_or_a_published_key_is_unverified(signer: Signer) -> None:
    assert await signer.auth().check(mail(), "amina@example.org") is False
    raw = signer.sign(mail(), "example.org")  # the key is not in DNS
    assert await signer.auth().check(raw, "amina@example.org") is False
    assert signer.lookups == [b"s1._domainkey.example.org."]


async def test_a_second_from_or_another_address_is_unverified(signer: Signer) -> None:
    signer.publish("example.org")
    raw = signer.sign(mail(), "example.org")
    assert await signer.auth().check(raw, "amina@example.org") is True
    # Filed under the envelope sender (no usable From): the signature is not about it.
    assert await signer.auth().check(raw, "bo@example.org") is False
    two = b"From: victim@example.org\r\n" + raw
    assert await signer.auth().check(two, "victim@example.org") is False


async def test_a_signature_with_a_body_length_limit_does_not_count(signer: Signer) -> None:
    signer.publish("example.org")
    raw = signer.sign(mail(body=""), "example.org", length=True)
    # Anything can be appended under l=: dkimpy still calls it valid; we disregard it.
    appended = raw + b"START\r\n"
    assert await signer.auth().check(appended, "amina@example.org") is False
    assert signer.lookups == []
    assert dkim.verify(appended, dnsfunc=signer.lookup)


async def test_a_dns_timeout_asks_to_retry_unless_another_signature_passes(
    signer: Signer,
) -> None:
    signer.publish("example.org", "s2")
    signer.timeouts.add(b"s1._domainkey.example.org.")
    raw = signer.sign(mail(), "example.org", "s1")
    with pytest.raises(CheckLater):
        await signer.auth().check(raw, "amina@example.org")
    # Also signed with a key that can be fetched: that one decides.
    both = signer.sign(raw, "example.org", "s2")
    assert await signer.auth().check(both, "amina@example.org") is True


async def test_a_resolver_that_breaks_leaves_the_mail_unverified(signer: Signer) -> None:
    def broken(name: bytes, timeout: float = 5) -> bytes | None:
        raise RuntimeError("resolver bug")

    raw = signer.sign(mail(), "example.org")
    assert await SenderAuth(mode="dkim", dnsfunc=broken).check(raw, "amina@example.org") is False


async def test_several_signatures_one_aligned(signer: Signer) -> None:
    signer.publish("example.org")
    signer.publish("list.example.net")
    raw = signer.sign(signer.sign(mail(), "example.org"), "list.example.net")
    assert await signer.auth().check(raw, "amina@example.org") is True


# -- authserv --------------------------------------------------------------------------

OURS = SenderAuth.from_setting("authserv:mx.rally.example.org")


@pytest.mark.parametrize(
    ("results", "verified"),
    [
        (["mx.rally.example.org; dmarc=pass (p=none) header.from=example.org"], True),
        (["mx.rally.example.org; dkim=pass header.d=example.org header.s=s1"], True),
        (["MX.Rally.Example.ORG; dkim=pass (2048-bit key) header.i=@example.org"], True),
        (["mx.rally.example.org; dkim=pass header.d=attacker.example"], False),
        (["mx.rally.example.org; dmarc=pass header.from=attacker.example"], False),
        (["mx.rally.example.org; dmarc=fail header.from=example.org"], False),
        (["mx.rally.example.org; spf=pass smtp.mailfrom=amina@example.org"], False),
        (["mx.rally.example.org; none"], False),
        # Another server's word (or the sender's own forgery) is not ours.
        (["mx.elsewhere.example; dmarc=pass header.from=example.org"], False),
        (["mx.rally.example.org.evil; dkim=pass header.d=example.org"], False),
        # Several headers: ours decide, whichever line they are on.
        (
            [
                "mx.elsewhere.example; dmarc=pass header.from=example.org",
                "mx.rally.example.org; dkim=fail header.d=example.org",
            ],
            False,
        ),
        (
            [
                "mx.rally.example.org; spf=fail smtp.mailfrom=example.org",
                "mx.rally.example.org; dmarc=pass header.from=example.org",
            ],
            True,
        ),
        (
            [
                "mx.rally.example.org; dkim=pass header.d=example.org",
                "mx.rally.example.org; dmarc=fail header.from=example.org",
            ],
            False,
        ),
        (["mx.rally.example.org; ;; dmarc=pass"], False),  # not well-formed: ignored
    ],
)
async def test_authentication_results_of_our_server_alone_decide(
    results: list[str], verified: bool
) -> None:
    raw = mail()
    for value in reversed(results):
        raw = f"Authentication-Results: {value}\r\n".encode() + raw
    assert await OURS.check(raw, "amina@example.org") is verified


async def test_authserv_needs_the_from_address_the_message_is_filed_under() -> None:
    raw = b"Authentication-Results: mx.rally.example.org; dmarc=pass\r\n" + mail()
    assert await OURS.check(raw, "amina@example.org") is True
    assert await OURS.check(raw, "someone@example.org") is False


# -- modes -----------------------------------------------------------------------------


async def test_off_checks_nothing_and_mark_only_touches_inbound_messages(signer: Signer) -> None:
    message = InboundMessage("email", "amina@example.org", "<m1@example.org>", "START")
    bounce = StatusUpdate("email", "<out@rally.example.org>", "undelivered")
    assert await SenderAuth().check(mail(), "amina@example.org") is None
    assert await SenderAuth().mark(mail(), [message]) == [message]
    marked = await signer.auth().mark(mail(), [message, bounce])
    digest = "unverified:" + hashlib.sha256(mail()).hexdigest()
    assert marked == [
        InboundMessage("email", "amina@example.org", digest, "START", sender_verified=False),
        bounce,
    ]


# -- provider ids ----------------------------------------------------------------------


async def received(auth: SenderAuth, raw: bytes) -> InboundMessage:
    """The message the listener hands on for `raw`: parsed, then marked."""
    [message] = await auth.mark(raw, parse_events(raw))
    assert isinstance(message, InboundMessage)
    return message


async def test_unverified_mail_never_takes_the_id_a_verified_mail_has(signer: Signer) -> None:
    """A forger who sends a supporter's next Message-ID first must not make her real mail
    look like a retry of the forgery (and be dropped)."""
    signer.publish("example.org")
    real = signer.sign(mail(body="STOP"), "example.org")
    forged = mail(body="Never mind")  # same Message-ID, no signature
    verified = await received(signer.auth(), real)
    unverified = await received(signer.auth(), forged)
    assert (verified.sender_verified, verified.provider_message_id) == (True, "<m1@example.org>")
    assert unverified.sender_verified is False
    assert unverified.provider_message_id == "unverified:" + hashlib.sha256(forged).hexdigest()
    # The Message-ID stays for threading (our replies skip unverified mail: compose.py).
    assert unverified.email_message_id == verified.email_message_id == "<m1@example.org>"
    # Retries dedupe: the same verified mail, or the same unverified bytes, get the same id.
    assert (await received(signer.auth(), real)).provider_message_id == "<m1@example.org>"
    again = await received(signer.auth(), forged)
    assert again.provider_message_id == unverified.provider_message_id
    # A copy of the real mail with its body changed fails the signature: its own id.
    replayed = await received(signer.auth(), real.replace(b"STOP", b"START"))
    assert replayed.sender_verified is False
    assert replayed.provider_message_id not in {
        verified.provider_message_id,
        unverified.provider_message_id,
    }


async def test_authserv_unverified_mail_is_known_by_its_bytes_too() -> None:
    ours = b"Authentication-Results: mx.rally.example.org; dmarc=pass\r\n" + mail()
    assert (await received(OURS, ours)).provider_message_id == "<m1@example.org>"
    theirs = b"Authentication-Results: mx.example.net; dmarc=pass\r\n" + mail()
    assert (await received(OURS, theirs)).provider_message_id.startswith("unverified:")


async def test_a_verified_message_id_cannot_pose_as_an_unverified_id(signer: Signer) -> None:
    signer.publish("example.org")
    posing = "unverified:" + hashlib.sha256(mail(body="STOP")).hexdigest()
    raw = signer.sign(mail(message_id=posing), "example.org")
    message = await received(signer.auth(), raw)
    assert message.sender_verified is True
    assert message.provider_message_id == "sha256:" + hashlib.sha256(posing.encode()).hexdigest()
    assert message.email_message_id == posing


async def test_off_keeps_the_message_id_as_the_provider_id() -> None:
    for raw in (mail(), mail(body="STOP")):  # nothing checked: the Message-ID, as before
        message = await received(SenderAuth(), raw)
        assert message.sender_verified is None
        assert message.provider_message_id == "<m1@example.org>"
    bare = b"From: amina@example.org\r\n\r\nSTOP\r\n"  # no Message-ID: the bytes
    message = await received(SenderAuth(), bare)
    assert message.provider_message_id == "sha256:" + hashlib.sha256(bare).hexdigest()


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("off", "off"),
        (" DKIM ", "dkim"),
        ("authserv:MX.Rally.example.org", "authserv:mx.rally.example.org"),
        ("AuthServ : mx.rally.example.org", "authserv:mx.rally.example.org"),
    ],
)
def test_the_setting_is_normalised(value: str, stored: str) -> None:
    assert Settings(inbound_smtp_sender_auth=value).inbound_smtp_sender_auth == stored


@pytest.mark.parametrize("value", ["on", "spf", "authserv", "authserv:", "dkim:x", "authserv:a b"])
def test_a_bad_setting_is_refused_with_the_choices(value: str) -> None:
    with pytest.raises(ValidationError, match="authserv:<the authserv-id"):
        Settings(inbound_smtp_sender_auth=value)

"""Sealed values and blind indexes, checked with the libraries themselves: a sealed value
opens with `cryptography`'s AES-GCM given its documented layout, a blind index is
`hmac`'s HMAC-SHA256, nonces are never handed out twice (two threads seal at once: the
event loop and the SQLite lane), and the lane's encoders store what SQLAlchemy's bind
processors store."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from storage.crypto import NONCE_BYTES, Crypto, active, install
from storage.models import Message, Supporter, SupporterAddress
from storage.sealed_types import SealedAddress, open_pair, pair_index
from storage.sqlite_lane import encoder

KEY = bytes(range(32))
INDEX_KEY = bytes(range(100, 132))


@pytest.fixture
def crypto() -> Iterator[Crypto]:
    made = Crypto([KEY], INDEX_KEY)
    install(made)
    yield made
    install(None)


def test_a_sealed_value_opens_with_aes_gcm_as_documented(crypto: Crypto) -> None:
    sealed = crypto.seal("messages.body", "Count me in, señora")
    prefix, kid, token = sealed.split(":", 2)
    assert (prefix, kid) == ("e1", crypto.newest_id)
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    opened = AESGCM(KEY).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], b"messages.body")
    assert opened.decode() == "Count me in, señora"
    assert crypto.open("messages.body", sealed) == "Count me in, señora"


def test_the_blind_index_is_hmac_sha256_of_the_index_key(crypto: Crypto) -> None:
    for address in ("+14155550100", "ada@example.org", "+14155550100"):
        expected = hmac.new(INDEX_KEY, address.encode(), hashlib.sha256).hexdigest()
        assert crypto.blind(address) == "b1:" + expected
    # The search terms' digest (storage/search_terms.py), from the same pre-keyed HMAC.
    for message in (b"search\x00n\x00ada", b"", b"search\x00p\x000100"):
        assert crypto.keyed_digest(message) == hmac.digest(INDEX_KEY, message, "sha256")


def test_two_threads_sealing_at_once_never_share_a_nonce(crypto: Crypto) -> None:
    nonces: list[list[bytes]] = [[], []]

    def seal_many(out: list[bytes]) -> None:
        for _ in range(3000):  # about three blocks of nonces each
            token = crypto.seal("messages.raw", "x").split(":", 2)[2]
            out.append(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))[:NONCE_BYTES])

    threads = [threading.Thread(target=seal_many, args=(out,)) for out in nonces]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    every = nonces[0] + nonces[1]
    assert len(every) == 6000
    assert len(set(every)) == 6000


@pytest.mark.parametrize("with_keys", [True, False], ids=["keys", "no-keys"])
def test_the_lane_stores_what_sqlalchemy_binds(with_keys: bool) -> None:
    install(Crypto([KEY], INDEX_KEY) if with_keys else None)
    try:
        cases = [
            (Message.__table__, "body", "Count me in"),  # type: ignore[attr-defined]
            (Message.__table__, "raw", '{"Body":"Count me in"}'),  # type: ignore[attr-defined]
            (Message.__table__, "attachments", [{"url": "https://x.test/a.jpg"}]),  # type: ignore[attr-defined]
            (Message.__table__, "attachments", []),  # type: ignore[attr-defined]
            (Message.__table__, "address", "+14155550100"),  # type: ignore[attr-defined]
            (Supporter.__table__, "name", "Ada"),  # type: ignore[attr-defined]
            (SupporterAddress.__table__, "address_sealed", "+14155550100"),  # type: ignore[attr-defined]
        ]
        for table, column, value in cases:
            kind = table.c[column].type
            lane = encoder(table, column)
            assert lane is not None
            ours, theirs = lane(value), kind.process_bind_param(value, None)
            if with_keys and value:  # a fresh nonce each: equal once opened
                assert ours != theirs
                assert _opened(kind, ours) == _opened(kind, theirs) == value
            else:
                assert ours == theirs
    finally:
        install(None)


def _opened(kind: object, stored: str) -> object:
    if isinstance(kind, SealedAddress):  # bound to its row's blind index
        crypto = active()
        assert crypto is not None
        plain = crypto.open(f"{kind.label}|{crypto.blind('+14155550100')}", stored)
        return plain
    return kind.process_result_value(stored, None)  # type: ignore[attr-defined]


def test_a_stored_address_pair_names_its_index(crypto: Crypto) -> None:
    kind = Message.__table__.c.address.type  # type: ignore[attr-defined]
    stored = kind.process_bind_param("+14155550100", None)
    assert pair_index(stored) == crypto.blind("+14155550100")
    assert open_pair("supporter_addresses.address", stored) == "+14155550100"

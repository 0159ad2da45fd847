"""Encryption of columns at rest: AES-256-GCM values and HMAC-SHA256 blind indexes.

A sealed value is text: `e1:<key id>:<base64url(nonce | ciphertext | tag)>`. The nonce is
12 fresh random bytes per value; the associated data names the table and column
(`messages.body`), and for an address the blind index of its row too, so a value moved
into another column (or an address into another row) fails to decrypt. The key id is
the start of a SHA-256 of the key: rotation (`storage.rotation`) knows which values are
under an older key without trying each.

A blind index is `b1:<hex HMAC-SHA256(index key, value)>`: equal values give equal
indexes, so a lookup by address stays one indexed equality. The index key is random,
made once and kept in `server_secrets` sealed under the newest key (`storage.crypto_setup`);
it never rotates, so rotating the encryption keys rewrites no index.

Column types (`storage.sealed_types`) reach the keys through `active()`: a column's bind
and result processors get nothing but the value, and the SQLite lane compiles its
statements once at import. `install` is called at start-up with the settings' keys (None:
plaintext, as before).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SEALED_PREFIX = "e1:"
INDEX_PREFIX = "b1:"
KEY_BYTES = 32
NONCE_BYTES = 12
ENV_NAME = "RALLYPOINT_ENCRYPTION_KEYS"
NONCE_BLOCK = 1024  # nonces per read from the OS
# Addresses whose blind index is remembered: more than a busy hour's distinct senders.
BLIND_CACHE = 65536
_URLSAFE = bytes.maketrans(b"+/", b"-_")


class KeyFormatError(ValueError):
    """RALLYPOINT_ENCRYPTION_KEYS is not comma-separated base64 32-byte keys."""


class UndecryptableError(Exception):
    """A sealed value none of the configured keys opens (wrong key, or tampered with)."""


def parse_keys(raw: str | None) -> list[bytes]:
    """The keys of RALLYPOINT_ENCRYPTION_KEYS, newest first; [] when unset."""
    if raw is None or not raw.strip():
        return []
    keys: list[bytes] = []
    for n, part in enumerate(raw.split(","), start=1):
        text = part.strip()
        try:
            key = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise KeyFormatError(
                f"{ENV_NAME}: key {n} is not base64 (make one with: openssl rand -base64 32)"
            ) from None
        if len(key) != KEY_BYTES:
            raise KeyFormatError(
                f"{ENV_NAME}: key {n} is {len(key)} bytes, not 32 "
                "(make one with: openssl rand -base64 32)"
            )
        keys.append(key)
    return keys


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"rallypoint key id\x00" + key).hexdigest()[:8]


class Crypto:
    """The configured keys (newest first) and the blind index key.

    Every webhook seals three or four values and blinds its sender's address, so the
    per-value work is kept small: the cipher and HMAC objects are made once per key, the
    associated data's bytes once per label, nonces are drawn from the OS in blocks and
    handed out without a lock, and blind indexes are remembered per address.
    """

    def __init__(self, keys: list[bytes], index_key: bytes) -> None:
        if not keys:
            raise ValueError("no keys")
        self._keys = {key_id(k): AESGCM(k) for k in keys}
        self.newest_id = key_id(keys[0])
        self._newest = self._keys[self.newest_id]
        self._prefix = f"{SEALED_PREFIX}{self.newest_id}:"
        # HMAC-SHA256 keyed once: a copy per value skips the key schedule (and OpenSSL 3's
        # per-call algorithm fetch of hmac.digest, most of a one-shot HMAC's cost).
        self._index_mac = hmac.new(index_key, digestmod=hashlib.sha256)
        self._nonces: list[bytes] = []
        # One inbound message blinds its sender's address 3-4 times (lookup, insert, the
        # sealed copies' associated data): remembered, the HMAC runs once per address.
        self._blind = functools.lru_cache(maxsize=BLIND_CACHE)(self._blind_uncached)

    @property
    def key_ids(self) -> list[str]:
        return list(self._keys)

    def _nonce(self) -> bytes:
        """12 fresh random bytes, from the OS in blocks: one getrandom call per 1,024
        nonces instead of one per value (it was a third of a seal's cost). `list.pop` is
        atomic, so the SQLite lane's thread and the event loop never get the same one."""
        try:
            return self._nonces.pop()
        except IndexError:
            block = os.urandom(NONCE_BYTES * NONCE_BLOCK)
            fresh = [block[at : at + NONCE_BYTES] for at in range(0, len(block), NONCE_BYTES)]
            nonce = fresh.pop()
            self._nonces.extend(fresh)  # a concurrent refill only adds more fresh ones
            return nonce

    def seal(self, aad: str, plaintext: str) -> str:
        nonce = self._nonce()
        sealed = self._newest.encrypt(nonce, plaintext.encode(), aad.encode())
        token = binascii.b2a_base64(nonce + sealed, newline=False).translate(_URLSAFE)
        return self._prefix + token.rstrip(b"=").decode("ascii")

    def open(self, aad: str, value: str) -> str:
        return open_with(self._keys, aad, value)

    def blind(self, value: str) -> str:
        """The blind index of `value`: equal values, equal indexes."""
        index: str = self._blind(value)
        return index

    def keyed_digest(self, message: bytes) -> bytes:
        """HMAC-SHA256 of `message` under the index key (the search terms of
        `storage.search_terms`, whose messages are domain-separated from addresses')."""
        mac = self._index_mac.copy()
        mac.update(message)
        return mac.digest()

    def _blind_uncached(self, value: str) -> str:
        return INDEX_PREFIX + self.keyed_digest(value.encode()).hex()


def open_with(keys: dict[str, AESGCM], aad: str, value: str) -> str:
    """Decrypt a sealed `value` with whichever of `keys` (by key id) sealed it."""
    try:
        _, kid, token = value.split(":", 2)
        aead = keys[kid]
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        return aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad.encode()).decode()
    except KeyError:
        raise UndecryptableError("sealed under a key that is not configured") from None
    except (ValueError, InvalidTag, binascii.Error):
        raise UndecryptableError("does not decrypt (wrong key or altered)") from None


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(SEALED_PREFIX)


def sealed_key_id(value: str) -> str:
    return value.split(":", 2)[1]


_active: Crypto | None = None


def install(crypto: Crypto | None) -> None:
    """Make `crypto` the one every sealed column uses (None: store plaintext)."""
    global _active
    _active = crypto


def active() -> Crypto | None:
    return _active

"""Console passwords: Argon2id hashes (argon2-cffi's defaults, RFC 9106's second profile),
computed off the event loop (each takes tens of milliseconds of CPU)."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_LENGTH = 12
_hasher = PasswordHasher()
# Verified against when the email is unknown, so a wrong email costs as long as a wrong
# password and the answer's timing does not tell which emails have accounts.
_DUMMY_HASH = _hasher.hash("not a password of anyone's")


class PasswordTooShort(ValueError):
    def __init__(self) -> None:
        super().__init__(f"a password has at least {MIN_PASSWORD_LENGTH} characters")


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordTooShort()


async def hash_password(password: str) -> str:
    check_password(password)
    return await asyncio.to_thread(_hasher.hash, password)


def _verify(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(stored: str | None, password: str) -> bool:
    """Whether `password` matches `stored`; None (no such user) costs the same and fails."""
    ok = await asyncio.to_thread(_verify, stored or _DUMMY_HASH, password)
    return ok and stored is not None

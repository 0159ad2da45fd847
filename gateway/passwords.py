"""Console passwords: Argon2id hashes with OWASP's recommended parameters (19 MiB, 2
passes, 1 lane: tens of milliseconds of CPU, computed off the event loop). Each hash
records its parameters, so raising them later still verifies old hashes
(`needs_rehash` tells when to store a fresh one)."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_LENGTH = 12
_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
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


def needs_rehash(stored: str) -> bool:
    """Whether `stored` was made with other parameters than today's."""
    try:
        return _hasher.check_needs_rehash(stored)
    except InvalidHashError:
        return True

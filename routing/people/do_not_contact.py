"""The do-not-contact list: keyed hashes of the opted-out addresses of erased supporters.

Only HMAC-SHA256(key, "phone:+1…" | "<channel>:<address>") is kept, so the list does not
say who was erased, yet a later inbound, import or create of the same address is created
opted out: erasure never re-enables messaging. The key is RALLYPOINT_ERASURE_KEY when set
(kept apart from the database: a dump alone cannot test numbers against the list), else
a random key the server generates once and keeps in `server_secrets` (works with no
setup, but whoever holds a dump can hash candidate numbers with it). Changing the key
empties the list in effect, so set it before the first erasure and keep it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from routing.people.addresses import PHONE_CHANNELS
from storage.models import ConsentEvent, DoNotContact, ServerSecret, Supporter

SECRET_NAME = "erasure_key"


def person_address(channel: str, address: str) -> str:
    """One name per person: a phone number is the same on sms and whatsapp."""
    return "phone:" + address if channel in PHONE_CHANNELS else f"{channel}:{address}"


def address_hash(key: bytes, channel: str, address: str) -> str:
    return hmac.new(key, person_address(channel, address).encode(), hashlib.sha256).hexdigest()


async def hash_key(
    session: AsyncSession, configured: str | None, now: datetime, *, create: bool
) -> bytes | None:
    """The list's key: `configured` (RALLYPOINT_ERASURE_KEY), else the stored one, made
    now if `create` (None when there is none yet: then nothing is on the list)."""
    if configured:
        return configured.encode()
    row = await session.get(ServerSecret, SECRET_NAME)
    if row is None:
        if not create:
            return None
        row = ServerSecret(name=SECRET_NAME, value=secrets.token_hex(32), created_at=now)
        session.add(row)
        await session.flush()
    return row.value.encode()


async def bar(
    session: AsyncSession, key: bytes, addresses: Iterable[tuple[str, str]], now: datetime
) -> None:
    """Put (channel, address) pairs on the list (once each)."""
    hashes = {address_hash(key, c, a) for c, a in addresses}
    if not hashes:
        return
    have = set(
        (
            await session.exec(
                select(DoNotContact.address_hash).where(col(DoNotContact.address_hash).in_(hashes))
            )
        ).all()
    )
    for h in sorted(hashes - have):
        session.add(DoNotContact(address_hash=h, created_at=now))
    await session.flush()


def hashes_of(key: bytes, pairs: Iterable[tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """Each pair's hash under `key`."""
    return {address_hash(key, c, a): (c, a) for c, a in pairs}


async def barred(
    session: AsyncSession,
    configured: str | None,
    addresses: Iterable[tuple[str, str]],
    now: datetime,
) -> set[tuple[str, str]]:
    """Those (channel, address) pairs that are on the list."""
    pairs = set(addresses)
    if not pairs:
        return set()
    key = await hash_key(session, configured, now, create=False)
    if key is None:
        return set()
    by_hash = hashes_of(key, pairs)
    found = (
        await session.exec(
            select(DoNotContact.address_hash).where(col(DoNotContact.address_hash).in_(by_hash))
        )
    ).all()
    return {by_hash[h] for h in found}


async def bar_if_listed(
    session: AsyncSession,
    supporter: Supporter,
    addresses: Iterable[tuple[str, str]],
    *,
    erasure_key: str | None,
    now: datetime,
) -> bool:
    """Opt `supporter` out when one of `addresses` is on the list; True if so. For new
    supporters and new addresses: erasure must never re-enable messaging."""
    if supporter.opted_out or not await barred(session, erasure_key, addresses, now):
        return False
    assert supporter.id is not None
    supporter.opted_out, supporter.opted_out_at, supporter.updated_at = True, now, now
    session.add(supporter)
    session.add(
        ConsentEvent(
            supporter_id=supporter.id,
            action="opt_out",
            reason="do_not_contact",
            created_at=now,
        )
    )
    await session.flush()
    return True

"""Start-up of encryption at rest: the keys from RALLYPOINT_ENCRYPTION_KEYS against what the
database holds. Every way it can be wrong is one `EncryptionSetupError` with one line
(`serve` prints it and exits), never ciphertext served or an error per request."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storage.crypto import (
    ENV_NAME,
    Crypto,
    UndecryptableError,
    install,
    is_sealed,
    key_id,
    open_with,
    parse_keys,
)
from storage.field_values import field_aad
from storage.models import ServerSecret
from storage.search_terms import fill_if_empty

INDEX_KEY_NAME = "blind_index_key"
INDEX_KEY_AAD = "server_secrets.blind_index_key"
SECRETS = ServerSecret.__table__  # type: ignore[attr-defined]
# A value of each sealed table read at start-up (the newest and the oldest row): a key
# dropped before rotation finished is found here rather than by a reader.
PROBES = (
    ("messages", "body", "messages.body"),
    ("supporters", "name", "supporters.name"),
)


PLAINTEXT_HELD = (
    f"{ENV_NAME} is set but the database holds unencrypted data: run "
    "`rallypoint keys rotate-encryption` once to encrypt it"
)


class EncryptionSetupError(Exception):
    """The keys and the database do not go together; the message is the one line to show."""


async def setup_encryption(
    engine: AsyncEngine, raw_keys: str | None, *, allow_plaintext: bool = False
) -> Crypto | None:
    """Check the keys against the database, make the blind index key on first use, and
    install the result for the sealed column types (None: plaintext). Plaintext rows with
    keys set are refused unless `allow_plaintext` (rotation, which seals them). Then the
    supporter search index is built if the migration could not (it cannot read sealed
    names)."""
    crypto = await _install_keys(engine, raw_keys, allow_plaintext=allow_plaintext)
    await fill_if_empty(engine)
    return crypto


async def _install_keys(
    engine: AsyncEngine, raw_keys: str | None, *, allow_plaintext: bool
) -> Crypto | None:
    """`setup_encryption` but the search index."""
    keys = parse_keys(raw_keys)
    async with engine.begin() as conn:
        stored = await _stored_index_key(conn)
        if not keys:
            if stored is not None:
                raise EncryptionSetupError(
                    f"the database holds encrypted data and {ENV_NAME} is unset: "
                    "set it to the keys it was encrypted with"
                )
            install(None)
            return None
        aeads = {key_id(k): AESGCM(k) for k in keys}
        if stored is None:
            if not allow_plaintext and await _plain_data(conn):
                raise EncryptionSetupError(PLAINTEXT_HELD)
            index_key = os.urandom(32)
            crypto = Crypto(keys, index_key)
            await _store_index_key(conn, crypto, index_key)
        else:
            try:
                index_key = base64.b64decode(open_with(aeads, INDEX_KEY_AAD, stored))
            except UndecryptableError:
                raise EncryptionSetupError(_wrong_keys(stored)) from None
            crypto = Crypto(keys, index_key)
            await _probe(conn, aeads)
            # Custom field values stored in plaintext by a version that did not seal them:
            # an audience filter looks for their blind index and would miss them.
            if not allow_plaintext and await _plain_field_values(conn):
                raise EncryptionSetupError(PLAINTEXT_HELD)
    install(crypto)
    return crypto


def _wrong_keys(value: str) -> str:
    kid = value.split(":", 2)[1] if value.count(":") >= 2 else "?"
    return (
        f"{ENV_NAME} does not hold the key the database was encrypted with "
        f"(key id {kid}); refusing to start"
    )


async def _stored_index_key(conn: AsyncConnection) -> str | None:
    row = (
        await conn.execute(select(SECRETS.c.value).where(SECRETS.c.name == INDEX_KEY_NAME))
    ).first()
    return None if row is None else str(row[0])


async def _store_index_key(conn: AsyncConnection, crypto: Crypto, index_key: bytes) -> None:
    await conn.execute(
        SECRETS.insert().values(
            name=INDEX_KEY_NAME,
            value=crypto.seal(INDEX_KEY_AAD, base64.b64encode(index_key).decode()),
            created_at=datetime.now(UTC),
        )
    )


async def reseal_index_key(conn: AsyncConnection, crypto: Crypto, index_key: bytes) -> None:
    """The blind index key sealed again under the newest key (rotation's last step)."""
    await conn.execute(
        SECRETS.update()
        .where(SECRETS.c.name == INDEX_KEY_NAME)
        .values(value=crypto.seal(INDEX_KEY_AAD, base64.b64encode(index_key).decode()))
    )


async def current_index_key(conn: AsyncConnection, crypto: Crypto) -> bytes:
    stored = await _stored_index_key(conn)
    assert stored is not None, "setup_encryption makes it"
    return base64.b64decode(crypto.open(INDEX_KEY_AAD, stored))


async def _plain_data(conn: AsyncConnection) -> bool:
    found = await conn.execute(
        text(
            "SELECT 1 FROM supporter_addresses WHERE address <> '' "
            "AND address NOT LIKE 'b1:%' LIMIT 1"
        )
    )
    return found.first() is not None or await _plain_field_values(conn)


async def _plain_field_values(conn: AsyncConnection) -> bool:
    found = await conn.execute(
        text("SELECT 1 FROM supporter_field_values WHERE value_sealed IS NULL LIMIT 1")
    )
    return found.first() is not None


async def _probe(conn: AsyncConnection, aeads: dict[str, AESGCM]) -> None:
    for table, column, label in PROBES:
        for order in ("ASC", "DESC"):
            # Names are our own constants, never input.
            sql = f"SELECT {column} FROM {table} ORDER BY id {order} LIMIT 1"  # noqa: S608
            row = (await conn.execute(text(sql))).first()
            if row is None or not is_sealed(row[0]):
                continue
            try:
                open_with(aeads, label, str(row[0]))
            except UndecryptableError:
                raise EncryptionSetupError(_wrong_keys(str(row[0]))) from None
    row = (
        await conn.execute(
            text(
                "SELECT supporter_id, field_id, value_sealed FROM supporter_field_values "
                "WHERE value_sealed IS NOT NULL LIMIT 1"
            )
        )
    ).first()
    if row is not None:
        try:
            open_with(aeads, field_aad(row[0], row[1]), str(row[2]))
        except UndecryptableError:
            raise EncryptionSetupError(_wrong_keys(str(row[2]))) from None

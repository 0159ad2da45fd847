"""DELETE /api/v1/supporters/{id} is the complete erasure of POST .../erase (do-not-contact
list, audit entry, bytes gone from the files), and an erased supporter's id is never
given to someone new (AUTOINCREMENT on SQLite, a sequence on PostgreSQL)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

from storage.models import AuditEvent, DoNotContact
from tests.conftest import PG_URL
from tests.gateway.test_erasure import (
    API,
    BODY,
    NAME,
    PHONE,
    api,
    count,
    organizer,
    raw_bytes,
    zebulon,
)

MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]


async def test_delete_erases_completely_and_the_id_is_never_reused(
    make_client: MakeClient,
) -> None:
    client = await organizer(make_client)
    sid = await zebulon(client)  # the newest supporter: the id SQLite would hand out again
    answer = await client.delete(f"{API}/supporters/{sid}")
    assert answer.status_code == 204
    assert (await client.delete(f"{API}/supporters/{sid}")).status_code == 404
    assert await count(client, DoNotContact) == 1  # they had opted out: still barred
    assert await count(client, AuditEvent, AuditEvent.action == "supporter_erased") == 1
    if PG_URL is None:
        data = raw_bytes(client)
        for secret in (NAME, BODY, PHONE):
            assert secret.encode() not in data, secret
    made = await api(client, "POST", "/supporters", json={"name": "Someone New"})
    assert made["id"] > sid

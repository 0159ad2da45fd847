"""Helpers the spool tests share: a SQLite database held locked by another connection,
signed Twilio webhooks, and bounded waits."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from sqlmodel import select

from storage.models import Message
from tests.channels.twilio_case import signed_post, sms_form

ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]
PHONE = "+254712345678"
WAIT = 15.0  # bound on every wait for a replay


def lock_sqlite(database_url: str) -> sqlite3.Connection:
    """Another connection holding the database's write lock (BEGIN EXCLUSIVE)."""
    connection = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
    connection.execute("BEGIN EXCLUSIVE")
    return connection


def release(connection: sqlite3.Connection) -> None:
    connection.execute("ROLLBACK")
    connection.close()


def sid(n: int) -> str:
    return f"SM{n:032d}"


async def post_sms(client: httpx.AsyncClient, n: int, body: str) -> httpx.Response:
    request = signed_post(sms_form(sid(n), PHONE, body))
    return await client.post(request.path, headers=request.headers, content=request.content)


async def inbound(client: httpx.AsyncClient) -> list[tuple[str, str]]:
    """(provider id, body) of every stored inbound message, in the order stored."""
    async with client.ctx.sessions() as session:  # type: ignore[attr-defined]
        rows = (await session.exec(select(Message).order_by(Message.id))).all()
    return [(m.provider_message_id or "", m.body) for m in rows if m.direction == "inbound"]


async def eventually(check: Callable[[], Awaitable[bool]], bound: float = WAIT) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + bound
    while not await check():
        assert loop.time() < deadline, "not within the bound"
        await asyncio.sleep(0.02)


def spooled_records(directory: Path) -> int:
    return sum(p.read_bytes().count(b"\n") for p in directory.glob("*.spool"))

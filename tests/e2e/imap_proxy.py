"""A TCP proxy between the IMAP reader and Dovecot that can drop the connection the moment
the client sends a given command (before the server sees it): the way a network or a
server restart cuts a session half way."""

from __future__ import annotations

import asyncio
import contextlib

from channels.email.fake import free_port


class DroppingProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.drop_on: bytes | None = None  # the next client chunk holding this drops all
        self.drops = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            await asyncio.wait_for(self._server.wait_closed(), 10)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", self.upstream_port), 10
        )
        self._writers |= {writer, up_writer}
        try:
            await asyncio.gather(
                self._pump(reader, up_writer, writer, check=True),
                self._pump(up_reader, writer, up_writer, check=False),
            )
        finally:
            for w in (writer, up_writer):
                w.close()
                self._writers.discard(w)

    async def _pump(
        self,
        source: asyncio.StreamReader,
        target: asyncio.StreamWriter,
        other: asyncio.StreamWriter,
        *,
        check: bool,
    ) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while chunk := await source.read(65536):
                if check and self.drop_on is not None and self.drop_on in chunk:
                    self.drop_on = None
                    self.drops += 1
                    target.close()
                    other.close()
                    return
                target.write(chunk)
                await target.drain()
        target.close()

"""The provider HTTP client, and the short path every adapter's send takes through it.

Every adapter gets one `httpx.AsyncClient`, so tests fake providers at the wire with
`httpx.MockTransport`, respx or the `fake.py` servers. In production that client is a
`ProviderClient`: httpx's API over one aiohttp connection pool. Measured with py-spy on
the dispatch benchmark, httpx's own request and response handling on top of aiohttp took
more of a send's CPU than aiohttp itself (URL merging, cookies, auth flow, header
objects, the response stream), so `post` hands a send's ready-made body and headers
straight to the pool's aiohttp session when the client is a `ProviderClient`, and goes
through httpx (`client.post`) otherwise: the same request on the wire either way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from yarl import URL

# httpx's timeouts of the provider client: 15 s to read, 5 s to connect.
READ_SECONDS = 15.0
CONNECT_SECONDS = 5.0
KEEPALIVE_SECONDS = 4.0


@dataclass(frozen=True, slots=True)
class Answer:
    """A provider's answer to a send: status, body, and headers (case-insensitive)."""

    status_code: int
    content: bytes
    headers: Mapping[str, str]

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300


class ProviderClient(httpx.AsyncClient):
    """httpx over one aiohttp pool of `pool` connections, whose session `post` uses."""

    def __init__(self, pool: int) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._pool = pool
        limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
        super().__init__(
            transport=AiohttpTransport(limits=limits, client=self.session),
            timeout=httpx.Timeout(READ_SECONDS, connect=CONNECT_SECONDS),
        )

    def session(self) -> aiohttp.ClientSession:
        """The pool's aiohttp session, made on first use (inside the running loop)."""
        if self._session is None:
            # An idle connection is dropped before a server's own keep-alive (often 5 s,
            # uvicorn's) closes it under us: a POST on a just-closed one fails, unretried.
            connector = aiohttp.TCPConnector(
                limit=self._pool, limit_per_host=0, keepalive_timeout=KEEPALIVE_SECONDS
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=CONNECT_SECONDS, sock_read=READ_SECONDS
                ),
                # No cookie jar: provider APIs authenticate every request with a header.
                cookie_jar=aiohttp.DummyCookieJar(),
                # httpx decodes what it asked for itself (its requests carry their own
                # Accept-Encoding); a direct `post_bytes` asks for answers as they are, so
                # a gzipped 201 is never taken for a failed send.
                auto_decompress=False,
                headers={"Accept-Encoding": "identity"},
            )
        return self._session

    async def post_bytes(self, url: str, body: bytes, headers: Mapping[str, str]) -> Answer:
        try:
            async with self.session().post(
                _url(url), data=body, headers=headers, allow_redirects=False
            ) as response:
                return Answer(response.status, await response.read(), response.headers)
        except TimeoutError as exc:
            raise httpx.ReadTimeout(f"no answer in {READ_SECONDS:g} s") from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(type(exc).__name__) from exc
        except aiohttp.ServerDisconnectedError as exc:
            # Closed by the server before an answer (a kept-alive connection it dropped).
            raise httpx.RemoteProtocolError(type(exc).__name__) from exc
        except aiohttp.ClientPayloadError as exc:
            raise httpx.ReadError(type(exc).__name__) from exc
        except aiohttp.ClientError as exc:
            # Only the type: aiohttp's messages carry the URL, and a bot token can be in it.
            raise httpx.NetworkError(type(exc).__name__) from exc

    async def aclose(self) -> None:
        await super().aclose()  # the transport closes the session
        if self._session is not None and not self._session.closed:
            await self._session.close()
        # aiohttp's connections close on the next loop turn (its documented grace).
        await asyncio.sleep(0)


@lru_cache(maxsize=256)
def _url(url: str) -> URL:
    # A provider's send URL is the same string for every send: parse it once.
    return URL(url)


async def post(
    client: httpx.AsyncClient, url: str, body: bytes, headers: Mapping[str, str]
) -> Answer:
    """POST `body` with `headers` (Content-Type and Authorization included) to `url`;
    raises httpx.TransportError on connect, read and pool failures, as httpx does."""
    if isinstance(client, ProviderClient):
        return await client.post_bytes(url, body, headers)
    response = await client.post(url, content=body, headers=headers)
    return Answer(response.status_code, response.content, response.headers)

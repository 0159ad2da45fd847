"""Bounded downloads of inbound media, shared by the adapters' `fetch_media`.

A download is refused past `max_bytes` (from the declared length, else as the bytes come,
so an oversized file is never read whole), has a per-read timeout and an overall deadline,
and its errors name the provider and the HTTP status, never the URL: Telegram's file URLs
carry the bot token.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import httpx

from channels.base import MediaContent, MediaError, MediaGone, MediaTooLarge, MediaUnavailable

# A message's public page: /m/<token>[/media/<n>] (routing/outbound/links.py).
_PAGE_TOKEN = re.compile(r"/m/[A-Za-z0-9_-]+")


class RedactUrls(logging.Filter):
    """httpx logs each request's URL at INFO; a file sent from a message's public page
    carries the page's token in its URL: the token is left out (the rest is kept)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_without_token(arg) for arg in record.args)
        return True


def _without_token(value: Any) -> Any:
    if isinstance(value, httpx.URL | str) and "/m/" in str(value):
        return _PAGE_TOKEN.sub("/m/<redacted>", str(value))
    return value


def quiet_request_urls() -> None:
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, RedactUrls) for f in logger.filters):
        logger.addFilter(RedactUrls())


quiet_request_urls()

MEDIA_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
# The whole download, however slowly a server drips bytes within the per-read timeout.
MEDIA_DEADLINE = 120.0


def too_large(provider: str, size: int, max_bytes: int) -> MediaTooLarge:
    return MediaTooLarge(f"{provider} media is {size} bytes, over the limit of {max_bytes}")


def status_error(provider: str, status_code: int) -> MediaError:
    """The MediaError for a provider's non-2xx answer to a media request."""
    if status_code in (404, 410):
        return MediaGone(f"{provider} no longer has this media (HTTP {status_code})")
    if status_code in (401, 403):
        return MediaUnavailable(f"{provider} refused our credentials (HTTP {status_code})")
    return MediaUnavailable(f"{provider} answered HTTP {status_code}")


async def download(
    client: httpx.AsyncClient,
    url: str,
    *,
    provider: str,
    max_bytes: int,
    headers: dict[str, str] | None = None,
    auth: httpx.Auth | None = None,
    follow_redirects: bool = False,
) -> MediaContent:
    """GET `url` into memory, at most `max_bytes` of it; the content type is the server's.

    On a redirect to another host httpx drops the Authorization header, so credentials
    meant for the provider's API never reach its CDN.
    """
    try:
        async with asyncio.timeout(MEDIA_DEADLINE):
            async with client.stream(
                "GET",
                url,
                headers=headers,
                auth=auth,
                follow_redirects=follow_redirects,
                timeout=MEDIA_TIMEOUT,
            ) as response:
                if not response.is_success:
                    raise status_error(provider, response.status_code)
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise too_large(provider, int(declared), max_bytes)
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():  # decoded: a gzip bomb counts
                    size += len(chunk)
                    if size > max_bytes:
                        raise MediaTooLarge(f"{provider} media is over the limit of {max_bytes}")
                    chunks.append(chunk)
                content_type = response.headers.get("content-type")
    except TimeoutError as exc:
        raise MediaUnavailable(f"{provider} media took over {MEDIA_DEADLINE:g} s") from exc
    except httpx.HTTPError as exc:  # transport errors, timeouts, too many redirects
        raise MediaUnavailable(f"{provider} media unreachable: {type(exc).__name__}") from exc
    return MediaContent(b"".join(chunks), content_type)

"""An organization (tests/e2e/harness.py) whose provider transport also serves files from
a media host, as a CDN would: HEAD and GET with the size and type each file is given,
and our own public pages (a provider fetching an uploaded file)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.conftest import FakeClock, bearer, new_key
from tests.e2e.harness import MakeClient, Org, Providers, settings_for

MEDIA_HOST = "media.example.test"
PUBLIC_HOST = "rallypoint.example.org"


@dataclass
class MediaHost:
    """Files by path: (content type, size); `no_head` paths answer HEAD with 405."""

    files: dict[str, tuple[str, int]] = field(default_factory=dict)
    no_head: set[str] = field(default_factory=set)
    requests: list[httpx.Request] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"https://{MEDIA_HOST}{path}"

    def answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path not in self.files:
            return httpx.Response(404)
        content_type, size = self.files[path]
        if request.method == "HEAD":
            if path in self.no_head:
                return httpx.Response(405)
            return httpx.Response(
                200, headers={"content-type": content_type, "content-length": str(size)}
            )
        return httpx.Response(200, headers={"content-type": content_type}, content=b"x" * size)


async def start(
    make_client: MakeClient, clock: FakeClock, **settings: Any
) -> tuple[Org, MediaHost]:
    providers = Providers()
    media = MediaHost()
    ours: list[httpx.AsyncClient] = []

    async def route(request: httpx.Request) -> httpx.Response:
        if request.url.host == MEDIA_HOST:
            return media.answer(request)
        if request.url.host == PUBLIC_HOST:  # our own public pages (email attachments)
            answer = await ours[0].get(request.url.path)
            return httpx.Response(
                answer.status_code, headers=answer.headers, content=answer.content
            )
        return await providers(request)

    settings.setdefault("allow_private_webhooks", True)  # the test host does not resolve
    client = await make_client(transport=httpx.MockTransport(route), **settings_for(**settings))
    ours.append(client)
    org = Org(client, providers, clock)
    client.headers.update(bearer(await new_key(org.ctx)))
    return org, media

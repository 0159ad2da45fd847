"""An in-process fake of the Telegram Bot API for tests and demos.

Use `FakeTelegramApi().transport` as an httpx transport. It answers getMe, setWebhook,
getWebhookInfo, sendMessage, sendPhoto, sendAudio and sendDocument (form-encoded as
python-telegram-bot sends them, or JSON) with real-shaped results, records what each chat
was sent, and plays scripted failures per chat id.

Files supporters sent: `add_file(bytes)` gives a file_id for an Update; getFile answers
its file_path and the bytes are served at /file/bot<token>/<file_path>, as Telegram does.
"""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import httpx

BOT_USER = {"id": 123456, "is_bot": True, "first_name": "Rallypoint", "username": "rallypoint_bot"}

# Scripted failures: (HTTP status, description, response parameters).
FAILURES: dict[str, tuple[int, str, dict[str, Any]]] = {
    "blocked": (403, "Forbidden: bot was blocked by the user", {}),
    "cannot_initiate": (403, "Forbidden: bot can't initiate conversation with a user", {}),
    "chat_not_found": (400, "Bad Request: chat not found", {}),
    "bad_request": (400, "Bad Request: can't parse entities", {}),
    "unauthorized": (401, "Unauthorized", {}),
    "server_error": (502, "Bad Gateway", {}),
    "internal_error": (500, "Internal Server Error", {}),
    "conflict": (409, "Conflict: terminated by other getUpdates request", {}),
    # A 429 without its retry_after parameter (Telegram sends one; a proxy may not).
    "too_many_requests": (429, "Too Many Requests", {}),
    "migrated": (400, "Bad Request: group chat was upgraded to a supergroup chat", {}),
}
# Failures raised at the transport, as a dead network would.
TRANSPORT_FAILURES = ("connect_error", "timeout")
MEDIA_METHODS = {"sendPhoto": "photo", "sendDocument": "document", "sendAudio": "audio"}
# Telegram serves bots files up to 20 MB; getFile refuses larger ones.
MAX_DOWNLOAD = 20 * 1024 * 1024
FILE_CHUNK = 1024
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")


@dataclass(frozen=True)
class Call:
    """One Bot API call as the fake received it."""

    method: str
    params: dict[str, Any]
    content_type: str


class FakeTelegramApi:
    def __init__(self, token: str | None = None, *, date: int = 1772636400) -> None:
        self.token = token  # when set, calls with another token answer 401
        self.date = date
        self.calls: list[Call] = []
        self.sent: dict[str, list[str]] = defaultdict(list)
        self._next_message_id: dict[str, int] = defaultdict(lambda: 1)
        self._script: dict[str, deque[str | None]] = defaultdict(deque)
        # Files by file_id: (file_path, bytes, the size getFile reports).
        self.files: dict[str, tuple[str, bytes, int]] = {}
        self.file_downloads: list[httpx.Request] = []
        self.file_bytes_served = 0
        self._update_id = 100_000
        # What setWebhook was last given ("" and None: no webhook).
        self.webhook_url = ""
        self.webhook_secret: str | None = None
        self.webhook_allowed_updates: list[str] | None = None

    def text_update(
        self, chat_id: int, text: str, first_name: str, secret: str
    ) -> tuple[bytes, dict[str, str]]:
        """The POST /webhooks/telegram body and headers Telegram would send for `text` from
        the private chat `chat_id`, with the webhook's secret token header."""
        self._update_id += 1
        user = {"id": chat_id, "is_bot": False, "first_name": first_name}
        update = {
            "update_id": self._update_id,
            "message": {
                "message_id": self._update_id,
                "from": user,
                "chat": {"id": chat_id, "type": "private", "first_name": first_name},
                "date": int(time.time()),
                "text": text,
            },
        }
        headers = {"Content-Type": "application/json", SECRET_HEADER: secret}
        return json.dumps(update).encode(), headers

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)

    def fail(self, chat_id: str | int, *outcomes: str | None, retry_after: int = 7) -> None:
        """Queue outcomes for the next calls to `chat_id`: a failure name (FAILURES,
        TRANSPORT_FAILURES or "throttle") or None for a success."""
        for outcome in outcomes:
            if outcome == "throttle":
                outcome = f"throttle:{retry_after}"
            self._script[str(chat_id)].append(outcome)

    def add_file(self, content: bytes, *, kind: str = "photos", size: int | None = None) -> str:
        """Keep `content` as a file a supporter sent; its file_id. `size` overrides the
        file_size getFile reports (e.g. over 20 MB without holding that much)."""
        n = len(self.files)
        file_id = f"AgACAgQAAxkBAAM{n:04d}"
        extension = "jpg" if kind == "photos" else "pdf"
        self.files[file_id] = (f"{kind}/file_{n}.{extension}", content, size or len(content))
        return file_id

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/file/bot"):
            return self._download(request)
        token, _, method = request.url.path.removeprefix("/bot").partition("/")
        params = self._params(request)
        self.calls.append(Call(method, params, request.headers.get("content-type", "")))
        if self.token is not None and token != self.token:
            return self._error(401, "Unauthorized")
        if method == "getMe":
            return self._ok(BOT_USER)
        if method == "setWebhook":
            return self._set_webhook(params)
        if method == "getWebhookInfo":
            return self._ok(
                {
                    "url": self.webhook_url,
                    "has_custom_certificate": False,
                    "pending_update_count": 0,
                }
            )
        if method == "getFile":
            return self._get_file(str(params.get("file_id", "")))
        if method != "sendMessage" and method not in MEDIA_METHODS:
            return self._error(404, "Not Found")
        chat_id = str(params.get("chat_id", ""))
        scripted = self._script[chat_id].popleft() if self._script[chat_id] else None
        if scripted is not None:
            return self._scripted(request, scripted)
        if not chat_id.lstrip("-").isdigit():
            return self._error(400, "Bad Request: chat not found")
        return self._deliver(method, chat_id, params)

    def _deliver(self, method: str, chat_id: str, params: dict[str, Any]) -> httpx.Response:
        message_id = self._next_message_id[chat_id]
        self._next_message_id[chat_id] += 1
        chat_type = "private" if not chat_id.startswith("-") else "group"
        result: dict[str, Any] = {
            "message_id": message_id,
            "date": self.date,
            "chat": {"id": int(chat_id), "type": chat_type, "first_name": "Supporter"},
            "from": BOT_USER,
        }
        if method == "sendMessage":
            text = str(params.get("text", ""))
            if not text:
                return self._error(400, "Bad Request: message text is empty")
            result["text"] = text
            self.sent[chat_id].append(text)
        else:
            field = MEDIA_METHODS[method]
            url = str(params.get(field, ""))
            result["document"] = {
                "file_id": f"fake-file-{message_id}",
                "file_unique_id": f"u{message_id}",
                "file_name": url.rsplit("/", 1)[-1],
            }
            if params.get("caption"):
                result["caption"] = params["caption"]
            self.sent[chat_id].append(f"[{field}] {url}")
        return self._ok(result)

    def _set_webhook(self, params: dict[str, Any]) -> httpx.Response:
        """As Telegram: an https URL (on ports 443, 80, 88 or 8443) and a secret token of
        1-256 letters, digits, _ and -; an empty URL removes the webhook."""
        url, secret = str(params.get("url", "")), str(params.get("secret_token", ""))
        if url:
            parsed = httpx.URL(url)
            if parsed.scheme != "https":
                return self._error(
                    400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
                )
            if parsed.port not in (None, 443, 80, 88, 8443):
                return self._error(
                    400,
                    "Bad Request: bad webhook: Webhook can be set up only on ports 80, "
                    "88, 443 or 8443",
                )
        if secret and not SECRET_TOKEN.fullmatch(secret):
            return self._error(400, "Bad Request: secret token contains unallowed characters")
        self.webhook_url, self.webhook_secret = url, secret or None
        updates = params.get("allowed_updates")
        self.webhook_allowed_updates = json.loads(updates) if isinstance(updates, str) else updates
        return self._ok(True)

    def _get_file(self, file_id: str) -> httpx.Response:
        if file_id not in self.files:
            return self._error(400, "Bad Request: invalid file_id")
        file_path, _, size = self.files[file_id]
        if size > MAX_DOWNLOAD:
            return self._error(400, "Bad Request: file is too big")
        result = {
            "file_id": file_id,
            "file_unique_id": "AQAD" + file_id[-4:],
            "file_size": size,
            "file_path": file_path,
        }
        return self._ok(result)

    def _download(self, request: httpx.Request) -> httpx.Response:
        self.file_downloads.append(request)
        token, _, file_path = request.url.path.removeprefix("/file/bot").partition("/")
        if self.token is not None and token != self.token:
            return self._error(401, "Unauthorized")
        found = next((c for p, c, _ in self.files.values() if p == file_path), None)
        if found is None:
            return self._error(404, "Not Found")
        return httpx.Response(
            200,
            content=self._stream(found),
            headers={"Content-Type": "application/octet-stream"},
        )

    async def _stream(self, content: bytes) -> AsyncIterator[bytes]:
        for start in range(0, len(content), FILE_CHUNK):
            chunk = content[start : start + FILE_CHUNK]
            self.file_bytes_served += len(chunk)
            yield chunk

    def _scripted(self, request: httpx.Request, outcome: str) -> httpx.Response:
        if outcome == "connect_error":
            raise httpx.ConnectError("connection refused", request=request)
        if outcome == "timeout":
            raise httpx.ReadTimeout("read timed out", request=request)
        if outcome.startswith("throttle:"):
            seconds = int(outcome.split(":", 1)[1])
            return self._error(
                429, f"Too Many Requests: retry after {seconds}", {"retry_after": seconds}
            )
        if outcome == "migrated":
            status, description, _ = FAILURES[outcome]
            return self._error(status, description, {"migrate_to_chat_id": -1001234567890})
        status, description, parameters = FAILURES[outcome]
        return self._error(status, description, parameters)

    @staticmethod
    def _params(request: httpx.Request) -> dict[str, Any]:
        content_type = request.headers.get("content-type", "")
        body = request.content
        params: dict[str, Any] = dict(request.url.params)
        if content_type.startswith("application/json") and body:
            params.update(json.loads(body))
        elif content_type.startswith("application/x-www-form-urlencoded"):
            params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        return params

    @staticmethod
    def _ok(result: Any) -> httpx.Response:
        return httpx.Response(200, json={"ok": True, "result": result})

    @staticmethod
    def _error(
        status: int, description: str, parameters: dict[str, Any] | None = None
    ) -> httpx.Response:
        payload: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if parameters:
            payload["parameters"] = parameters
        return httpx.Response(status, json=payload)

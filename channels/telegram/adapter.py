"""The Telegram Bot API adapter: webhook Updates in, sendMessage out.

Sending goes through python-telegram-bot's `Bot`, whose HTTPXRequest is given a
transport that hands every request to the gateway's injected httpx client, so tests
and fakes answer at the wire and one connection pool serves every adapter.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
from collections import OrderedDict
from dataclasses import dataclass, field

import httpx
from telegram import Bot, Message
from telegram.error import TelegramError
from telegram.request import HTTPXRequest

from channels.base import (
    Attachment,
    Capabilities,
    Channel,
    InvalidSignature,
    MalformedPayload,
    MediaContent,
    MediaGone,
    OutboundMedia,
    OutboundMessage,
    SendError,
    SendResult,
    WebhookEvent,
    WebhookRequest,
    WebhookResponse,
)
from channels.media import download, too_large
from channels.telegram.config import TelegramConfig
from channels.telegram.errors import map_media_error, map_telegram_error
from channels.telegram.split import split_text
from channels.telegram.updates import events_from_update, load_update

log = logging.getLogger(__name__)

SECRET_HEADER = "x-telegram-bot-api-secret-token"
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp")
# How many partly sent messages we remember so that a retry skips the parts already sent.
MAX_TRACKED_SENDS = 10_000
_TOKEN_IN_URL = re.compile(r"/bot\d+:[A-Za-z0-9_-]+")


def _media_step(media: OutboundMedia) -> str:
    """sendPhoto for images, sendAudio for audio, sendDocument for the rest (by content
    type when known, else by the URL's suffix)."""
    if media.content_type:
        return {"image": "photo", "audio": "audio"}.get(media.kind, "document")
    return "photo" if media.url.lower().split("?")[0].endswith(PHOTO_SUFFIXES) else "document"


class _RedactBotToken(logging.Filter):
    """httpx logs every request URL at INFO, and Bot API URLs carry the bot token. PTB's
    Bot logs each call's parameters and result at DEBUG: message texts, never logged."""

    # Loggers of other libraries: a filter on the logger sees every record it makes.

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(record.msg, str) and record.msg.startswith(_PAYLOAD_LOGS):
            if isinstance(args, tuple) and len(args) == 2:
                record.args = (args[0], "<not logged>")
        message = record.getMessage()
        if "/bot" in message:
            record.msg, record.args = _TOKEN_IN_URL.sub("/bot<redacted>", message), ()
        return True


# PTB's DEBUG records "Calling Bot API endpoint `%s` with parameters `%s`" and "Call to
# Bot API endpoint `%s` finished with return value `%s`": the endpoint is kept.
_PAYLOAD_LOGS = ("Calling Bot API endpoint", "Call to Bot API endpoint")


def install_token_redaction() -> None:
    # PTB's Bot logs its URLs (token included) at DEBUG when it is built.
    for name in ("httpx", "telegram.Bot"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactBotToken) for f in logger.filters):
            logger.addFilter(_RedactBotToken())


class _ClientTransport(httpx.AsyncBaseTransport):
    """Hands PTB's requests to the injected client, and leaves closing it to its owner."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._client.send(request, stream=True)

    async def aclose(self) -> None:
        return None


@dataclass
class _Progress:
    """Parts of one outbound message already accepted by Telegram."""

    digest: str
    sent: int = 0
    first_id: str | None = None


@dataclass
class TelegramAdapter:
    token: str
    webhook_secret: str
    http_client: httpx.AsyncClient
    api_base: str = "https://api.telegram.org"
    provider: str = "telegram"
    channels: tuple[Channel, ...] = ("telegram",)
    # Telegram allows about one message a second per chat; the dispatcher enforces it.
    per_recipient_rate: float = 1.0
    rate_per_second: float | None = None
    _bot: Bot | None = field(default=None, repr=False)
    _requests: list[HTTPXRequest] = field(default_factory=list, repr=False)
    _progress: OrderedDict[int, _Progress] = field(default_factory=OrderedDict, repr=False)
    _username: str | None = field(default=None, repr=False)
    _username_lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    def __post_init__(self) -> None:
        install_token_redaction()

    # Inbound

    def verify(self, request: WebhookRequest) -> None:
        given = request.headers.get(SECRET_HEADER)
        if not given:
            raise InvalidSignature(f"missing {SECRET_HEADER}")
        if not hmac.compare_digest(given.encode(), self.webhook_secret.encode()):
            raise InvalidSignature(f"wrong {SECRET_HEADER}")

    def parse(self, request: WebhookRequest) -> list[WebhookEvent]:
        update = load_update(request.body)
        try:
            return events_from_update(update, request.body.decode("utf-8", "replace"))
        except (AttributeError, TypeError, ValueError) as exc:
            # python-telegram-bot does not check types: a message without `chat`, or whose
            # `text` is a list, only fails here. Telegram sends neither.
            raise MalformedPayload(f"Update has a field of the wrong shape: {exc}") from exc

    def accepted_response(self, request: WebhookRequest) -> WebhookResponse:
        return WebhookResponse(200, "", "text/plain")

    # Outbound

    def capabilities(self, channel: Channel) -> Capabilities:
        return Capabilities(max_length=None, media=True)  # long text is split, not refused

    def sender_key(self, channel: Channel) -> str:
        return "telegram:bot"

    @property
    def bot(self) -> Bot:
        """Built on first use, without Bot.initialize(): no getMe call is needed to send."""
        if self._bot is None:
            self._bot = Bot(
                self.token,
                base_url=f"{self.api_base.rstrip('/')}/bot",
                base_file_url=f"{self.api_base.rstrip('/')}/file/bot",
                request=self._request(),
                get_updates_request=self._request(),
            )
        return self._bot

    def _request(self) -> HTTPXRequest:
        request = HTTPXRequest(
            read_timeout=15.0,
            connect_timeout=5.0,
            # PTB's default of 1 s reaches aiohttp as its connect timeout (a free pooled
            # connection, or a new one, within 1 s): hundreds of sends in flight missed it.
            pool_timeout=5.0,
            httpx_kwargs={"transport": _ClientTransport(self.http_client)},
        )
        self._requests.append(request)
        return request

    async def send(self, message: OutboundMessage) -> SendResult:
        steps = [("text", part) for part in split_text(message.body)]
        steps += [(_media_step(media), media.url) for media in message.media_items()]
        if not steps:
            raise SendError("nothing to send: the message is blank", code="empty")
        progress = self._progress_for(message, steps)
        for index in range(progress.sent, len(steps)):
            kind, value = steps[index]
            try:
                sent = await self._send_step(message.to, kind, value)
            except TelegramError as exc:
                error = map_telegram_error(exc)
                if not error.retryable:
                    self._progress.pop(message.message_id, None)
                elif progress.sent:
                    log.info(
                        "telegram message %s: part %d/%d failed after %d sent; a retry resumes",
                        message.message_id,
                        index + 1,
                        len(steps),
                        progress.sent,
                    )
                raise error from exc
            progress.sent = index + 1
            progress.first_id = progress.first_id or f"{sent.chat.id}:{sent.message_id}"
        self._progress.pop(message.message_id, None)
        assert progress.first_id is not None
        return SendResult(provider_message_id=progress.first_id, segments=len(steps))

    def _progress_for(self, message: OutboundMessage, steps: list[tuple[str, str]]) -> _Progress:
        digest = hashlib.sha256(repr((message.to, steps)).encode()).hexdigest()
        progress = self._progress.get(message.message_id)
        if progress is None or progress.digest != digest:
            progress = _Progress(digest)
            self._progress[message.message_id] = progress
            while len(self._progress) > MAX_TRACKED_SENDS:
                self._progress.popitem(last=False)
        return progress

    async def _send_step(self, chat_id: str, kind: str, value: str) -> Message:
        if kind == "text":
            return await self.bot.send_message(chat_id=chat_id, text=value)
        if kind == "photo":
            return await self.bot.send_photo(chat_id=chat_id, photo=value)
        if kind == "audio":
            return await self.bot.send_audio(chat_id=chat_id, audio=value)
        return await self.bot.send_document(chat_id=chat_id, document=value)

    # Deep links

    async def bot_username(self) -> str | None:
        """The bot's @username from getMe, asked once and kept; None when getMe fails
        (asked again next time: the failure may pass)."""
        async with self._username_lock:  # two links at once still make one getMe
            if self._username is None:
                try:
                    self._username = (await self.bot.get_me()).username
                except TelegramError as exc:
                    # The class only: a network error's text may carry the URL (the token).
                    log.warning("telegram getMe failed (%s); no deep-link url", type(exc).__name__)
            return self._username

    # Media

    def can_fetch(self, channel: Channel, attachment: Attachment) -> bool:
        return channel == "telegram" and attachment.media_id is not None

    async def fetch_media(self, attachment: Attachment, *, max_bytes: int) -> MediaContent:
        """getFile for the file's path, then GET {api_base}/file/bot<token>/<path>."""
        assert attachment.media_id is not None
        try:
            file = await self.bot.get_file(attachment.media_id)
        except TelegramError as exc:
            raise map_media_error(exc) from exc
        if file.file_size is not None and file.file_size > max_bytes:
            raise too_large("Telegram", file.file_size, max_bytes)
        if not file.file_path:
            raise MediaGone("Telegram gave no file path for this media")
        # file_path is the full download URL, bot token included: it is never logged.
        fetched = await download(
            self.http_client, file.file_path, provider="Telegram", max_bytes=max_bytes
        )
        return MediaContent(
            fetched.content,
            attachment.content_type or fetched.content_type,
            attachment.filename,
        )

    async def aclose(self) -> None:
        # Closes PTB's own httpx clients; the injected client is closed by its owner.
        for request in self._requests:
            await request.shutdown()


def build_adapter(config: TelegramConfig, http_client: httpx.AsyncClient) -> TelegramAdapter:
    """The registry's factory."""
    return TelegramAdapter(
        token=config.token,
        webhook_secret=config.webhook_secret,
        http_client=http_client,
        api_base=config.api_base,
        rate_per_second=config.rate_per_second,
    )

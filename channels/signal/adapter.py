"""Signal through signal-cli-rest-api: POST /v2/send out; envelopes in by the receiver
(channels/signal/receiver.py), since the API pushes no webhook.

Sends go over the injected httpx.AsyncClient. The provider message id of a send is its
`timestamp`, which Signal's receipts later name.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx

from channels.base import (
    Attachment,
    Capabilities,
    Channel,
    ChannelMisconfigured,
    InvalidSignature,
    MalformedPayload,
    MediaContent,
    OutboundMessage,
    ProviderUnavailable,
    SendError,
    SendResult,
    WebhookEvent,
    WebhookRequest,
    WebhookResponse,
)
from channels.media import download
from channels.signal.config import SignalConfig
from channels.signal.errors import classify_status, recipient_failure

log = logging.getLogger(__name__)


class SignalAdapter:
    provider = "signal"
    channels: tuple[Channel, ...] = ("signal",)

    def __init__(self, config: SignalConfig, http_client: httpx.AsyncClient) -> None:
        self.config = config
        self.rate_per_second = config.rate_per_second
        self._http = http_client

    # No webhooks: signal-cli-rest-api is read by the receiver, so a POST to
    # /webhooks/signal is no one's and is refused before anything is parsed.

    def verify(self, request: WebhookRequest) -> None:
        raise InvalidSignature("Signal has no webhook: envelopes are received from the API")

    def parse(self, request: WebhookRequest) -> list[WebhookEvent]:
        raise MalformedPayload("Signal has no webhook")

    def accepted_response(self, request: WebhookRequest) -> WebhookResponse:
        return WebhookResponse(404, "not found")

    # Sending

    def capabilities(self, channel: Channel) -> Capabilities:
        # Attachments go as base64 in the send body, which would mean fetching every media
        # URL first: media are sent as links instead. signal-cli sends text over Signal's
        # 2,000-character inline limit as a long-text attachment itself.
        return Capabilities(max_length=None, media=False)

    def sender_key(self, channel: Channel) -> str:
        return self.config.number

    def send_body(self, message: OutboundMessage) -> dict[str, Any]:
        if message.channel != "signal":
            raise ChannelMisconfigured(f"Signal does not send on {message.channel}")
        return {
            "message": message.body,
            "number": self.config.number,
            "recipients": [message.to],
        }

    async def send(self, message: OutboundMessage) -> SendResult:
        body = self.send_body(message)
        try:
            response = await self._http.post(self.config.send_url, json=body)
        except httpx.TimeoutException as exc:
            raise ProviderUnavailable("signal: timed out", code="timeout") from exc
        except httpx.TransportError as exc:
            raise ProviderUnavailable(
                f"signal unreachable: {type(exc).__name__}", code="network"
            ) from exc
        payload = _json(response)
        if response.status_code in (200, 201):
            return self._result(message, payload)
        failure = classify_status(response.status_code, payload, self.config.number)
        log.warning(
            "signal send of message %s failed: HTTP %s (%s %s)",
            message.message_id,
            response.status_code,
            type(failure).__name__,
            failure.code,
        )
        if response.status_code == 429:
            log.warning(
                "Signal asks account SIGNAL_NUMBER to solve a rate-limit challenge (captcha): "
                "see the README's Signal section"
            )
        raise failure

    def _result(self, message: OutboundMessage, payload: object) -> SendResult:
        if not isinstance(payload, dict):
            # Accepted but unreadable: retrying could send twice, so it is permanent.
            raise SendError("signal answered 201 without a timestamp", code="unreadable")
        failure = recipient_failure(payload)
        if failure is not None:
            log.warning(
                "signal send of message %s failed for its recipient (%s %s)",
                message.message_id,
                type(failure).__name__,
                failure.code,
            )
            raise failure
        timestamp = payload.get("timestamp")
        if isinstance(timestamp, int) and not isinstance(timestamp, bool):
            timestamp = str(timestamp)
        if not isinstance(timestamp, str) or not timestamp.isdigit():
            raise SendError("signal answered 201 without a timestamp", code="unreadable")
        return SendResult(provider_message_id=timestamp, status="sent")

    # Media: GET /v1/attachments/{id} serves what a supporter sent.

    def can_fetch(self, channel: Channel, attachment: Attachment) -> bool:
        return channel == "signal" and attachment.media_id is not None

    async def fetch_media(self, attachment: Attachment, *, max_bytes: int) -> MediaContent:
        assert attachment.media_id is not None
        fetched = await download(
            self._http,
            self.config.attachment_url(attachment.media_id),
            provider="Signal",
            max_bytes=max_bytes,
        )
        return MediaContent(
            fetched.content,
            attachment.content_type or fetched.content_type,
            attachment.filename,
        )

    async def aclose(self) -> None:
        # The HTTP client belongs to the app, which closes it.
        return None


def _json(response: httpx.Response) -> object:
    try:
        return json.loads(response.content) if response.content else None
    except ValueError:
        return None


def build_adapter(config: SignalConfig, http_client: httpx.AsyncClient) -> SignalAdapter:
    """The registry's factory."""
    return SignalAdapter(config, http_client)

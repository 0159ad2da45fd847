"""The WhatsApp Cloud API adapter: Meta webhooks in, Graph API `messages` out."""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from channels.base import (
    Attachment,
    Capabilities,
    Channel,
    MediaContent,
    MediaError,
    MediaGone,
    MediaUnavailable,
    OutboundMessage,
    ProviderUnavailable,
    SendError,
    SendResult,
    Template,
    WebhookEvent,
    WebhookRequest,
    WebhookResponse,
)
from channels.media import MEDIA_TIMEOUT, download, status_error, too_large
from channels.provider_client import Answer, post
from channels.whatsapp_cloud.config import WhatsAppCloudConfig
from channels.whatsapp_cloud.errors import GRAPH_OBJECT_MISSING, classify
from channels.whatsapp_cloud.models import GraphError, MediaInfo, SendAnswer
from channels.whatsapp_cloud.webhook import parse_notification, verify_signature

log = logging.getLogger(__name__)

MAX_LENGTH = 4096
_MEDIA_BY_EXTENSION = {
    "jpg": "image",
    "jpeg": "image",
    "png": "image",
    "webp": "image",
    "mp4": "video",
    "3gp": "video",
}


# By content type (OutboundMedia.kind): the Cloud API's message types.
class WhatsAppCloudAdapter:
    """Meta's WhatsApp Cloud API for the `whatsapp` channel; webhook at /webhooks/whatsapp."""

    provider = "whatsapp"
    channels: tuple[Channel, ...] = ("whatsapp",)

    def __init__(
        self,
        *,
        access_token: str,
        phone_number_id: str,
        app_secret: str,
        verify_token: str,
        http_client: httpx.AsyncClient,
        api_base: str = "https://graph.facebook.com/v21.0",
        rate_per_second: float | None = None,
    ) -> None:
        self.rate_per_second = rate_per_second
        self._access_token = access_token
        self._phone_number_id = phone_number_id
        self._app_secret = app_secret
        self._verify_token = verify_token
        self._http = http_client
        self._api_base = api_base.rstrip("/")
        self._messages_url = f"{self._api_base}/{phone_number_id}/messages"
        self._send_headers = {
            "Authorization": f"Bearer {access_token}",
            "Content-Type": "application/json",
        }

    def __repr__(self) -> str:  # never show the token or secrets
        return f"WhatsAppCloudAdapter(phone_number_id={self._phone_number_id!r})"

    # Webhooks

    def handshake(self, request: WebhookRequest) -> WebhookResponse:
        """Meta's GET verification: echo hub.challenge when the verify token matches."""
        mode = request.query.get("hub.mode", "")
        token = request.query.get("hub.verify_token", "")
        challenge = request.query.get("hub.challenge", "")
        token_ok = hmac.compare_digest(token.encode(), self._verify_token.encode())
        if mode == "subscribe" and token_ok:
            return WebhookResponse(200, challenge, "text/plain")
        log.warning("WhatsApp webhook handshake refused (mode=%r)", mode[:20])
        return WebhookResponse(403, "forbidden", "text/plain")

    def verify(self, request: WebhookRequest) -> None:
        verify_signature(self._app_secret, request)

    def parse(self, request: WebhookRequest) -> list[WebhookEvent]:
        return parse_notification(request.body, self._phone_number_id)

    def accepted_response(self, request: WebhookRequest) -> WebhookResponse:
        return WebhookResponse(200, "", "text/plain")

    # Sending

    def capabilities(self, channel: Channel) -> Capabilities:
        return Capabilities(max_length=MAX_LENGTH, media=True, needs_open_window=True)

    def sender_key(self, channel: Channel) -> str:
        return f"whatsapp:{self._phone_number_id}"

    async def send(self, message: OutboundMessage) -> SendResult:
        # The bytes httpx's json= would write, headers made once.
        body = json.dumps(
            build_payload(message), ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode("utf-8")
        try:
            response = await post(self._http, self._messages_url, body, self._send_headers)
        except httpx.TransportError as exc:
            raise ProviderUnavailable(
                f"WhatsApp API unreachable: {exc.__class__.__name__}"
            ) from exc
        if response.is_success:
            try:
                answer = SendAnswer.model_validate_json(response.content)
            except ValidationError as exc:
                raise SendError("WhatsApp API answer without a message id") from exc
            if not answer.messages:
                raise SendError("WhatsApp API answer without a message id")
            return SendResult(answer.messages[0].id, "sent")
        raise _error_from(response)

    # Media

    def can_fetch(self, channel: Channel, attachment: Attachment) -> bool:
        return channel == "whatsapp" and attachment.media_id is not None

    async def fetch_media(self, attachment: Attachment, *, max_bytes: int) -> MediaContent:
        """GET /{media-id} for a short-lived URL, then GET that URL, both with the token."""
        assert attachment.media_id is not None
        headers = {"Authorization": f"Bearer {self._access_token}"}
        try:
            response = await self._http.get(
                f"{self._api_base}/{quote(attachment.media_id, safe='')}",
                params={"phone_number_id": self._phone_number_id},
                headers=headers,
                timeout=MEDIA_TIMEOUT,
            )
        except httpx.TransportError as exc:
            raise MediaUnavailable(f"WhatsApp API unreachable: {type(exc).__name__}") from exc
        if not response.is_success:
            raise _media_error_from(response)
        try:
            info = MediaInfo.model_validate_json(response.content)
        except ValidationError as exc:
            raise MediaUnavailable("WhatsApp API answer without a media url") from exc
        if info.file_size is not None and info.file_size > max_bytes:
            raise too_large("WhatsApp", info.file_size, max_bytes)
        fetched = await download(
            self._http, info.url, provider="WhatsApp", max_bytes=max_bytes, headers=headers
        )
        return MediaContent(
            fetched.content,
            attachment.content_type or info.mime_type or fetched.content_type,
            attachment.filename,
        )

    async def aclose(self) -> None:
        # The http client is the app's; it closes it.
        return None


def _graph_error(response: httpx.Response | Answer) -> GraphError:
    try:
        body: Any = json.loads(response.content)
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            return GraphError.model_validate(body["error"])
    except (ValueError, ValidationError):
        pass
    return GraphError()


def _media_error_from(response: httpx.Response) -> MediaError:
    error = _graph_error(response)
    # An expired (media ids last 30 days) or unknown id: "Object with ID … does not exist".
    if error.code == 100 and error.error_subcode == GRAPH_OBJECT_MISSING:
        return MediaGone(f"WhatsApp no longer has this media (error {error.code})")
    if error.code == 190:
        return MediaUnavailable("WhatsApp refused our access token (error 190)")
    found = status_error("WhatsApp", response.status_code)
    if error.code is not None:
        return type(found)(f"{found} (error {error.code})")
    return found


def _error_from(response: httpx.Response | Answer) -> SendError:
    error = _graph_error(response)
    message = error.message or f"HTTP {response.status_code}"
    if error.error_data and error.error_data.details:
        message = f"{message} ({error.error_data.details})"
    return classify(
        error.code,
        message,
        subcode=error.error_subcode,
        http_status=response.status_code,
        retry_after=_retry_after(response),
    )


def _retry_after(response: httpx.Response | Answer) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: let the dispatcher's backoff decide


def recipient(to: str) -> str:
    """Graph wants the number as digits, without the +."""
    return to.strip().removeprefix("whatsapp:").lstrip("+")


def template_payload(template: Template) -> dict[str, Any]:
    keys = sorted(
        template.variables, key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0, k)
    )
    body: dict[str, Any] = {"name": template.name, "language": {"code": template.language}}
    if keys:
        parameters = [{"type": "text", "text": template.variables[k]} for k in keys]
        body["components"] = [{"type": "body", "parameters": parameters}]
    return body


def build_payload(message: OutboundMessage) -> dict[str, Any]:
    """The JSON body of POST /{phone-number-id}/messages for `message`."""
    payload: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": recipient(message.to),
    }
    if message.template is not None:
        payload["type"] = "template"
        payload["template"] = template_payload(message.template)
    elif message.media_urls or message.media:
        # One media message; further links ride in the caption.
        first, *rest = message.media_items()
        extension = first.url.split("?", 1)[0].rsplit(".", 1)[-1].lower()
        kind = _MEDIA_BY_EXTENSION.get(extension, "document")
        if first.content_type:
            kind = first.kind
        caption = "\n".join([message.body, *(m.url for m in rest)]).strip()
        if kind == "audio" and caption:
            kind = "document"  # audio takes no caption: a document keeps the text with it
        media: dict[str, Any] = {"link": first.url}
        if caption:
            media["caption"] = caption
        if kind == "document" and first.filename:
            media["filename"] = first.filename
        payload["type"] = kind
        payload[kind] = media
    else:
        payload["type"] = "text"
        payload["text"] = {"body": message.body, "preview_url": False}
    return payload


def build_adapter(
    config: WhatsAppCloudConfig, http_client: httpx.AsyncClient
) -> WhatsAppCloudAdapter:
    """The registry's factory."""
    return WhatsAppCloudAdapter(
        access_token=config.access_token,
        phone_number_id=config.phone_number_id,
        app_secret=config.app_secret,
        verify_token=config.verify_token,
        http_client=http_client,
        api_base=config.api_base,
        rate_per_second=config.rate_per_second,
    )

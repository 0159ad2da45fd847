"""Africa's Talking SMS: callbacks authenticated by a secret in their URL's path, sends
through the messaging REST API.

Africa's Talking signs nothing it posts, so the callback URLs the operator pastes into
its dashboard carry AFRICASTALKING_CALLBACK_SECRET: POST /webhooks/africastalking/{secret}
(inbound SMS, kind "") and POST /webhooks/africastalking/{secret}/delivery (delivery
reports, kind "delivery"). The gateway hands the segment over as `path_secret` and keeps
it out of the request's path and URL, so nothing downstream can log it.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

import httpx

from channels.africastalking.callbacks import delivery_report, inbound_message
from channels.africastalking.codes import parse_status_code, recipient_error
from channels.africastalking.config import AfricasTalkingConfig
from channels.base import (
    Capabilities,
    Channel,
    ChannelMisconfigured,
    InvalidSignature,
    MalformedPayload,
    OutboundMessage,
    ProviderUnavailable,
    SendError,
    SendResult,
    Throttled,
    WebhookEvent,
    WebhookRequest,
    WebhookResponse,
)
from channels.sms_segments import sms_segments

log = logging.getLogger(__name__)

# The longest text we hand over (as Twilio): Africa's Talking sends a long message as
# concatenated segments.
MAX_BODY = 1600


class AfricasTalkingAdapter:
    provider = "africastalking"
    channels: tuple[Channel, ...] = ("sms",)
    # The gateway takes the first path segment after /webhooks/africastalking as the
    # secret (gateway/webhooks.py), never as a kind.
    secret_in_path = True
    # It forwards STOP, START and HELP and answers none of them: we confirm them
    # (routing/organizing/keywords.py), unlike on Twilio.
    answers_keywords = False

    def __init__(
        self,
        config: AfricasTalkingConfig,
        http_client: httpx.AsyncClient,
    ) -> None:
        self.config = config
        self.rate_per_second = config.rate_per_second
        self._http = http_client
        self._secret = config.callback_secret.encode("utf-8")

    # Callbacks

    def verify(self, request: WebhookRequest) -> None:
        given = request.path_secret.encode("utf-8")
        # compare_digest: no early exit at the first byte that differs.
        if not given or not hmac.compare_digest(given, self._secret):
            raise InvalidSignature("the callback URL's secret does not match")

    def parse(self, request: WebhookRequest) -> list[WebhookEvent]:
        if request.form is None:
            raise MalformedPayload("not a form")
        form = dict(request.form)
        if request.kind == "":
            return [inbound_message(form)]
        if request.kind == "delivery":
            update = delivery_report(form)
            return [update] if update is not None else []
        raise MalformedPayload(f"no Africa's Talking callback at /{request.kind}")

    def accepted_response(self, request: WebhookRequest) -> WebhookResponse:
        return WebhookResponse(200, "", "text/plain")

    # Sending

    def capabilities(self, channel: Channel) -> Capabilities:
        return Capabilities(max_length=MAX_BODY, media=False)

    def rate_units(self, message: OutboundMessage) -> int:
        # Count what the recipient's handset receives: segments of the text as sent.
        return sms_segments(self.text(message))

    def sender_key(self, channel: Channel) -> str:
        # Prefixed: a short code must not share a bucket with a Twilio sender.
        return f"africastalking:{self.config.sender_id or self.config.username}"

    @staticmethod
    def text(message: OutboundMessage) -> str:
        """The SMS text: no MMS here, so media go as links after the body."""
        if not message.media_urls:
            return message.body
        return "\n".join([message.body, *message.media_urls])

    def send_form(self, message: OutboundMessage) -> dict[str, str]:
        if message.channel != "sms":
            raise ChannelMisconfigured(f"Africa's Talking does not send on {message.channel}")
        form = {"username": self.config.username, "to": message.to, "message": self.text(message)}
        if self.config.sender_id:
            form["from"] = self.config.sender_id
        return form

    async def send(self, message: OutboundMessage) -> SendResult:
        form = self.send_form(message)
        headers = {"apiKey": self.config.api_key, "Accept": "application/json"}
        try:
            response = await self._http.post(self.config.messaging_url, data=form, headers=headers)
        except httpx.TransportError as exc:  # connect, read, write and pool timeouts too
            raise ProviderUnavailable(f"africastalking unreachable: {type(exc).__name__}") from exc
        if response.status_code in (200, 201):
            outcome = recipient_outcome(response)
            if isinstance(outcome, SendResult):
                return outcome
        else:
            outcome = http_error(response)
        log.warning(
            "africastalking send of message %s failed: HTTP %s code %s (%s)",
            message.message_id,
            response.status_code,
            outcome.code,
            type(outcome).__name__,
        )
        raise outcome

    async def aclose(self) -> None:
        # The HTTP client belongs to the app, which closes it.
        return None


def _message_data(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    data = body.get("SMSMessageData") if isinstance(body, dict) else None
    return data if isinstance(data, dict) else None


def recipient_outcome(response: httpx.Response) -> SendResult | SendError:
    """A 201's SMSMessageData: the result when its (one) recipient was accepted, else the
    error the recipient's statusCode stands for."""
    data = _message_data(response)
    if data is None:
        # Accepted but unreadable: retrying could send twice, so it is permanent.
        return SendError("africastalking answered without SMSMessageData")
    recipients = data.get("Recipients")
    if not isinstance(recipients, list) or not recipients:
        # Nothing was sent; `Message` names the reason (e.g. "InvalidSenderId").
        if data.get("Message") == "InvalidSenderId":
            return ChannelMisconfigured("africastalking 402: InvalidSenderId", code="402")
        return SendError("africastalking accepted no recipient")
    first = recipients[0] if isinstance(recipients[0], dict) else {}
    error = recipient_error(parse_status_code(first.get("statusCode")))
    if error is not None:
        return error
    message_id = first.get("messageId")
    if not isinstance(message_id, str) or not message_id or message_id == "None":
        return SendError("africastalking accepted the message without a messageId")
    return SendResult(provider_message_id=message_id, status="sent")


def http_error(response: httpx.Response) -> SendError:
    """The SendError for an answer other than 201. The body is never quoted: Africa's
    Talking's plain-text errors can repeat the number or the message."""
    status = response.status_code
    if status == 429:
        return Throttled(
            "africastalking throttled",
            retry_after=retry_after_seconds(response.headers.get("retry-after")),
        )
    if status >= 500:
        return ProviderUnavailable(f"africastalking HTTP {status}")
    if status in (401, 403, 404):
        # A wrong API key or username ("The supplied authentication is invalid"), or an
        # API base that is not Africa's Talking's.
        return ChannelMisconfigured(f"africastalking HTTP {status}")
    return SendError(f"africastalking HTTP {status}")


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def build_adapter(
    config: AfricasTalkingConfig, http_client: httpx.AsyncClient
) -> AfricasTalkingAdapter:
    """The registry's factory."""
    return AfricasTalkingAdapter(config, http_client)

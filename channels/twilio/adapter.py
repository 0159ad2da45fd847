"""Twilio SMS and WhatsApp: signed form webhooks in, the Messages REST API out.

Webhooks: POST /webhooks/twilio (inbound, kind "") and POST /webhooks/twilio/status
(StatusCallback, kind "status"); any other kind is answered 400 once signed.
Sends go over the injected httpx.AsyncClient: the twilio SDK's client is synchronous.
"""

from __future__ import annotations

import json
import logging
from base64 import b64encode
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlencode

import httpx
from twilio.request_validator import RequestValidator

from channels.base import (
    Attachment,
    Capabilities,
    Channel,
    ChannelMisconfigured,
    Clock,
    InboundMessage,
    InvalidSignature,
    MalformedPayload,
    MediaContent,
    MediaGone,
    OutboundMessage,
    ProviderUnavailable,
    SendError,
    SendResult,
    StatusUpdate,
    WebhookEvent,
    WebhookRequest,
    WebhookResponse,
    utcnow,
)
from channels.media import download
from channels.provider_client import Answer, post
from channels.sms_segments import sms_segments
from channels.twilio.config import TwilioConfig
from channels.twilio.errors import STATUSES, classify, classify_http, retry_after_seconds
from channels.twilio.models import (
    ApiError,
    CreatedMessage,
    InboundForm,
    StatusForm,
    canonical_phone,
    form_dict,
    form_json,
    form_signature_matches,
    is_whatsapp,
    with_whatsapp,
)

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "x-twilio-signature"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
# Twilio refuses a Body over 1,600 characters on every channel (error 21617),
# WhatsApp included, although WhatsApp itself would take 4,096.
MAX_BODY = 1600
# How far Twilio's clock may be behind ours when a crashed send is looked up.
LOOKUP_SKEW = timedelta(seconds=60)
FAILED = frozenset({"failed", "undelivered"})


class TwilioAdapter:
    provider = "twilio"

    def __init__(
        self, config: TwilioConfig, http_client: httpx.AsyncClient, *, clock: Clock = utcnow
    ) -> None:
        self.config = config
        self.rate_per_second = config.rate_per_second
        self._http = http_client
        self._clock = clock
        self._validator = RequestValidator(config.auth_token)
        self._token = config.auth_token.encode("utf-8")
        # The same header httpx.BasicAuth writes, made once rather than on every send.
        basic = b64encode(f"{config.account_sid}:{config.auth_token}".encode()).decode()
        self._messages_url = config.messages_url
        self._send_headers = {
            "Authorization": f"Basic {basic}",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        channels: list[Channel] = []
        if config.sms_from or config.messaging_service_sid:
            channels.append("sms")
        if config.whatsapp_from:
            channels.append("whatsapp")
        self.channels: tuple[Channel, ...] = tuple(channels)

    # Webhooks

    def verify(self, request: WebhookRequest) -> None:
        signature = request.headers.get(SIGNATURE_HEADER)
        if not signature:
            raise InvalidSignature("missing X-Twilio-Signature")
        if request.form is None and "bodySHA256" in request.query:
            # Twilio's JSON webhooks sign the URL and carry a hash of the body in it.
            try:
                body = request.body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidSignature("body is not UTF-8") from exc
            # validate() tries the URL with and without the default port and compares
            # without an early exit on the first differing character.
            if not self._validator.validate(request.url, body, signature):
                raise InvalidSignature("X-Twilio-Signature does not match")
            return
        if not form_signature_matches(self._token, request.url, request.form or (), signature):
            raise InvalidSignature("X-Twilio-Signature does not match")

    def parse(self, request: WebhookRequest) -> list[WebhookEvent]:
        if request.form is None:
            raise MalformedPayload("not a form")
        form = form_dict(request.form)
        if request.kind == "":
            return [self._inbound(InboundForm.from_form(form), form_json(request.form))]
        if request.kind == "status":
            update = self._status(StatusForm.from_form(form), form_json(request.form))
            return [update] if update is not None else []
        raise MalformedPayload(f"no Twilio webhook at /{request.kind}")

    def _inbound(self, form: InboundForm, raw: str) -> InboundMessage:
        if not form.message_sid or not form.from_:
            raise MalformedPayload("MessageSid and From are required")
        attachments = tuple(Attachment(url=url, content_type=ctype) for url, ctype in form.media)
        return InboundMessage(
            channel="whatsapp" if is_whatsapp(form.from_) else "sms",
            address=canonical_phone(form.from_),
            provider_message_id=form.message_sid,
            body=form.text,
            attachments=attachments,
            profile_name=form.profile_name,
            raw=raw,
        )

    def _status(self, form: StatusForm, raw: str) -> StatusUpdate | None:
        if not form.message_sid or not form.status:
            raise MalformedPayload("MessageSid and MessageStatus are required")
        status = STATUSES.get(form.status)
        if status is None:
            log.warning(
                "twilio status %r for %s is unknown; ignored", form.status, form.message_sid
            )
            return None
        failure = classify(form.error_code, form.error_message or "") if status in FAILED else None
        return StatusUpdate(
            channel="whatsapp" if is_whatsapp(form.from_) or is_whatsapp(form.to) else "sms",
            provider_message_id=form.message_sid,
            status=status,
            error_code=str(form.error_code) if form.error_code is not None else None,
            error_message=form.error_message,
            raw=raw,
            failure=failure,
        )

    def accepted_response(self, request: WebhookRequest) -> WebhookResponse:
        return WebhookResponse(200, EMPTY_TWIML, "text/xml")

    # Sending

    def capabilities(self, channel: Channel) -> Capabilities:
        # MMS (media on SMS) reaches US and Canadian numbers only; elsewhere the links go
        # in the text (mms_reaches).
        return Capabilities(
            max_length=MAX_BODY, media=True, needs_open_window=channel == "whatsapp"
        )

    def rate_units(self, message: OutboundMessage) -> int:
        # Twilio meters a sender in message segments a second ("a US long code number can
        # send one message segment per second, and a short code may send over 100 message
        # segments per second": twilio.com/docs/errors/30001; its queue holds 10 hours of
        # segments, support article "Understanding Twilio Rate Limits and Message
        # Queues"). An MMS is one message ("MMS Messages per Second", "Twilio Multimedia
        # Messaging (MMS) Account Rate Limits"), and so is a WhatsApp message.
        if message.channel != "sms" or (message.media_urls and mms_reaches(message)):
            return 1
        return sms_segments(message.body)

    def sender_key(self, channel: Channel) -> str:
        if channel == "whatsapp":
            return with_whatsapp(self.config.whatsapp_from or "")
        return self.config.messaging_service_sid or self.config.sms_from or ""

    def send_form(self, message: OutboundMessage) -> dict[str, str | list[str]]:
        """The Messages API form for `message` (ChannelMisconfigured if we have no sender)."""
        form: dict[str, str | list[str]] = {}
        if message.channel == "whatsapp":
            if not self.config.whatsapp_from:
                raise ChannelMisconfigured("TWILIO_WHATSAPP_FROM is not set")
            form["To"] = with_whatsapp(message.to)
            form["From"] = with_whatsapp(self.config.whatsapp_from)
        elif message.channel == "sms":
            form["To"] = message.to
            # A messaging service picks the sender from its pool and handles opt-outs.
            if self.config.messaging_service_sid:
                form["MessagingServiceSid"] = self.config.messaging_service_sid
            elif self.config.sms_from:
                form["From"] = self.config.sms_from
            else:
                raise ChannelMisconfigured("TWILIO_SMS_FROM or TWILIO_MESSAGING_SERVICE_SID unset")
        else:
            raise ChannelMisconfigured(f"Twilio does not send on {message.channel}")
        template = message.template
        if message.channel == "whatsapp" and template is not None and template.content_sid:
            form["ContentSid"] = template.content_sid
            form["ContentVariables"] = json.dumps(dict(template.variables), ensure_ascii=False)
        else:
            form["Body"] = message.body
        if message.media_urls and not mms_reaches(message):
            # Twilio would turn the media into links itself; we say so in the text.
            form["Body"] = "\n".join([message.body, *message.media_urls]).strip()
        elif message.media_urls:
            form["MediaUrl"] = list(message.media_urls)
        if self.config.status_callback_url:
            form["StatusCallback"] = self.config.status_callback_url
        return form

    async def send(self, message: OutboundMessage) -> SendResult:
        body = urlencode(self.send_form(message), doseq=True).encode("ascii")
        try:
            response = await post(self._http, self._messages_url, body, self._send_headers)
        except httpx.TransportError as exc:  # connect, read, write and pool timeouts too
            raise ProviderUnavailable(f"twilio unreachable: {type(exc).__name__}") from exc
        if response.status_code in (200, 201):
            return self._result(response)
        error = ApiError.from_body(response.content)
        failure = classify_http(
            response.status_code,
            error.code,
            error.message,
            retry_after_seconds(response.headers.get("retry-after"), self._clock()),
        )
        log.warning(
            "twilio send of message %s failed: HTTP %s code %s (%s)",
            message.message_id,
            response.status_code,
            error.code,
            type(failure).__name__,
        )
        raise failure

    async def find_sent(self, message: OutboundMessage, since: datetime) -> list[str]:
        """Messages this account created to `message.to` with its body since `since`
        (less LOOKUP_SKEW for the clocks), from the newest page of the Messages list."""
        form = self.send_form(message)
        body = form.get("Body")
        if not isinstance(body, str):
            return []  # a WhatsApp template: its rendered text is not ours to compare
        params = {"To": str(form["To"]), "PageSize": "50"}
        if isinstance(form.get("From"), str):
            params["From"] = str(form["From"])
        auth = httpx.BasicAuth(self.config.account_sid, self.config.auth_token)
        try:
            response = await self._http.get(self.config.messages_url, params=params, auth=auth)
        except httpx.TransportError as exc:
            raise ProviderUnavailable(f"twilio unreachable: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise ProviderUnavailable(f"twilio message list: HTTP {response.status_code}")
        try:
            items = response.json()["messages"]
            found = []
            for item in items:
                created = parsedate_to_datetime(item["date_created"])
                if (
                    created >= since - LOOKUP_SKEW
                    and str(item.get("direction", "")).startswith("outbound")
                    and item.get("body") == body
                ):
                    found.append(str(item["sid"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ProviderUnavailable("twilio message list: unreadable answer") from exc
        return found

    def _result(self, response: Answer) -> SendResult:
        created = CreatedMessage.from_body(response.content)
        if created is None:
            # Accepted but unreadable: retrying could send twice, so it is permanent.
            raise SendError("twilio answered 201 without a message sid")
        status = STATUSES.get(created.status, "queued")
        if status in FAILED:
            raise classify(created.error_code, created.error_message)
        # Accepted with an id is "sent" in our vocabulary (CONTRACT.md); Twilio's own
        # "sent" callback then changes nothing and "delivered" moves it on.
        return SendResult(
            provider_message_id=created.sid,
            status="sent" if status == "queued" else status,
            segments=created.num_segments,
        )

    # Media

    def can_fetch(self, channel: Channel, attachment: Attachment) -> bool:
        return channel in ("sms", "whatsapp") and attachment.url is not None

    async def fetch_media(self, attachment: Attachment, *, max_bytes: int) -> MediaContent:
        """GET the MediaUrl (Twilio redirects to a short-lived CDN URL). Basic auth goes only
        to our REST API's own host; httpx drops it on the redirect to the CDN."""
        assert attachment.url is not None
        api = httpx.URL(self.config.api_base)
        try:
            url = httpx.URL(attachment.url)
        except httpx.InvalidURL as exc:
            raise MediaGone("Twilio gave no usable media URL") from exc
        auth = None
        if (url.scheme, url.host, url.port) == (api.scheme, api.host, api.port):
            auth = httpx.BasicAuth(self.config.account_sid, self.config.auth_token)
        fetched = await download(
            self._http,
            attachment.url,
            provider="Twilio",
            max_bytes=max_bytes,
            auth=auth,
            follow_redirects=True,
        )
        return MediaContent(
            fetched.content,
            attachment.content_type or fetched.content_type,
            attachment.filename,
        )

    async def aclose(self) -> None:
        # The HTTP client belongs to the app, which closes it.
        return None


def mms_reaches(message: OutboundMessage) -> bool:
    """Whether media can go as files: always on WhatsApp; on SMS (MMS) only to numbers of
    the North American Numbering Plan (US and Canada: +1)."""
    return message.channel != "sms" or message.to.startswith("+1")


def build_adapter(config: TwilioConfig, http_client: httpx.AsyncClient) -> TwilioAdapter:
    """The registry's factory."""
    return TwilioAdapter(config, http_client)

"""Configuration, read from the environment (and a `.env` file) as CONTRACT.md lists it.

Settings are built, never imported as a singleton: `Settings()` reads the environment,
`Settings(database_url=...)` builds one for a test. An empty variable (`VAR=`, as
docker-compose passes `${VAR:-}`) counts as unset: the setting keeps its default.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from channels.base import Channel
from routing.sms_routes import DEFAULT_ROUTES, parse_sms_routes

ALL_DEFAULT_ORDER: tuple[Channel, ...] = ("whatsapp", "telegram", "sms", "email", "signal")
BOT_USERNAME = re.compile(r"[A-Za-z0-9_]{5,32}")


_DURATION = re.compile(r"([0-9]{1,6})\s*([smhd])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_reminders(text: str) -> list[float]:
    """RALLYPOINT_EVENT_REMINDERS ("24h,1h") as seconds before the start, largest first;
    "none" or "off" for none. A bad value raises a ValueError naming the variable."""
    if text.strip().lower() in ("none", "off"):
        return []
    seconds: set[float] = set()
    for part in text.split(","):
        found = _DURATION.fullmatch(part.strip().lower())
        if found is None or int(found[1]) == 0:
            raise ValueError(
                "RALLYPOINT_EVENT_REMINDERS: give durations before the start like 24h,1h "
                "(units s, m, h, d), or none"
            )
        seconds.add(float(int(found[1]) * _SECONDS[found[2]]))
    return sorted(seconds, reverse=True)


def _env(name: str) -> AliasChoices:
    return AliasChoices(name, name.lower())


# The value earlier READMEs showed for RALLYPOINT_BOOTSTRAP_ADMIN_KEY: refused, as any
# value people copy from a page would be.
BOOTSTRAP_EXAMPLE = "change-me-to-a-long-random-string"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        extra="ignore",
        populate_by_name=True,
        case_sensitive=False,
        env_ignore_empty=True,
    )

    database_url: str = Field(
        "sqlite:///./rallypoint.db", validation_alias=_env("RALLYPOINT_DATABASE_URL")
    )
    # Store the plain part of each webhook batch by plain sqlite3 on a thread of its own
    # (routing/inbound/lane.py); false: everything through SQLAlchemy (same rows, slower).
    sqlite_lane: bool = Field(True, validation_alias=_env("RALLYPOINT_SQLITE_LANE"))
    host: str = Field("127.0.0.1", validation_alias=_env("RALLYPOINT_HOST"))
    port: int = Field(8000, validation_alias=_env("RALLYPOINT_PORT"))
    # `serve` processes on the one port (gateway/serve_processes.py); `--workers` wins.
    web_concurrency: int = Field(
        1, ge=1, le=64, validation_alias=_env("RALLYPOINT_WEB_CONCURRENCY")
    )
    public_url: str = Field("http://127.0.0.1:8000", validation_alias=_env("RALLYPOINT_PUBLIC_URL"))
    bootstrap_admin_key: str | None = Field(
        None, validation_alias=_env("RALLYPOINT_BOOTSTRAP_ADMIN_KEY")
    )
    channel_order: Annotated[list[Channel], NoDecode] = Field(
        default_factory=lambda: list(ALL_DEFAULT_ORDER),
        validation_alias=_env("RALLYPOINT_CHANNEL_ORDER"),
    )
    inbound_smtp_port: int = Field(0, validation_alias=_env("RALLYPOINT_INBOUND_SMTP_PORT"))
    inbound_smtp_host: str = Field(
        "127.0.0.1", validation_alias=_env("RALLYPOINT_INBOUND_SMTP_HOST")
    )
    # PEM files for STARTTLS on the inbound SMTP listener (both or neither).
    inbound_smtp_tls_cert: str | None = Field(
        None, validation_alias=_env("RALLYPOINT_INBOUND_SMTP_TLS_CERT")
    )
    inbound_smtp_tls_key: str | None = Field(
        None, validation_alias=_env("RALLYPOINT_INBOUND_SMTP_TLS_KEY")
    )
    inbound_smtp_require_tls: bool = Field(
        False, validation_alias=_env("RALLYPOINT_INBOUND_SMTP_REQUIRE_TLS")
    )
    inbound_email_domains: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("RALLYPOINT_INBOUND_EMAIL_DOMAINS")
    )
    # How the listener checks who sent inbound mail: "off", "dkim" or "authserv:<id>"
    # (channels/email/sender_auth.py). Unverified mail is stored but sets nothing off.
    inbound_smtp_sender_auth: str = Field(
        "off", validation_alias=_env("RALLYPOINT_INBOUND_SMTP_SENDER_AUTH")
    )
    default_region: str | None = Field(None, validation_alias=_env("RALLYPOINT_DEFAULT_REGION"))
    # The key of the do-not-contact list's hashes (routing/people/do_not_contact.py); unset:
    # a key the server generates once and keeps in the database.
    erasure_key: str | None = Field(None, validation_alias=_env("RALLYPOINT_ERASURE_KEY"))
    # Comma-separated base64 32-byte keys, newest first: names, addresses, bodies and
    # payloads are stored encrypted (storage/crypto.py); None stores them in plaintext.
    encryption_keys: str | None = Field(
        None, validation_alias=_env("RALLYPOINT_ENCRYPTION_KEYS"), repr=False
    )
    # Message bodies, raw payloads and attachments' metadata older than this many days are
    # deleted in the background (gateway/retention.py); None keeps them.
    retention_days: int | None = Field(
        None, ge=1, validation_alias=_env("RALLYPOINT_RETENTION_DAYS")
    )
    # Requests per minute per API key (a token bucket per key, in each process); 0: no limit.
    api_rate_per_minute: int = Field(
        600, ge=0, validation_alias=_env("RALLYPOINT_API_RATE_PER_MINUTE")
    )
    # JSON request bodies on /api/v1 larger than this are refused with 413.
    max_json_bytes: int = Field(1_048_576, ge=1, validation_alias=_env("RALLYPOINT_MAX_JSON_BYTES"))
    max_attempts: int = Field(6, ge=1, validation_alias=_env("RALLYPOINT_MAX_ATTEMPTS"))
    # Whether `serve` runs the dispatcher in-process (the embedded default does).
    run_dispatcher: bool = Field(True, validation_alias=_env("RALLYPOINT_RUN_DISPATCHER"))
    # Sends in flight per dispatcher: 128 at 100 ms provider latency is ~1,280 msg/s.
    dispatch_concurrency: int = Field(
        256, ge=1, validation_alias=_env("RALLYPOINT_DISPATCH_CONCURRENCY")
    )
    # Connections of the provider HTTP client's pool; 0: the concurrency, at least 100.
    http_pool: int = Field(0, ge=0, validation_alias=_env("RALLYPOINT_HTTP_POOL"))
    # How long a claimed outbox row stays a dispatcher's before another may take it.
    lease_seconds: float = Field(60.0, ge=5, validation_alias=_env("RALLYPOINT_LEASE_SECONDS"))
    # How often an idle dispatcher looks for due rows. Rows queued by this process wake the
    # in-process dispatcher at once; this bounds the wait for everything else (a separate
    # `worker`, rows whose due time arrives, leases that run out).
    dispatch_poll_seconds: float = Field(
        0.5, gt=0, validation_alias=_env("RALLYPOINT_DISPATCH_POLL_SECONDS")
    )
    # Whether outgoing webhooks may point at loopback, private or link-local addresses.
    allow_private_webhooks: bool = Field(
        False, validation_alias=_env("RALLYPOINT_ALLOW_PRIVATE_WEBHOOKS")
    )
    # Quiet hours for announcements, in each supporter's local time.
    quiet_hours_start: str = Field("21:00", validation_alias=_env("RALLYPOINT_QUIET_HOURS_START"))
    quiet_hours_end: str = Field("08:00", validation_alias=_env("RALLYPOINT_QUIET_HOURS_END"))
    default_timezone: str = Field("UTC", validation_alias=_env("RALLYPOINT_DEFAULT_TIMEZONE"))
    org_name: str = Field("Rallypoint", validation_alias=_env("RALLYPOINT_ORG_NAME"))
    help_text: str = Field(
        "Reply STOP to stop messages, START to resume. Contact your organizer for help.",
        validation_alias=_env("RALLYPOINT_HELP_TEXT"),
    )
    opt_out_text: str = Field(
        "You are unsubscribed and will get no more messages. Reply START to resume.",
        validation_alias=_env("RALLYPOINT_OPT_OUT_TEXT"),
    )
    opt_in_text: str = Field(
        "You are subscribed again. Reply STOP to stop.",
        validation_alias=_env("RALLYPOINT_OPT_IN_TEXT"),
    )
    # Twilio answers STOP on SMS itself by default; then we send no confirmation there.
    twilio_handles_opt_out: bool = Field(
        True, validation_alias=_env("RALLYPOINT_TWILIO_HANDLES_OPT_OUT")
    )
    join_keyword: str = Field("JOIN", validation_alias=_env("RALLYPOINT_JOIN_KEYWORD"))
    # Onboarding replies; {org}, {name} and {team} are filled in where they make sense.
    welcome_text: str = Field(
        "Welcome to {org}! What's your name?", validation_alias=_env("RALLYPOINT_WELCOME_TEXT")
    )
    onboarding_done_text: str = Field(
        "Thanks, {name}! You're signed up. An organizer will be in touch.",
        validation_alias=_env("RALLYPOINT_ONBOARDING_DONE_TEXT"),
    )
    onboarding_handoff_text: str = Field(
        "Thanks — an organizer will get back to you.",
        validation_alias=_env("RALLYPOINT_ONBOARDING_HANDOFF_TEXT"),
    )
    # An onboarding left unanswered this long no longer captures the supporter's messages.
    onboarding_expiry_hours: float = Field(
        72.0, gt=0, validation_alias=_env("RALLYPOINT_ONBOARDING_EXPIRY_HOURS")
    )
    # Whether `serve` runs the recurring check-in scheduler in-process.
    run_checkins: bool = Field(True, validation_alias=_env("RALLYPOINT_RUN_CHECKINS"))
    checkin_interval_seconds: float = Field(
        60.0, gt=0, validation_alias=_env("RALLYPOINT_CHECKIN_INTERVAL_SECONDS")
    )
    # Reminders before each event occurrence, to those who said yes or maybe: durations with
    # a unit (s, m, h, d), comma-separated; empty list: no reminders.
    event_reminders: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [86_400.0, 3_600.0],
        validation_alias=_env("RALLYPOINT_EVENT_REMINDERS"),
    )
    # How many upcoming intake calls onboarding offers a new recruit (0: none).
    onboarding_intake_offers: int = Field(
        3, ge=0, le=9, validation_alias=_env("RALLYPOINT_ONBOARDING_INTAKE_OFFERS")
    )
    max_body_bytes: int = Field(1_048_576, validation_alias=_env("RALLYPOINT_MAX_BODY_BYTES"))
    # A verified webhook (or inbound mail) the database has not committed within this many
    # milliseconds is appended to a spool file under `spool_dir` and answered; it is stored
    # when the database answers again (routing/inbound/spool.py).
    spool_after_ms: int = Field(2000, ge=0, validation_alias=_env("RALLYPOINT_SPOOL_AFTER_MS"))
    spool_dir: str = Field("./spool", min_length=1, validation_alias=_env("RALLYPOINT_SPOOL_DIR"))
    # CSV imports (POST /supporters/import) whose request body is larger are refused with 413.
    max_import_bytes: int = Field(
        10_485_760, ge=1, validation_alias=_env("RALLYPOINT_MAX_IMPORT_BYTES")
    )
    # GET /messages/{id}/attachments/{n} refuses media larger than this (413), unread.
    max_media_bytes: int = Field(
        16_777_216, ge=1, validation_alias=_env("RALLYPOINT_MAX_MEDIA_BYTES")
    )
    # Files to send (POST /media, a media_url's HEAD) larger than this are refused.
    max_outbound_media_bytes: int = Field(
        5_242_880, ge=1, validation_alias=_env("RALLYPOINT_MAX_OUTBOUND_MEDIA_BYTES")
    )
    # A console session ends after this many hours without a request (gateway/console).
    session_hours: float = Field(12.0, gt=0, validation_alias=_env("RALLYPOINT_SESSION_HOURS"))
    log_level: str = Field("INFO", validation_alias=_env("RALLYPOINT_LOG_LEVEL"))
    # "text" (one line each, readable) or "json" (one JSON object per line, with request ids).
    log_format: Literal["text", "json"] = Field(
        "text", validation_alias=_env("RALLYPOINT_LOG_FORMAT")
    )
    # Young-generation GC threshold for `serve` and `worker` once started (gateway/heap.py);
    # 0 keeps CPython's default (700).
    gc_threshold: int = Field(20_000, ge=0, validation_alias=_env("RALLYPOINT_GC_THRESHOLD"))

    # Twilio
    twilio_account_sid: str | None = Field(None, validation_alias=_env("TWILIO_ACCOUNT_SID"))
    twilio_auth_token: str | None = Field(None, validation_alias=_env("TWILIO_AUTH_TOKEN"))
    twilio_sms_from: str | None = Field(None, validation_alias=_env("TWILIO_SMS_FROM"))
    twilio_messaging_service_sid: str | None = Field(
        None, validation_alias=_env("TWILIO_MESSAGING_SERVICE_SID")
    )
    twilio_whatsapp_from: str | None = Field(None, validation_alias=_env("TWILIO_WHATSAPP_FROM"))
    twilio_api_base: str = Field("https://api.twilio.com", validation_alias=_env("TWILIO_API_BASE"))
    twilio_rate_per_second: float = Field(1.0, validation_alias=_env("TWILIO_RATE_PER_SECOND"))

    # WhatsApp Cloud API
    whatsapp_access_token: str | None = Field(None, validation_alias=_env("WHATSAPP_ACCESS_TOKEN"))
    whatsapp_phone_number_id: str | None = Field(
        None, validation_alias=_env("WHATSAPP_PHONE_NUMBER_ID")
    )
    whatsapp_app_secret: str | None = Field(None, validation_alias=_env("WHATSAPP_APP_SECRET"))
    whatsapp_verify_token: str | None = Field(None, validation_alias=_env("WHATSAPP_VERIFY_TOKEN"))
    whatsapp_api_base: str = Field(
        "https://graph.facebook.com/v21.0", validation_alias=_env("WHATSAPP_API_BASE")
    )
    whatsapp_rate_per_second: float = Field(80.0, validation_alias=_env("WHATSAPP_RATE_PER_SECOND"))

    # Telegram
    telegram_bot_token: str | None = Field(None, validation_alias=_env("TELEGRAM_BOT_TOKEN"))
    telegram_webhook_secret: str | None = Field(
        None, validation_alias=_env("TELEGRAM_WEBHOOK_SECRET")
    )
    telegram_api_base: str = Field(
        "https://api.telegram.org", validation_alias=_env("TELEGRAM_API_BASE")
    )
    telegram_rate_per_second: float = Field(30.0, validation_alias=_env("TELEGRAM_RATE_PER_SECOND"))
    # The bot's @username for deep-link urls; unset, the bot is asked (getMe) once.
    telegram_bot_username: str | None = Field(None, validation_alias=_env("TELEGRAM_BOT_USERNAME"))

    # Africa's Talking (SMS)
    africastalking_username: str | None = Field(
        None, validation_alias=_env("AFRICASTALKING_USERNAME")
    )
    africastalking_api_key: str | None = Field(
        None, validation_alias=_env("AFRICASTALKING_API_KEY")
    )
    # The secret in the callback URLs (Africa's Talking signs nothing it posts); checked
    # in gateway/channel_configs.py, whose error does not repeat it as pydantic's would.
    africastalking_callback_secret: str | None = Field(
        None, validation_alias=_env("AFRICASTALKING_CALLBACK_SECRET")
    )
    africastalking_sender_id: str | None = Field(
        None, validation_alias=_env("AFRICASTALKING_SENDER_ID")
    )
    africastalking_api_base: str = Field(
        "https://api.africastalking.com", validation_alias=_env("AFRICASTALKING_API_BASE")
    )
    # SMS segments a second from the account's sender.
    africastalking_rate_per_second: float = Field(
        10.0, gt=0, validation_alias=_env("AFRICASTALKING_RATE_PER_SECOND")
    )
    # Which provider sends SMS to which countries (routing/sms_routes.py).
    sms_routes: str = Field(DEFAULT_ROUTES, validation_alias=_env("RALLYPOINT_SMS_ROUTES"))

    # Email (outbound SMTP)
    smtp_host: str | None = Field(None, validation_alias=_env("SMTP_HOST"))
    smtp_port: int = Field(587, validation_alias=_env("SMTP_PORT"))
    smtp_username: str | None = Field(None, validation_alias=_env("SMTP_USERNAME"))
    smtp_password: str | None = Field(None, validation_alias=_env("SMTP_PASSWORD"))
    smtp_from: str | None = Field(None, validation_alias=_env("SMTP_FROM"))
    smtp_starttls: bool = Field(True, validation_alias=_env("SMTP_STARTTLS"))
    smtp_rate_per_second: float = Field(10.0, validation_alias=_env("SMTP_RATE_PER_SECOND"))

    # Signal (signal-cli-rest-api)
    signal_api_base: str | None = Field(None, validation_alias=_env("SIGNAL_API_BASE"))
    signal_number: str | None = Field(None, validation_alias=_env("SIGNAL_NUMBER"))
    signal_receive_mode: Literal["websocket", "poll"] = Field(
        "websocket", validation_alias=_env("SIGNAL_RECEIVE_MODE")
    )
    signal_poll_seconds: float = Field(1.0, gt=0, validation_alias=_env("SIGNAL_POLL_SECONDS"))
    signal_rate_per_second: float = Field(
        1.0, gt=0, validation_alias=_env("SIGNAL_RATE_PER_SECOND")
    )
    # Email inbound from a hosted mailbox over IMAP (gateway/imap_poller.py); outbound
    # stays SMTP. Read only when IMAP_HOST is set.
    imap_host: str | None = Field(None, validation_alias=_env("IMAP_HOST"))
    imap_port: int = Field(993, ge=1, le=65535, validation_alias=_env("IMAP_PORT"))
    imap_username: str | None = Field(None, validation_alias=_env("IMAP_USERNAME"))
    imap_password: str | None = Field(None, validation_alias=_env("IMAP_PASSWORD"))
    # Implicit TLS; false only for a server on this machine (tests), refused otherwise.
    imap_tls: bool = Field(True, validation_alias=_env("IMAP_TLS"))
    imap_mailbox: str = Field("INBOX", min_length=1, validation_alias=_env("IMAP_MAILBOX"))
    imap_processed_mailbox: str = Field(
        "Rallypoint/Processed", min_length=1, validation_alias=_env("IMAP_PROCESSED_MAILBOX")
    )
    imap_poll_seconds: float = Field(
        60.0, gt=0, le=86_400, validation_alias=_env("IMAP_POLL_SECONDS")
    )

    @field_validator("channel_order", "inbound_email_domains", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip().lower() for part in value.split(",") if part.strip()]
        return value

    @field_validator("event_reminders", mode="before")
    @classmethod
    def _reminders(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_reminders(value)
        return value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("inbound_smtp_sender_auth", mode="before")
    @classmethod
    def _sender_auth(cls, value: object) -> object:
        if isinstance(value, str):
            mode, colon, authserv_id = (part.strip().lower() for part in value.partition(":"))
            if mode in ("off", "dkim") and not colon:
                return mode
            if mode == "authserv" and authserv_id and not any(c.isspace() for c in authserv_id):
                return f"authserv:{authserv_id}"
            raise ValueError(
                "off, dkim, or authserv:<the authserv-id your mail server writes in its "
                "Authentication-Results headers>"
            )
        return value

    @field_validator("sms_routes", mode="before")
    @classmethod
    def _sms_routes(cls, value: object) -> object:
        if isinstance(value, str):
            parse_sms_routes(value)  # ValueError names RALLYPOINT_SMS_ROUTES and the fault
        return value

    @field_validator("bootstrap_admin_key", mode="before")
    @classmethod
    def _bootstrap_key(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip() or None  # empty: unset
            if value is not None and (len(value) < 32 or value == BOOTSTRAP_EXAMPLE):
                raise ValueError(
                    "use at least 32 random characters, not an example value"
                    " (e.g. openssl rand -hex 32)"
                )
        return value

    @field_validator("telegram_bot_username", mode="before")
    @classmethod
    def _bot_username(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().removeprefix("@") or None
            if value is not None and not BOT_USERNAME.fullmatch(value):
                raise ValueError("a Telegram bot username is 5-32 letters, digits or _")
        return value

    @property
    def email_domains(self) -> list[str]:
        """Domains whose mail is ours: the configured list, else the domain of SMTP_FROM."""
        if self.inbound_email_domains:
            return self.inbound_email_domains
        if self.smtp_from and "@" in self.smtp_from:
            return [self.smtp_from.rsplit("@", 1)[1].strip(" >").lower()]
        return []

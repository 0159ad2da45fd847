"""SQLModel tables. Times are timezone-aware UTC (sqlmodel stores them as UTC, SQLite too)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Text,
    UniqueConstraint,
    event,
    false,
    inspect,
    text,
)
from sqlmodel import Field, SQLModel

from storage.announcement_counts import install_triggers
from storage.metric_counts import install_metric_triggers
from storage.sealed_types import (
    IndexedAddress,
    SealedAddress,
    address_copy,
    sealed_json,
    sealed_text,
)

# Message.status vocabulary (closed set; see CONTRACT.md).
MESSAGE_STATUSES = (
    "received",
    "queued",
    "sent",
    "delivered",
    "read",
    "failed",
    "undelivered",
    "skipped",
)
FINAL_STATUSES = frozenset({"failed", "undelivered", "skipped"})
CONVERSATION_STATUSES = ("open", "resolved", "snoozed")

# The largest id a row can have: id columns are INTEGER, 32-bit signed on PostgreSQL. An id
# given from outside beyond it names no row (and must not reach the database driver).
MAX_ID = 2_147_483_647


# Error texts Rallypoint writes itself and compares in SQL (routing/outbound/cancel.py's
# CANCELLED, routing/dispatch/outcome.py's INTERRUPTED): kept plain in the sealed error
# columns. A provider's error text can quote an address (an SMTP bounce, a Telegram chat
# id), so the rest is sealed.
OWN_ERRORS = (
    "cancelled",
    "interrupted: the dispatcher stopped before the provider's answer was stored",
)


def _error(label: str) -> Any:
    return sealed_text(label, plain=OWN_ERRORS)


def _fk(target: str, *, nullable: bool = False, index: bool = True) -> Any:
    """A foreign key that cascades on delete (a supporter's right to be forgotten)."""
    return Field(
        default=None if nullable else ...,
        sa_column=Column(
            Integer, ForeignKey(target, ondelete="CASCADE"), nullable=nullable, index=index
        ),
    )


def _json(default: Any = None) -> Any:
    factory = (lambda: list(default)) if isinstance(default, list) else (lambda: default)
    return Field(default_factory=factory, sa_column=Column(JSON, nullable=True))


def _text(nullable: bool = True) -> Any:
    return Field(default=None if nullable else "", sa_column=Column(Text, nullable=nullable))


class Team(SQLModel, table=True):
    __tablename__ = "teams"
    # Ids are never reused (SQLite would hand a deleted last id out again): announcements,
    # onboarding's offered_teams and in-flight team-lead requests keep a deleted team's id.
    __table_args__ = {"sqlite_autoincrement": True}
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, max_length=200)
    description: str | None = None
    welcome_text: str | None = _text()
    orientation_call: str | None = None
    created_at: datetime
    # Its members, kept by triggers on team_memberships (storage/announcement_counts.py),
    # so listing teams counts no memberships.
    member_count: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


# When a supporter last wrote or came to an event, or was added if neither (the check-ins'
# "days inactive"); NULL-safe and the same text on SQLite and PostgreSQL, so one expression
# index serves both (written as PostgreSQL prints it back, for Alembic's comparison).
SUPPORTER_ACTIVITY = (
    "(CASE WHEN (last_attended_at > COALESCE(last_inbound_at, created_at))"
    " THEN last_attended_at ELSE COALESCE(last_inbound_at, created_at) END)"
)


class Supporter(SQLModel, table=True):
    __tablename__ = "supporters"
    # Ids are never reused: an erased supporter's id must not name someone new (webhook
    # consumers, exports and audit entries keep it).
    __table_args__ = (
        # Who went quiet (routing/organizing/checkins.py `inactive_supporters`), quietest
        # first: the opted-in, by the expression that query filters and sorts on.
        Index("ix_supporters_quiet", "opted_out", text(SUPPORTER_ACTIVITY), "id"),
        {"sqlite_autoincrement": True},
    )
    id: int | None = Field(default=None, primary_key=True)
    name: str = sealed_text("supporters.name", nullable=False)
    preferred_channels: list[str] = _json([])
    language: str | None = Field(default=None, index=True, max_length=35)
    timezone: str | None = Field(default=None, max_length=64)
    opted_out: bool = Field(default=False, index=True)
    opted_out_at: datetime | None = None
    # "api", "import" or "inbound" (an unknown sender who wrote to us first).
    source: str = Field(default="api", max_length=16)
    assigned_to: str | None = Field(default=None, index=True, max_length=200)
    telegram_link_token: str | None = Field(default=None, unique=True, max_length=64)
    last_inbound_at: datetime | None = None
    last_outbound_at: datetime | None = None
    last_one_on_one_at: datetime | None = None
    # Data-saver (keywords LITE / FULL): SMS first, media and long texts as a short link.
    data_saver: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    # The latest event occurrence they were marked at: activity, like an inbound message,
    # for the check-ins' inactivity (routing/organizing/checkins.py).
    last_attended_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class SupporterAddress(SQLModel, table=True):
    __tablename__ = "supporter_addresses"
    __table_args__ = (UniqueConstraint("channel", "address", name="uq_address_channel"),)
    id: int | None = Field(default=None, primary_key=True)
    supporter_id: int = _fk("supporters.id")
    channel: str = Field(max_length=16)
    # With RALLYPOINT_ENCRYPTION_KEYS: the blind index (lookups, uniqueness); reads give
    # the address, decrypted from `address_sealed` (storage/sealed_types.py).
    address: str = Field(
        sa_column=Column(IndexedAddress("supporter_addresses.address"), nullable=False)
    )
    # Per-channel facts: the WhatsApp 24 h window and per-channel opt-outs (Telegram block).
    last_inbound_at: datetime | None = None
    opted_out: bool = False
    address_sealed: str | None = Field(
        default=None, sa_column=Column(SealedAddress("supporter_addresses.address"))
    )


class SupporterTag(SQLModel, table=True):
    __tablename__ = "supporter_tags"
    supporter_id: int = Field(
        sa_column=Column(Integer, ForeignKey("supporters.id", ondelete="CASCADE"), primary_key=True)
    )
    tag: str = Field(primary_key=True, max_length=100, index=True)


class TeamMembership(SQLModel, table=True):
    __tablename__ = "team_memberships"
    supporter_id: int = Field(
        sa_column=Column(Integer, ForeignKey("supporters.id", ondelete="CASCADE"), primary_key=True)
    )
    team_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True, index=True
        )
    )


class SupporterSearchTerm(SQLModel, table=True):
    """Supporter search (storage/search_terms.py): one row per term a supporter is found
    by (a name word's prefix, a phone number's ending, an address...), the term a 64-bit
    hash, keyed (HMAC) when RALLYPOINT_ENCRYPTION_KEYS is set. A search looks its terms up
    in the primary key; the supporter_id index serves rewriting one supporter's terms."""

    __tablename__ = "supporter_search_terms"
    __table_args__ = (
        Index("ix_supporter_search_terms_supporter_id", "supporter_id"),
        {"sqlite_with_rowid": False},
    )
    term: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    supporter_id: int = Field(
        sa_column=Column(
            Integer,
            ForeignKey("supporters.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        )
    )


# The inbox's order, newest activity first (gateway/api/conversations.py sorts by exactly
# this expression, so the indexes below serve its ORDER BY ... LIMIT without a sort).
CONVERSATION_ACTIVITY = "coalesce(last_message_at, created_at)"


class Conversation(SQLModel, table=True):
    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_activity", text(CONVERSATION_ACTIVITY), "id"),
        # Also the `unread = ?` lookups (unread leads it).
        Index("ix_conversations_unread_activity", "unread", text(CONVERSATION_ACTIVITY), "id"),
        # The status and assignee filters' pages in the same order (and their lookups).
        Index("ix_conversations_status_activity", "status", text(CONVERSATION_ACTIVITY), "id"),
        Index(
            "ix_conversations_assigned_activity",
            "assigned_user_id",
            text(CONVERSATION_ACTIVITY),
            "id",
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    supporter_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("supporters.id", ondelete="CASCADE"), unique=True, nullable=False
        )
    )
    last_message_at: datetime | None = Field(default=None, index=True)
    unread: bool = False  # indexed by ix_conversations_unread_activity
    unread_count: int = 0
    # CONVERSATION_STATUSES; a new inbound message reopens a resolved or snoozed one, and a
    # snoozed one whose `snoozed_until` has passed counts as open (routing/inbox/state.py).
    # The server default fills it in for the bulk paths' plain INSERTs (fan-out, ingest).
    status: str = Field(default="open", max_length=16, sa_column_kwargs={"server_default": "open"})
    snoozed_until: datetime | None = None
    # The console user it is assigned to (Supporter.assigned_to stays the API's free text).
    assigned_user_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("users.id", ondelete="SET NULL")),
    )
    created_at: datetime


class Announcement(SQLModel, table=True):
    __tablename__ = "announcements"
    id: int | None = Field(default=None, primary_key=True)
    body: str = _text(nullable=False)
    subject: str | None = None
    audience: dict[str, Any] = _json({})
    send_at: datetime | None = None
    # WhatsApp template to use outside the 24 h window: {"name", "language", "variables"}.
    template: dict[str, Any] | None = _json(None)
    idempotency_key: str | None = Field(default=None, unique=True, max_length=200)
    request_hash: str | None = Field(default=None, max_length=64)
    created_by_key_id: int | None = None
    team_scope_id: int | None = None
    recipients: int = 0
    # "pending" (fan-out not finished), "fanned_out" or "cancelled" (routing/outbound/cancel.py).
    state: str = Field(default="pending", max_length=16)
    kind: str = Field(default="announcement", max_length=16)
    # The last supporter id fanned out, committed with each batch (resumable fan-out).
    fanout_cursor: int = 0
    # Seconds of silence (no delivered / read) after which each message is sent once more
    # over the supporter's next channel (routing/dispatch/silence.py); None: never.
    fallback_after: int | None = None
    # Outbound media every message carries ({url} or {upload_id}, content_type, …).
    attachments: list[dict[str, Any]] = _json([])
    created_at: datetime


# The messages ix_messages_one_on_one holds.
ONE_ON_ONE_SENT = "kind = 'one_on_one' AND direction = 'outbound'"


class Message(SQLModel, table=True):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("channel", "provider_message_id", name="uq_message_provider_id"),
        Index("ix_messages_conversation_created", "conversation_id", "id"),
        # One message per supporter per announcement: a resumed fan-out cannot duplicate.
        Index(
            "uq_message_announcement_supporter",
            "announcement_id",
            "supporter_id",
            unique=True,
            sqlite_where=text("announcement_id IS NOT NULL"),
            postgresql_where=text("announcement_id IS NOT NULL"),
        ),
        # The silence scan's deadlines (routing/dispatch/silence.py): only the pending ones.
        Index(
            "ix_messages_fallback_at",
            "fallback_at",
            sqlite_where=text("fallback_at IS NOT NULL"),
            postgresql_where=text("fallback_at IS NOT NULL"),
        ),
        Index("uq_messages_public_token", "public_token", unique=True),
        # A team's one-on-ones in its stats (gateway/api/stats.py): per member, by time,
        # holding only one-on-ones (the query repeats these terms as literals).
        Index(
            "ix_messages_one_on_one",
            "supporter_id",
            "created_at",
            sqlite_where=text(ONE_ON_ONE_SENT),
            postgresql_where=text(ONE_ON_ONE_SENT),
        ),
        # An announcement's failures for its report, by status then id (no sort).
        Index(
            "ix_messages_announcement_status",
            "announcement_id",
            "status",
            "id",
            sqlite_where=text("announcement_id IS NOT NULL"),
            postgresql_where=text("announcement_id IS NOT NULL"),
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    # Indexed by ix_messages_conversation_created (conversation_id leads it).
    conversation_id: int = _fk("conversations.id", index=False)
    supporter_id: int = _fk("supporters.id")
    direction: str = Field(max_length=8)  # "inbound" or "outbound"
    # "one_on_one", "announcement", "poll", "auto_reply", "checkin", "inbound"
    kind: str = Field(default="one_on_one", max_length=16)
    channel: str | None = Field(default=None, max_length=16)
    address: str | None = address_copy()
    body: str = sealed_text("messages.body", nullable=False)
    subject: str | None = sealed_text("messages.subject")
    status: str = Field(max_length=16, index=True)
    provider_message_id: str | None = Field(default=None, max_length=200)
    error: str | None = _error("messages.error")
    error_code: str | None = Field(default=None, max_length=32)
    segments: int | None = None
    attachments: list[dict[str, Any]] = sealed_json("messages.attachments", [])
    # Why channels ahead of the chosen one were skipped: {channel: reason}.
    channel_choice: dict[str, Any] = _json({})
    template: dict[str, Any] | None = _json(None)
    # Email threading.
    email_message_id: str | None = Field(default=None, max_length=998, index=True)
    in_reply_to: str | None = Field(default=None, max_length=998)
    references: str | None = _text()
    # The provider's payload, kept for audit (inbound only).
    raw: str | None = sealed_text("messages.raw")
    # Indexed by uq_message_announcement_supporter: any `announcement_id = x` implies its
    # IS NOT NULL, so SQLite and PostgreSQL use it (a single-column index cost fan-out ~10%).
    announcement_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("announcements.id", ondelete="SET NULL")),
    )
    sent_by: str | None = Field(default=None, max_length=200)
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None = None
    # Inbound email under RALLYPOINT_INBOUND_SMTP_SENDER_AUTH: whether the sender was
    # verified (False: stored, but no automation ran for it). None otherwise.
    sender_verified: bool | None = None
    # Fallback on silence: when to send it once more over the next channel unless it is
    # delivered or read by then (indexed by ix_messages_fallback_at; cleared once handled),
    # the span in seconds, and the channel that stayed silent once it was re-sent.
    fallback_at: datetime | None = None
    fallback_after: int | None = None
    fallback_from: str | None = Field(default=None, max_length=16)
    # The unguessable token of its public page /m/{token} (full text and media, no login).
    public_token: str | None = Field(default=None, max_length=64)  # uq_messages_public_token


class MessageAttempt(SQLModel, table=True):
    """One try of one message over one channel: the history a fallback keeps."""

    __tablename__ = "message_attempts"
    __table_args__ = (
        UniqueConstraint("channel", "provider_message_id", name="uq_attempt_provider_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    message_id: int = _fk("messages.id")
    channel: str = Field(max_length=16)
    address: str = address_copy(nullable=False)
    provider_message_id: str | None = Field(default=None, max_length=200)
    status: str = Field(max_length=16)
    error: str | None = _error("message_attempts.error")
    error_code: str | None = Field(default=None, max_length=32)
    created_at: datetime
    # The provider that sent it (`twilio`, `africastalking`, …): SMS has more than one.
    # Last, where the migration adds it.
    provider: str | None = Field(default=None, max_length=32)


class MessageStatusEvent(SQLModel, table=True):
    __tablename__ = "message_status_events"
    id: int | None = Field(default=None, primary_key=True)
    message_id: int = _fk("messages.id")
    channel: str | None = Field(default=None, max_length=16)
    status: str = Field(max_length=16)
    error: str | None = _error("message_status_events.error")
    error_code: str | None = Field(default=None, max_length=32)
    created_at: datetime


class PendingStatus(SQLModel, table=True):
    """A status callback that arrived before its send result was stored."""

    __tablename__ = "pending_statuses"
    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=16)
    provider_message_id: str = Field(max_length=200, index=True)
    status: str = Field(max_length=16)
    error: str | None = _error("pending_statuses.error")
    error_code: str | None = Field(default=None, max_length=32)
    failure_kind: str | None = Field(default=None, max_length=32)  # a SendError class name
    created_at: datetime


class OutboxItem(SQLModel, table=True):
    """Work for the dispatcher: written in the same transaction as its message."""

    __tablename__ = "outbox"
    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("messages.id", ondelete="CASCADE"), unique=True, nullable=False
        )
    )
    # Lower goes first: 0 replies and one-on-ones, 1 announcements.
    priority: int = Field(default=1)
    due_at: datetime = Field(index=True)
    attempts: int = 0  # attempts on the current channel
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = None
    created_at: datetime


class OutboundMedia(SQLModel, table=True):
    """A file an organizer uploaded to send (one-on-one or announcement); served to the
    providers and to data-saver supporters through the messages' public pages."""

    __tablename__ = "outbound_media"
    id: int | None = Field(default=None, primary_key=True)
    content_type: str = Field(max_length=200)
    filename: str | None = Field(default=None, max_length=255)
    size: int
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"
    id: int | None = Field(default=None, primary_key=True)
    key_hash: str = Field(unique=True, max_length=64)
    prefix: str = Field(max_length=16)
    role: str = Field(max_length=16)  # admin, coordinator, team_lead
    team_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("teams.id", ondelete="CASCADE"))
    )
    name: str | None = None
    created_at: datetime
    # Written at most once a minute per key (gateway/auth.py), not on every request.
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    # Refused from this moment on (None: never expires).
    expires_at: datetime | None = None


class ConsentEvent(SQLModel, table=True):
    __tablename__ = "consent_events"
    id: int | None = Field(default=None, primary_key=True)
    supporter_id: int = _fk("supporters.id")
    action: str = Field(max_length=16)  # opt_out, opt_in
    channel: str | None = Field(default=None, max_length=16)
    message_id: int | None = None
    reason: str | None = None
    created_at: datetime


class OnboardingState(SQLModel, table=True):
    __tablename__ = "onboarding_states"
    supporter_id: int = Field(
        sa_column=Column(Integer, ForeignKey("supporters.id", ondelete="CASCADE"), primary_key=True)
    )
    step: str = Field(max_length=32)
    retries: int = 0
    channel: str | None = Field(default=None, max_length=16)
    # The team ids in the order the team question numbered them (None: asked before this
    # was kept; numbers then count in the current list).
    offered_teams: list[int] | None = _json(None)
    # The intake-call occurrence ids the intake question numbered (routing/organizing/
    # onboarding_intake.py).
    offered_events: list[int] | None = _json(None)
    updated_at: datetime


class Poll(SQLModel, table=True):
    __tablename__ = "polls"
    id: int | None = Field(default=None, primary_key=True)
    question: str = _text(nullable=False)
    options: list[str] = _json([])
    announcement_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("announcements.id", ondelete="SET NULL")),
    )
    closed: bool = False
    created_at: datetime


class PollAnswer(SQLModel, table=True):
    __tablename__ = "poll_answers"
    __table_args__ = (UniqueConstraint("poll_id", "supporter_id", name="uq_poll_answer"),)
    id: int | None = Field(default=None, primary_key=True)
    poll_id: int = _fk("polls.id")
    supporter_id: int = _fk("supporters.id")
    option_index: int
    message_id: int | None = None
    channel: str | None = Field(default=None, max_length=16)
    answered_at: datetime


class Checkin(SQLModel, table=True):
    """A team's recurring check-in: weekday (0 = Monday) and local time, in `timezone`
    (IANA) or, when that is None, the organization's."""

    __tablename__ = "checkins"
    id: int | None = Field(default=None, primary_key=True)
    team_id: int = _fk("teams.id")
    weekday: int
    local_time: str = Field(max_length=5)
    timezone: str | None = Field(default=None, max_length=64)
    prompt: str = _text(nullable=False)
    inactive_days: int = 14
    nudge_text: str | None = _text()
    last_run_at: datetime | None = None
    created_at: datetime


class User(SQLModel, table=True):
    """A person who signs in to the console. `email` is stored lower-cased (unique, so
    case-insensitively unique); only an Argon2id hash of the password is kept."""

    __tablename__ = "users"
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True, max_length=320)
    name: str | None = Field(default=None, max_length=200)
    role: str = Field(max_length=16)  # admin, coordinator, team_lead
    # A team_lead's team; deleting the team deactivates the lead (routing/people/team_delete).
    team_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("teams.id", ondelete="SET NULL"))
    )
    password_hash: str = Field(max_length=200)
    active: bool = True
    created_at: datetime
    last_sign_in_at: datetime | None = None


class ConsoleSession(SQLModel, table=True):
    """A signed-in browser. The cookie holds a random token; only its SHA-256 is stored."""

    __tablename__ = "console_sessions"
    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(unique=True, max_length=64)
    user_id: int = _fk("users.id")
    csrf_token: str = Field(max_length=64)
    created_at: datetime
    # Idle expiry counts from here; written at most once a minute (gateway/console/sessions).
    last_seen_at: datetime


class SignInThrottle(SQLModel, table=True):
    """Failed sign-ins per email (lower-cased, known or not) in the current window."""

    __tablename__ = "sign_in_throttles"
    email: str = Field(primary_key=True, max_length=320)
    failures: int = 0
    window_start: datetime
    locked_until: datetime | None = None


class AuditEvent(SQLModel, table=True):
    """Who did what: sign-ins, failed sign-ins, sign-outs, user changes."""

    __tablename__ = "audit_events"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(index=True)
    actor: str | None = Field(default=None, max_length=200)  # "user:3", "key:1", "cli"
    action: str = Field(max_length=32, index=True)
    target: str | None = Field(default=None, max_length=320)
    ip: str | None = Field(default=None, max_length=64)


class ConversationNote(SQLModel, table=True):
    """A private note between organizers on a conversation: never sent to the supporter."""

    __tablename__ = "conversation_notes"
    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = _fk("conversations.id")
    # "user:3" or "key:1"; the user's id too, for the name shown (None once deleted).
    author: str = Field(max_length=200)
    author_user_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("users.id", ondelete="SET NULL")),
    )
    body: str = sealed_text("conversation_notes.body", nullable=False)
    created_at: datetime


class SavedReply(SQLModel, table=True):
    """A canned response organizers insert into a reply; `{first_name}` is filled in."""

    __tablename__ = "saved_replies"
    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(unique=True, max_length=200)
    body: str = _text(nullable=False)
    created_by: str | None = Field(default=None, max_length=200)
    created_at: datetime
    updated_at: datetime


class DoNotContact(SQLModel, table=True):
    """An erased supporter's opted-out address, as a keyed hash only (routing/people/erasure):
    a later inbound or import of that address is created opted out."""

    __tablename__ = "do_not_contact"
    address_hash: str = Field(primary_key=True, max_length=64)
    created_at: datetime


class ErasedDelivery(SQLModel, table=True):
    """Counts an announcement's report keeps for messages erased with their supporter."""

    __tablename__ = "erased_deliveries"
    __table_args__ = (
        UniqueConstraint("announcement_id", "status", "channel", name="uq_erased_delivery"),
    )
    id: int | None = Field(default=None, primary_key=True)
    announcement_id: int = _fk("announcements.id", index=False)
    status: str = Field(max_length=16)
    channel: str | None = Field(default=None, max_length=16)
    count: int = 0
    segments: int = 0


class AnnouncementCount(SQLModel, table=True):
    """An announcement's live messages counted by status and channel ("" = none chosen),
    kept by triggers on `messages` in the writing transaction (storage/announcement_counts.py)
    so its report never counts the messages themselves."""

    __tablename__ = "announcement_counts"
    announcement_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("announcements.id", ondelete="CASCADE"), primary_key=True
        )
    )
    status: str = Field(primary_key=True, max_length=16)
    channel: str = Field(primary_key=True, max_length=16)
    n: int = 0
    segments: int = 0  # the messages' SMS segments (the report sums the `sms` rows)
    fallback: int = 0  # of those, messages sent again after `fallback_after` (fallback_from)


class AnnouncementCountChange(SQLModel, table=True):
    """PostgreSQL only: the triggers append changes here (no row shared by two writers, so
    concurrent dispatchers neither wait nor deadlock on a counter); `fold_count_changes`
    moves them into `announcement_counts`, and the report adds what is not folded yet."""

    __tablename__ = "announcement_count_changes"
    __table_args__ = (Index("ix_announcement_count_changes_announcement", "announcement_id"),)
    id: int | None = Field(default=None, primary_key=True)
    announcement_id: int  # no foreign key: a deleted announcement's changes are dropped
    status: str = Field(max_length=16)
    channel: str = Field(max_length=16)
    n: int = 0
    segments: int = 0
    fallback: int = 0


class MetricCount(SQLModel, table=True):
    """A `GET /metrics` total (inbound messages by channel, send attempts by channel and
    status, webhook deliveries by status; "" = no such label), kept by triggers on those
    tables in the writing transaction (storage/metric_counts.py)."""

    __tablename__ = "metric_counts"
    metric: str = Field(primary_key=True, max_length=16)
    channel: str = Field(primary_key=True, max_length=16)
    status: str = Field(primary_key=True, max_length=16)
    n: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))


class MetricCountChange(SQLModel, table=True):
    """PostgreSQL only: the triggers append changes here (no counter row shared by
    concurrent writers); `fold_metric_changes` moves them into `metric_counts`."""

    __tablename__ = "metric_count_changes"
    id: int | None = Field(default=None, primary_key=True)
    metric: str = Field(max_length=16)
    channel: str = Field(max_length=16)
    status: str = Field(max_length=16)
    n: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))


class ServerSecret(SQLModel, table=True):
    """A secret the server generated once for itself (e.g. the do-not-contact hash key when
    RALLYPOINT_ERASURE_KEY is unset)."""

    __tablename__ = "server_secrets"
    name: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=200)
    created_at: datetime


class WebhookSubscription(SQLModel, table=True):
    """An outgoing webhook: a URL told of some event types (routing/webhooks/)."""

    __tablename__ = "webhook_subscriptions"
    id: int | None = Field(default=None, primary_key=True)
    url: str = _text(nullable=False)
    # The event types, comma-separated with a comma at each end (",a,b,"), so any database
    # can select the subscribers of one type with LIKE '%,a,%'.
    events: str = _text(nullable=False)
    # Signs every delivery (HMAC-SHA256); shown once, when the subscription is made.
    secret: str = Field(max_length=64)
    created_at: datetime
    # Deliveries failing in a row, and since when; reset by a success.
    consecutive_failures: int = 0
    failing_since: datetime | None = None
    # Set when it kept failing: its deliveries wait until it is made again.
    paused_at: datetime | None = None
    paused_reason: str | None = _text()


class WebhookDelivery(SQLModel, table=True):
    """One event for one subscription, written in the transaction that caused it (an
    outbox): the delivery loop (routing/webhooks/delivery.py) claims, signs and sends it.
    The body is rendered when sent, from the rows it names."""

    __tablename__ = "webhook_deliveries"
    id: int | None = Field(default=None, primary_key=True)
    subscription_id: int = _fk("webhook_subscriptions.id")
    event: str = Field(max_length=32)
    supporter_id: int | None = _fk("supporters.id", nullable=True)
    message_id: int | None = _fk("messages.id", nullable=True)
    poll_id: int | None = _fk("polls.id", nullable=True, index=False)
    rsvp_id: int | None = _fk("event_rsvps.id", nullable=True, index=False)
    channel: str | None = Field(default=None, max_length=16)
    # `message.status`: the status the event reports (the message may have moved on since).
    message_status: str | None = Field(default=None, max_length=16)
    status: str = Field(default="pending", max_length=16)  # pending, delivered, failed
    attempts: int = 0
    # When it is next tried; None once delivered or given up.
    due_at: datetime | None = Field(default=None, index=True)
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = None
    response_status: int | None = None
    last_error: str | None = _text()
    created_at: datetime
    delivered_at: datetime | None = None


class ChannelCircuit(SQLModel, table=True):
    """A circuit breaker's last change for one channel and sender (routing/dispatch/
    breaker.py), written by whichever dispatcher saw it, read by /healthz and /metrics."""

    __tablename__ = "channel_circuits"
    channel: str = Field(primary_key=True, max_length=16)
    sender: str = Field(primary_key=True, max_length=128)
    state: str = Field(max_length=16)  # closed, open, probing
    failures: int = 0
    until: datetime | None = None
    updated_at: datetime


class DispatcherBeat(SQLModel, table=True):
    """A running dispatcher and its last heartbeat (routing/dispatch/liveness.py): rows
    leased by one that stopped beating, or whose process is gone from this host, are
    taken over at once instead of when their leases run out."""

    __tablename__ = "dispatchers"
    owner: str = Field(primary_key=True, max_length=64)
    host: str = Field(max_length=64)
    pid: int
    started_at: datetime
    beat_at: datetime


class Event(SQLModel, table=True):
    """A call, training or intake call (gateway/api/events.py). Its invitation goes out as
    an announcement of kind "event" (`announcement_id`); a recurring one has one
    `EventOccurrence` per date within the horizon, each with its own RSVPs."""

    __tablename__ = "events"
    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=200)
    # "call", "training" or "intake" (onboarding offers the next intake calls).
    kind: str = Field(default="call", max_length=16)
    starts_at: datetime = Field(index=True)
    duration_minutes: int = 60
    # A link, or a phone bridge / dial-in text.
    location_url: str | None = _text()
    description: str | None = _text()
    capacity: int | None = None
    audience: dict[str, Any] = _json({})
    recurrence: str | None = Field(default=None, max_length=500)
    announcement_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("announcements.id", ondelete="SET NULL")),
    )
    team_scope_id: int | None = None
    created_by_key_id: int | None = None
    cancelled_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class EventOccurrence(SQLModel, table=True):
    """One date of an event (a one-off event has exactly one)."""

    __tablename__ = "event_occurrences"
    __table_args__ = (
        UniqueConstraint("event_id", "starts_at", name="uq_event_occurrence_start"),
        Index("ix_event_occurrences_starts_at", "starts_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    event_id: int = _fk("events.id", index=False)
    starts_at: datetime
    created_at: datetime


class EventRsvp(SQLModel, table=True):
    """A supporter's invitation to one occurrence and their answer (None: no reply yet)."""

    __tablename__ = "event_rsvps"
    __table_args__ = (
        UniqueConstraint("occurrence_id", "supporter_id", name="uq_event_rsvp"),
        # The RSVP list by id: an event's, of one answer, of one occurrence.
        Index("ix_event_rsvps_event_answer", "event_id", "answer", "id"),
        Index("ix_event_rsvps_event_order", "event_id", "id"),
        Index("ix_event_rsvps_occurrence_order", "occurrence_id", "id"),
        # The counts by answer and by channel, from the index alone.
        Index("ix_event_rsvps_tally", "occurrence_id", "answer", "channel", "attended"),
    )
    id: int | None = Field(default=None, primary_key=True)
    event_id: int = _fk("events.id", index=False)
    occurrence_id: int = _fk("event_occurrences.id", index=False)
    supporter_id: int = _fk("supporters.id")
    # "yes", "no", "maybe", "waitlist" (said yes to a full event), None: no reply.
    answer: str | None = Field(default=None, max_length=16)
    answered_at: datetime | None = None
    # The reply that answered (its channel counts RSVPs by channel).
    message_id: int | None = None
    channel: str | None = Field(default=None, max_length=16)
    attended: bool = False
    attended_at: datetime | None = None
    invited_at: datetime


class EventReminder(SQLModel, table=True):
    """A reminder claimed for one occurrence and offset: the unique key makes it go out
    once, whichever scheduler inserts the row first (routing/organizing/event_reminders.py)."""

    __tablename__ = "event_reminders"
    __table_args__ = (
        UniqueConstraint("occurrence_id", "offset_seconds", name="uq_event_reminder"),
    )
    id: int | None = Field(default=None, primary_key=True)
    occurrence_id: int = _fk("event_occurrences.id", index=False)
    offset_seconds: int
    # 0 when a nearer reminder was due as well (only the nearest is sent).
    recipients: int = 0
    sent_at: datetime


# CustomField.type vocabulary (closed set).
FIELD_TYPES = ("text", "number", "date", "choice")


class CustomField(SQLModel, table=True):
    """A typed field organizers define on supporters (routing/people/fields.py)."""

    __tablename__ = "custom_fields"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=64)  # a slug: [a-z][a-z0-9_]*
    type: str = Field(max_length=16)  # FIELD_TYPES
    choices: list[str] | None = _json(None)
    created_at: datetime


class SupporterFieldValue(SQLModel, table=True):
    """One supporter's value of one custom field, as canonical text (a number as written
    in its shortest decimal form, a date as YYYY-MM-DD). Read and written only through
    storage/field_values.py, which seals it when keys are set: `value` then holds the
    value's blind index (so audience filters stay an indexed equality) and
    `value_sealed` the value, bound to its supporter and field."""

    __tablename__ = "supporter_field_values"
    __table_args__ = (
        # Audience filters (`fields: {county: "Kisumu"}`): field, then value.
        Index("ix_supporter_field_values_field_value", "field_id", "value"),
        # Start-up with keys asks whether any value is still plaintext (storage/crypto_setup.py):
        # without this the answer read every row when none is.
        Index(
            "ix_supporter_field_values_plain",
            "supporter_id",
            sqlite_where=text("value_sealed IS NULL"),
            postgresql_where=text("value_sealed IS NULL"),
        ),
    )
    supporter_id: int = Field(
        sa_column=Column(Integer, ForeignKey("supporters.id", ondelete="CASCADE"), primary_key=True)
    )
    field_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("custom_fields.id", ondelete="CASCADE"), primary_key=True
        )
    )
    value: str = Field(max_length=1000)
    value_sealed: str | None = Field(default=None, sa_column=Column(Text))


@event.listens_for(SupporterAddress, "before_insert")
@event.listens_for(SupporterAddress, "before_update")
def _seal_address(_mapper: Any, _connection: Any, row: SupporterAddress) -> None:
    """Keep `address_sealed` in step with `address` (SealedAddress stores NULL without keys).
    Core inserts and updates of addresses set both themselves."""
    if row.address_sealed is None or inspect(row).attrs.address.history.has_changes():
        row.address_sealed = row.address


install_triggers(SQLModel.metadata)  # announcement_counts, kept by triggers on messages
install_metric_triggers(SQLModel.metadata)  # metric_counts, for GET /metrics

"""The coordinator REST API under /api/v1, one module per resource."""

from fastapi import APIRouter

from gateway.api import (
    announcement_recipients,
    announcements,
    attachments,
    audit,
    checkins,
    consent,
    conversation_actions,
    conversations,
    event_actions,
    events,
    fields,
    keys,
    messages,
    outbound_media,
    outgoing_webhooks,
    polls,
    privacy,
    saved_replies,
    stats,
    supporter_events,
    supporter_tags,
    supporters,
    supporters_csv,
    teams,
    users,
)

router = APIRouter(prefix="/api/v1")
# supporters_csv first: its /supporters/export must win over /supporters/{supporter_id}.
for module in (
    supporters_csv,
    privacy,
    supporter_tags,
    supporter_events,
    supporters,
    teams,
    conversations,
    conversation_actions,
    messages,
    attachments,
    announcements,
    announcement_recipients,
    polls,
    events,
    event_actions,
    stats,
    saved_replies,
    checkins,
    consent,
    keys,
    users,
    audit,
    outgoing_webhooks,
    outbound_media,
    fields,
):
    router.include_router(module.router)

"""The coordinator REST API under /api/v1, one module per resource."""

from fastapi import APIRouter

from gateway.api import (
    announcements,
    attachments,
    checkins,
    consent,
    conversations,
    keys,
    messages,
    outgoing_webhooks,
    polls,
    stats,
    supporters,
    supporters_csv,
    teams,
    users,
)

router = APIRouter(prefix="/api/v1")
# supporters_csv first: its /supporters/export must win over /supporters/{supporter_id}.
for module in (
    supporters_csv,
    supporters,
    teams,
    conversations,
    messages,
    attachments,
    announcements,
    polls,
    stats,
    checkins,
    consent,
    keys,
    users,
    outgoing_webhooks,
):
    router.include_router(module.router)

"""The coordinator REST API under /api/v1, one module per resource."""

from fastapi import APIRouter

from gateway.api import checkins, consent

router = APIRouter(prefix="/api/v1")
router.include_router(checkins.router)
router.include_router(consent.router)

from gateway.api import (  # noqa: E402
    conversations,
    messages,
    supporters,
    supporters_csv,
    teams,
)

# supporters_csv first: its /supporters/export must win over /supporters/{supporter_id}.
router.include_router(supporters_csv.router)
router.include_router(supporters.router)
router.include_router(teams.router)
router.include_router(conversations.router)
router.include_router(messages.router)

from gateway.api import announcements, polls, stats  # noqa: E402

router.include_router(announcements.router)
router.include_router(polls.router)
router.include_router(stats.router)

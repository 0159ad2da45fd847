"""The coordinator REST API under /api/v1, one module per resource."""

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1")

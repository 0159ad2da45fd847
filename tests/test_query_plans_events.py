"""The events list, an event's detail and its RSVPs read through indexes at 10,000 events
and millions of RSVPs: every statement behind `GET /events` (first and later pages,
upcoming only), `GET /events/{id}` and `GET /events/{id}/rsvps` is captured as the app
runs it and explained (tests/test_query_plans_reports.py). The list's statements do not
grow with the page: a page of events is read in the same few statements as one event."""

from __future__ import annotations

from typing import Any

import pytest

from routing.context import AppContext
from tests.e2e.harness import MakeClient
from tests.test_query_plans_reports import assert_indexed, explained, get, org_client

EVENTS = ("events", "event_occurrences", "event_rsvps")
START = "2026-03-10T18:00:00+00:00"


@pytest.fixture
async def org(make_client: MakeClient) -> Any:
    return await org_client(make_client)


@pytest.fixture
async def events(org: Any) -> list[int]:
    ids = []
    for n, recurrence in enumerate((None, "FREQ=WEEKLY;COUNT=4", None)):
        answer = await org.post(
            "/api/v1/events",
            json={
                "title": f"Call {n}",
                "starts_at": START,
                "audience": {"teams": ["Canvassing"]},
                **({"recurrence": recurrence} if recurrence else {}),
            },
        )
        assert answer.status_code == 201, answer.text
        ids.append(answer.json()["id"])
    return ids


def _postgresql(ctx: AppContext) -> bool:
    return ctx.engine.dialect.name == "postgresql"


def _ordered_walks(plans: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The plans without the list's own walk: SQLite walks ix_events_starts_at in order and
    stops at the page's LIMIT ("SCAN events USING INDEX"), which is what it should do;
    everything else in those statements is still checked."""
    walk = "SCAN events USING INDEX ix_events_starts_at"
    return [
        (statement, plan.replace(walk, "") if "LIMIT" in statement.upper() else plan)
        for statement, plan in plans
    ]


@pytest.mark.parametrize("params", [{}, {"upcoming": "true"}])
async def test_the_events_list_reads_a_page_in_a_few_indexed_statements(
    org: Any, events: list[int], params: dict[str, Any]
) -> None:
    ctx: AppContext = org.ctx

    async def two_pages() -> None:
        first = await get(org, "/events", limit=2, **params)
        assert first["next_cursor"], first
        await get(org, "/events", limit=2, cursor=first["next_cursor"], **params)

    plans = await explained(ctx, two_pages, EVENTS)
    # Per page: the events, their occurrences, the occurrences' start times, the counts.
    assert len(plans) == 8, [statement for statement, _ in plans]
    assert_indexed(_ordered_walks(plans), _postgresql(ctx), EVENTS)
    if not _postgresql(ctx):
        assert not any("TEMP B-TREE FOR ORDER BY" in plan for _, plan in plans), plans
        # The later page starts its walk at the cursor rather than at the first event.
        assert "SEARCH events USING INDEX ix_events_starts_at" in plans[4][1], plans[4]
        assert all("ix_event_rsvps_tally" in plans[n][1] for n in (3, 7)), plans


async def test_an_event_and_its_rsvps_read_through_indexes(org: Any, events: list[int]) -> None:
    ctx: AppContext = org.ctx
    recurring = events[1]

    async def read() -> None:
        detail = await get(org, f"/events/{recurring}")
        assert len(detail["occurrences"]) == 4
        await get(org, f"/events/{recurring}", occurrence_id=detail["occurrences"][2]["id"])
        page = await get(org, f"/events/{recurring}/rsvps", limit=2)
        await get(org, f"/events/{recurring}/rsvps", limit=2, cursor=page["next_cursor"])
        await get(org, f"/events/{recurring}/rsvps", answer="no_reply", limit=2)

    plans = await explained(ctx, read, EVENTS)
    assert_indexed(plans, _postgresql(ctx), EVENTS)
    if not _postgresql(ctx):
        # Counts and the attendance rate from the tally index alone, never the rows.
        counted = [plan for statement, plan in plans if "count(" in statement.lower()]
        assert counted and all("COVERING INDEX ix_event_rsvps_tally" in p for p in counted)

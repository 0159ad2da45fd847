"""GET /teams: `members` comes from the count triggers keep on team_memberships (joins,
moves, erasure, deleting the supporter) and equals a count in SQL; the list pages by name
(`limit`, `cursor`), all in one page by default as before."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from tests.conftest import FakeClock
from tests.e2e.harness import MakeClient, Org


async def members_in_sql(org: Org) -> dict[str, int]:
    async with org.ctx.sessions() as session:
        rows = await session.execute(
            text(
                "SELECT t.name, count(m.supporter_id) FROM teams AS t"
                " LEFT JOIN team_memberships AS m ON m.team_id = t.id GROUP BY t.name"
            )
        )
        return {name: int(n) for name, n in rows.all()}


async def listed(org: Org, **params: Any) -> dict[str, int]:
    answer = await org.api("GET", "/teams", params=params)
    return {team["name"]: team["members"] for team in answer["items"]}


async def test_member_counts_follow_every_change_and_the_list_pages_by_name(
    make_client: MakeClient, clock: FakeClock
) -> None:
    org = await Org.start(make_client, clock)
    for name in ("Canvassing", "Data", "Phone bank"):
        await org.team(name)
    people = [
        await org.supporter(
            name=f"Member {n}",
            addresses=[{"channel": "sms", "address": f"+1415555040{n}"}],
            teams=["Canvassing", "Data"] if n % 2 else ["Phone bank"],
        )
        for n in range(5)
    ]
    assert (
        await listed(org)
        == await members_in_sql(org)
        == {
            "Canvassing": 2,
            "Data": 2,
            "Phone bank": 3,
        }
    )
    await org.api("PATCH", f"/supporters/{people[0]['id']}", json={"teams": ["Data"]})
    await org.api("POST", f"/supporters/{people[1]['id']}/erase", 204)
    await org.api("DELETE", f"/supporters/{people[2]['id']}", 204)
    assert (
        await listed(org)
        == await members_in_sql(org)
        == {
            "Canvassing": 1,
            "Data": 2,
            "Phone bank": 1,
        }
    )

    names: list[str] = []
    page = await org.api("GET", "/teams", params={"limit": 2})
    names += [team["name"] for team in page["items"]]
    page = await org.api("GET", "/teams", params={"limit": 2, "cursor": page["next_cursor"]})
    names += [team["name"] for team in page["items"]]
    assert (names, page["next_cursor"]) == (["Canvassing", "Data", "Phone bank"], None)
    whole = await org.api("GET", "/teams")
    assert whole["next_cursor"] is None and len(whole["items"]) == 3

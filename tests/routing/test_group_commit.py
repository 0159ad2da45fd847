"""storage/group_commit.py: concurrent callers share batches, and each gets its own result
or error; a failing batch fails only its own callers."""

from __future__ import annotations

import asyncio

import pytest

from storage.group_commit import GroupCommit


async def test_concurrent_callers_share_batches_and_get_their_own_results() -> None:
    batches: list[list[int]] = []

    async def write(items: list[int]) -> list[int | BaseException]:
        batches.append(items)
        await asyncio.sleep(0)
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]

    group: GroupCommit[int, int] = GroupCommit(write, max_batch=4, name="test")
    results = await asyncio.wait_for(
        asyncio.gather(*(group.submit(i) for i in range(10)), return_exceptions=True), 5
    )
    assert [r if isinstance(r, int) else str(r) for r in results] == [
        0, "odd 1", 20, "odd 3", 40, "odd 5", 60, "odd 7", 80, "odd 9",
    ]  # fmt: skip
    assert [len(b) for b in batches] == [4, 4, 2]  # all ten queue before the writer runs


async def test_a_failing_batch_fails_its_callers_and_the_writer_goes_on() -> None:
    calls = 0

    async def write(items: list[str]) -> list[str | BaseException]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database gone")
        return [item.upper() for item in items]

    group: GroupCommit[str, str] = GroupCommit(write, max_batch=100, name="test")
    with pytest.raises(RuntimeError, match="database gone"):
        await asyncio.wait_for(group.submit("a"), 5)
    assert await asyncio.wait_for(group.submit_many(["b", "c"]), 5) == ["B", "C"]

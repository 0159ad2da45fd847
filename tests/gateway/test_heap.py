"""gateway.heap: what `serve` does to the garbage collector once it has started."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from gateway.heap import settle_heap
from gateway.settings import Settings


@pytest.fixture
def gc_state() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


@pytest.mark.usefixtures("gc_state")
def test_settling_freezes_what_is_loaded_and_collects_young_objects_less_often() -> None:
    threshold = Settings(_env_file=None).gc_threshold  # type: ignore[call-arg]
    _, middle, old = gc.get_threshold()
    settle_heap(threshold)
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (20_000, middle, old)


@pytest.mark.usefixtures("gc_state")
def test_a_zero_threshold_keeps_cpythons_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RALLYPOINT_GC_THRESHOLD", "0")
    before = gc.get_threshold()
    settle_heap(Settings(_env_file=None).gc_threshold)  # type: ignore[call-arg]
    assert gc.get_threshold() == before

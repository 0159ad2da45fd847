"""Horizontal bar charts as inline SVG geometry (templates/_bar_chart.html draws them): no
chart library, and the same numbers always go in a table beside the chart."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

# viewBox units, about CSS pixels on a phone (the SVG scales to its box, so text stays
# readable at 390 px wide and is not huge on a desktop: console.css caps the width).
WIDTH = 360
LABEL_WIDTH = 100
VALUE_WIDTH = 44
BAR_HEIGHT = 22
GAP = 8


@dataclass(frozen=True)
class Segment:
    series: str
    value: int
    x: float
    width: float


@dataclass
class Bar:
    label: str
    total: int
    y: float
    segments: list[Segment] = field(default_factory=list)


@dataclass
class BarChart:
    title: str
    description: str
    bars: list[Bar]
    series: list[str]
    width: int = WIDTH
    label_width: int = LABEL_WIDTH
    bar_height: int = BAR_HEIGHT

    @property
    def height(self) -> int:
        return max(1, len(self.bars)) * (BAR_HEIGHT + GAP) + GAP

    @property
    def value_x(self) -> float:
        return WIDTH - VALUE_WIDTH + 6


def bar_chart(
    title: str, rows: Sequence[tuple[str, Sequence[tuple[str, int]]]], series: Sequence[str]
) -> BarChart:
    """One bar per row, stacked by series, all on one scale (the largest total fills it).

    `rows` is [(label, [(series, value), ...])]; `series` the order of the stack (and the
    legend). The description spells out every number for screen readers.
    """
    longest = max((sum(v for _, v in values) for _, values in rows), default=0)
    span = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    scale = span / longest if longest else 0.0
    bars: list[Bar] = []
    described: list[str] = []
    for i, (label, values) in enumerate(rows):
        by_series = dict(values)
        bar = Bar(label=label, total=sum(by_series.values()), y=GAP + i * (BAR_HEIGHT + GAP))
        x = float(LABEL_WIDTH)
        for name in series:
            value = by_series.get(name, 0)
            if value:
                bar.segments.append(Segment(name, value, x, value * scale))
                x += value * scale
        bars.append(bar)
        parts = ", ".join(f"{s.value} {s.series}" for s in bar.segments) or "none"
        described.append(f"{label}: {bar.total} ({parts})")
    description = "; ".join(described) if described else "No data yet."
    return BarChart(title=title, description=description, bars=bars, series=list(series))

"""Benchmark figures, their baselines and targets; BENCHMARKS.md and the plot."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path


@dataclass
class Figure:
    benchmark: str
    metric: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_label: str = ""
    target: str = ""
    passed: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline  # type: ignore[operator]

    def line(self) -> str:
        ratio = f"{self.ratio:.2f}" if self.ratio is not None else "-"
        base = f"{self.baseline:,.1f}" if self.baseline is not None else "-"
        verdict = {True: "PASS", False: "MISS", None: ""}[self.passed]
        return (
            f"{self.benchmark:<12} {self.metric:<34} {self.value:>12,.1f} {self.unit:<8} "
            f"baseline {base:>12} ratio {ratio:>5}  {self.target} {verdict}"
            + (f"  ({self.note})" if self.note else "")
        )


@dataclass
class Chart:
    """One panel of the plot: curves that share their axes."""

    title: str
    xlabel: str
    ylabel: str
    log: bool = True
    curves: dict[str, list[tuple[float, float]]] = field(default_factory=dict)


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)
    charts: dict[str, Chart] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # Fixed text: what earlier runs on other VMs measured, and what each change bought.
    history: list[str] = field(default_factory=list)

    def chart(self, title: str, xlabel: str, ylabel: str, *, log: bool = True) -> Chart:
        return self.charts.setdefault(title, Chart(title, xlabel, ylabel, log))

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        print(figure.line(), flush=True)
        return figure


def machine() -> str:
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) // 1024 // 1024} GiB"
    except OSError:
        pass
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    system = f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    return f"{os.cpu_count()} cores ({cpu}), {mem} RAM, {system}"


def write_markdown(report: Report, path: Path, plot: Path | None) -> None:
    rows = [
        "| benchmark | metric | value | baseline (same run) | ratio | target | result | detail |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for f in report.figures:
        base = f"{f.baseline:,.1f} ({f.baseline_label})" if f.baseline is not None else "-"
        ratio = f"{f.ratio:.2f}" if f.ratio is not None else "-"
        verdict = {True: "met", False: "**missed**", None: "-"}[f.passed]
        rows.append(
            f"| {f.benchmark} | {f.metric} | {f.value:,.1f} {f.unit} | {base} | {ratio} | "
            f"{f.target or '-'} | {verdict} | {f.note or '-'} |"
        )
    text = [
        "# Benchmarks",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `scripts/bench` on {machine()}.",
        "Every figure and its baseline come from the same run; provider fakes are on loopback.",
        "",
        *rows,
        "",
    ]
    if plot is not None:
        text += [f"![scaling curves]({plot.name})", ""]
    if report.notes:
        text += ["## What bounds each figure", "", *[f"- {n}" for n in report.notes], ""]
    if report.history:
        text += [
            "## Earlier runs, on other VMs of the same kind",
            "",
            "Figures here are not from this run: they are kept to show what each change bought"
            " and how far the absolute figures move with the VM.",
            "",
            *[f"- {n}" for n in report.history],
            "",
        ]
    # The data-scale benchmark's section (bench/scale.py), written by its own runs.
    old = path.read_text() if path.exists() else ""
    begin, end = "<!-- scale:begin -->", "<!-- scale:end -->"
    if begin in old and end in old:
        text += [begin + old.split(begin, 1)[1].split(end, 1)[0] + end, ""]
    path.write_text("\n".join(text))


def write_plot(report: Report, path: Path) -> Path | None:
    """One panel per chart, side by side."""
    charts = [chart for chart in report.charts.values() if any(chart.curves.values())]
    if not charts:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(charts), figsize=(6.5 * len(charts), 4.5), squeeze=False)
    for ax, chart in zip(axes[0], charts, strict=True):
        for name, points in chart.curves.items():
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", label=name)
        if chart.log:
            ax.set_xscale("log")
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0)
            ax.set_xticks(sorted({x for points in chart.curves.values() for x, _ in points}))
        ax.set_title(chart.title)
        ax.set_xlabel(chart.xlabel)
        ax.set_ylabel(chart.ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

"""A patient's parasitemia over time as the geometry of an inline SVG chart (drawn by a template, no JS)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from diagnostics.models import Sample

# The y axis tops out at the first of these above the highest point, so small parasitemias stay readable.
Y_LIMITS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


@dataclass(frozen=True)
class ChartPoint:
    x: float
    y: float
    sample_id: int
    date: str
    value: str
    result: str


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class ParasitemiaChart:
    width: int
    height: int
    left: int
    right: float
    top: int
    bottom: float
    points: list[ChartPoint]
    y_ticks: list[Tick]
    x_ticks: list[Tick]

    @property
    def line(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)


def percent_text(fraction: float) -> str:
    return f"{fraction * 100:.1f}".removesuffix(".0") + " %"


def parasitemia_chart(samples: Sequence[Sample], *, width: int = 560, height: int = 240) -> ParasitemiaChart | None:
    """Samples oldest first, each with a parasitemia; None when there is nothing to draw."""
    samples = [s for s in samples if s.parasitemia is not None]
    if not samples:
        return None
    left, right, top, bottom = 56, width - 16, 12, height - 36
    y_top = next((limit for limit in Y_LIMITS if max(s.parasitemia for s in samples) <= limit), 1.0)
    first, last = samples[0].collected_at, samples[-1].collected_at
    span_days = (last - first).days

    def x_of(index: int, sample: Sample) -> float:
        if span_days == 0:  # all on one day: spread them out in order
            return (left + right) / 2 if len(samples) == 1 else left + (right - left) * index / (len(samples) - 1)
        return left + (right - left) * (sample.collected_at - first).days / span_days

    def y_of(value: float) -> float:
        return bottom - (bottom - top) * value / y_top

    points = [
        ChartPoint(
            x=x_of(i, s),
            y=y_of(s.parasitemia),
            sample_id=s.pk,
            date=s.collected_at.isoformat(),
            value=percent_text(s.parasitemia),
            result=s.final_result,
        )
        for i, s in enumerate(samples)
    ]
    y_ticks = [Tick(position=y_of(y_top * k / 4), label=percent_text(y_top * k / 4)) for k in range(5)]
    x_ticks = [Tick(position=points[0].x, label=points[0].date)]
    if points[-1].date != points[0].date:
        x_ticks.append(Tick(position=points[-1].x, label=points[-1].date))
    return ParasitemiaChart(
        width=width,
        height=height,
        left=left,
        right=right,
        top=top,
        bottom=bottom,
        points=points,
        y_ticks=y_ticks,
        x_ticks=x_ticks,
    )

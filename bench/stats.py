"""Summaries of repeated measurements and the straight-line fit behind "linear"."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["LinearFit", "Summary", "fit_line", "summarize"]


@dataclass(frozen=True)
class Summary:
    """Median and range of repeated measurements."""

    median: float
    low: float
    high: float
    count: int

    def render(self, digits: int = 2, scale: float = 1.0) -> str:
        """``median (min-max)``, each multiplied by ``scale``."""
        if self.count == 1:
            return f"{self.median * scale:.{digits}f}"
        return f"{self.median * scale:.{digits}f} ({self.low * scale:.{digits}f}-{self.high * scale:.{digits}f})"


def summarize(values: Sequence[float]) -> Summary:
    """The :class:`Summary` of ``values`` (at least one)."""
    if not values:
        raise ValueError("no measurements to summarize")
    return Summary(statistics.median(values), min(values), max(values), len(values))


@dataclass(frozen=True)
class LinearFit:
    """Least-squares line ``y = intercept + slope * x``.

    ``r_squared`` is 1.0 for a perfect line (and for two points);
    ``max_residual`` is the largest distance of a point from the line.
    """

    slope: float
    intercept: float
    r_squared: float
    max_residual: float

    def at(self, x: float) -> float:
        """The line's value at ``x``."""
        return self.intercept + self.slope * x


def fit_line(xs: Sequence[float], ys: Sequence[float]) -> LinearFit:
    """Fit a least-squares line through at least two points with distinct ``xs``."""
    if len(xs) != len(ys) or len(set(xs)) < 2:
        raise ValueError("a line needs at least two points with different x")
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    spread_x = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread_x
    intercept = mean_y - slope * mean_x
    residuals = [y - (intercept + slope * x) for x, y in zip(xs, ys, strict=True)]
    total = sum((y - mean_y) ** 2 for y in ys)
    r_squared = 1.0 - sum(r**2 for r in residuals) / total if total else 1.0
    return LinearFit(slope, intercept, r_squared, max(abs(r) for r in residuals))

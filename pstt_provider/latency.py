"""
Mergeable latency histogram.

Percentiles cannot be averaged across runs, so every run ships its full latency distribution in fixed
geometric buckets (each 10 % wider than the last). Histograms from any number of runs add bucket by bucket,
and a percentile read from the sum is within one bucket (10 %) of the exact value.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

GROWTH = 1.1
SMALLEST_MS = 0.1
_LOG_GROWTH = math.log(GROWTH)
_TABLE_SIZE = 256
"""Buckets found by binary search over their precomputed upper bounds: up to about 3.5e9 ms (40 days)."""


def bucket_upper_ms(index: int) -> float:
    return SMALLEST_MS * GROWTH**index


_UPPERS = [bucket_upper_ms(index) for index in range(_TABLE_SIZE)]


def bucket_index(ms: float) -> int:
    """
    Bucket 0 holds everything up to SMALLEST_MS; bucket k > 0 holds (upper(k-1), upper(k)].

    This runs once per delivered message, so the common case is one ``bisect`` over the precomputed
    upper bounds (no logarithm); only a latency beyond the table falls back to the formula.
    """
    index = bisect_left(_UPPERS, ms)
    if index < _TABLE_SIZE:
        return index
    return math.ceil(math.log(ms / SMALLEST_MS) / _LOG_GROWTH - 1e-9)


@dataclass
class LatencyHistogram:
    counts: dict[int, int] = field(default_factory=dict)
    total: int = 0
    sum_ms: float = 0.0
    max_ms: float = 0.0

    def record(self, ms: float, count: int = 1) -> None:
        """``count`` messages that took ``ms`` each; ``bucket_index``'s table lookup is inlined here."""
        index = bisect_left(_UPPERS, ms)
        if index == _TABLE_SIZE:
            index = bucket_index(ms)
        counts = self.counts
        counts[index] = counts.get(index, 0) + count
        self.total += count
        self.sum_ms += ms * count
        if ms > self.max_ms:
            self.max_ms = ms

    def merge(self, other: LatencyHistogram) -> None:
        for index, count in other.counts.items():
            self.counts[index] = self.counts.get(index, 0) + count
        self.total += other.total
        self.sum_ms += other.sum_ms
        self.max_ms = max(self.max_ms, other.max_ms)

    @classmethod
    def merged(cls, histograms: Iterable[LatencyHistogram]) -> LatencyHistogram:
        result = cls()
        for histogram in histograms:
            result.merge(histogram)
        return result

    @property
    def avg_ms(self) -> float:
        return self.sum_ms / self.total if self.total else 0.0

    def quantile_ms(self, q: float) -> float:
        """Upper bound of the bucket holding the q-th quantile, capped at the largest value seen."""
        if not self.total:
            return 0.0
        rank = max(1, math.ceil(q * self.total))
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= rank:
                return min(bucket_upper_ms(index), self.max_ms)
        return self.max_ms

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (XCom, database): bucket indexes become string keys."""
        return {
            "growth": GROWTH,
            "smallest_ms": SMALLEST_MS,
            "counts": {str(index): count for index, count in sorted(self.counts.items())},
            "total": self.total,
            "sum_ms": self.sum_ms,
            "max_ms": self.max_ms,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LatencyHistogram:
        if data.get("growth", GROWTH) != GROWTH or data.get("smallest_ms", SMALLEST_MS) != SMALLEST_MS:
            raise ValueError("latency histogram uses a different bucket layout and cannot be merged")
        return cls(
            counts={int(index): int(count) for index, count in data.get("counts", {}).items()},
            total=int(data.get("total", 0)),
            sum_ms=float(data.get("sum_ms", 0.0)),
            max_ms=float(data.get("max_ms", 0.0)),
        )

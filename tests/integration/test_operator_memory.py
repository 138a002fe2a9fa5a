"""
Memory stays flat in the number of rows: peak RSS of a 10x larger extraction is within 15 % of the smaller one.

The default suite compares 20,000 with 200,000 rows; PSTT_SLOW_TESTS=1 compares 200,000 with 2,000,000
(about two minutes on a busy two-core machine).
"""

from __future__ import annotations

import os

from memory import measure_extraction

SLOW = os.environ.get("PSTT_SLOW_TESTS") == "1"
LARGE = 2_000_000 if SLOW else 200_000


def test_peak_memory_does_not_grow_with_the_number_of_rows(postgres, kafka_bootstrap):
    small = measure_extraction(LARGE // 10)
    large = measure_extraction(LARGE)

    assert large["messages_sent"] == LARGE
    assert large["peak_rss_kb"] <= small["peak_rss_kb"] * 1.15, (small, large)

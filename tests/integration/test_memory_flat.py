"""
A 2,000,000-row extraction from PostgreSQL stays within the peak RSS of a 200,000-row one (+15 %).

Each extraction runs in a fresh process (``tests/memory.py``) so nothing else in the test session counts
towards its peak; what was delivered is checked through the topic's end offset rather than by reading two
million messages back.
"""

from __future__ import annotations

import pytest
from helpers.memory import measure_extraction

SMALL = 200_000
LARGE = 2_000_000
RSS_TOLERANCE = 1.15


@pytest.mark.timeout(1800)
def test_two_million_rows_stay_within_the_rss_of_two_hundred_thousand(postgres, kafka_bootstrap, record_property):
    small = measure_extraction(SMALL)
    large = measure_extraction(LARGE)

    assert (small["messages_sent"], small["delivered"]) == (SMALL, SMALL)
    assert (large["messages_sent"], large["delivered"]) == (LARGE, LARGE)
    assert large["peak_rss_kb"] <= small["peak_rss_kb"] * RSS_TOLERANCE, (small, large)
    for name, figures in (("small", small), ("large", large)):
        for figure, value in figures.items():
            record_property(f"{name}_{figure}", value)

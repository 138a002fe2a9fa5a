from __future__ import annotations

import pytest

from pstt_provider.delivery import AcknowledgementTimeline
from pstt_provider.latency import LatencyHistogram


def test_each_acknowledgement_is_timed_from_the_checkpoint_its_message_was_produced_by():
    histogram = LatencyHistogram()
    timeline = AcknowledgementTimeline(histogram)

    timeline.note(produced=256, acknowledged=0, now=0.000)
    timeline.note(produced=512, acknowledged=100, now=0.010)
    timeline.note(produced=512, acknowledged=512, now=0.030)

    assert histogram.total == 512
    assert histogram.max_ms == pytest.approx(30.0)
    # 100 acknowledged 10 ms after their checkpoint, 156 more after 30 ms, the second 256 after 20 ms.
    assert histogram.sum_ms == pytest.approx(100 * 10 + 156 * 30 + 256 * 20)


def test_nothing_is_recorded_twice_when_acknowledgements_do_not_move():
    histogram = LatencyHistogram()
    timeline = AcknowledgementTimeline(histogram)

    timeline.note(produced=10, acknowledged=0, now=0.0)
    timeline.note(produced=10, acknowledged=10, now=0.005)
    timeline.note(produced=10, acknowledged=10, now=0.050)

    assert histogram.total == 10
    assert histogram.max_ms == pytest.approx(5.0)

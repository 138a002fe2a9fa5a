"""Delivery summaries of made-up task tries, for tests of what is computed from stored tries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pstt_provider.latency import LatencyHistogram
from pstt_provider.summary import DeliverySummary

FINISHED = datetime(2026, 1, 20, tzinfo=UTC)


def tried(dag_id: str, topic: str, sent: int, failed: int, latencies_ms: list[float], **counts: int) -> DeliverySummary:
    """One try that sent ``sent`` and failed ``failed`` messages (failed when any did), ending at ``FINISHED``."""
    histogram = LatencyHistogram()
    for ms in latencies_ms:
        histogram.record(ms)
    return DeliverySummary(
        dag_id=dag_id,
        run_id="r",
        task_id="t",
        map_index=-1,
        try_number=1,
        topic=topic,
        delivery="at_least_once",
        state="success" if not failed else "failed",
        started_at=FINISHED - timedelta(seconds=1),
        finished_at=FINISHED,
        rows=sent + failed,
        messages_sent=sent,
        messages_failed=failed,
        bytes=sent * 10,
        latency=histogram,
        **counts,
    )

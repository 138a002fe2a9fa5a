"""
A 2,000,000-row extraction from PostgreSQL stays within the RSS of a 200,000-row one (+15 %).

Each extraction runs in a fresh process (this file, run as a script) so nothing else in the test session
counts towards its peak. The table is narrow to keep the test lean; what was delivered is checked through
the topic's end offset rather than by reading two million messages back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SMALL = 200_000
LARGE = 2_000_000
RSS_TOLERANCE = 1.15
SQL = "SELECT g AS id, 'n' || g AS note FROM generate_series(1, {rows}) g"


def extraction_in_a_fresh_process(rows: int, topic: str) -> dict:
    completed = subprocess.run(
        [sys.executable, __file__, str(rows), topic],
        capture_output=True,
        text=True,
        timeout=900,
        env=os.environ.copy(),
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def end_offset(bootstrap: str, topic: str) -> int:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "pstt-memory-count"})
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)[1]
    finally:
        consumer.close()


@pytest.mark.timeout(1800)
def test_two_million_rows_stay_within_the_rss_of_two_hundred_thousand(postgres, kafka_bootstrap, record_property):
    from conftest import new_topic

    small_topic, large_topic = new_topic(kafka_bootstrap), new_topic(kafka_bootstrap)

    small = extraction_in_a_fresh_process(SMALL, small_topic)
    large = extraction_in_a_fresh_process(LARGE, large_topic)

    assert (small["messages_sent"], end_offset(kafka_bootstrap, small_topic)) == (SMALL, SMALL)
    assert (large["messages_sent"], end_offset(kafka_bootstrap, large_topic)) == (LARGE, LARGE)
    assert large["peak_rss_kb"] <= small["peak_rss_kb"] * RSS_TOLERANCE, (small, large)
    for name, figures in (("small", small), ("large", large)):
        for figure, value in figures.items():
            record_property(f"{name}_{figure}", value)


def peak_rss_kb() -> int:
    """
    This process's own high-water mark (VmHWM). Not ``getrusage().ru_maxrss``: Linux carries that across
    fork and exec, so a child started from a large pytest process would report the parent's size.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def _extract(rows: int, topic: str) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from operator_context import RecordingTaskInstance, context_for

    from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator

    operator = SqlToKafkaOperator(
        task_id="memory",
        conn_id="pstt_test_pg",
        sql=SQL.format(rows=rows),
        topic=topic,
        message_key_field="id",
        include_metadata=False,
    )
    result = operator.execute(context_for(RecordingTaskInstance()))
    return {
        "rows": result["rows"],
        "messages_sent": result["messages_sent"],
        "peak_rss_kb": peak_rss_kb(),
        "duration_s": result["duration_s"],
    }


if __name__ == "__main__":
    print(json.dumps(_extract(int(sys.argv[1]), sys.argv[2])))

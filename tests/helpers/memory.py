"""
Peak memory of one extraction, measured in a fresh process so nothing else in the test session counts.

    PYTHONPATH=tests .venv/bin/python -m helpers.memory 200000    # prints {"rows": ..., "peak_rss_kb": ..., ...}

The rows come from PostgreSQL's generate_series through ``SqlToKafkaOperator`` (server-side cursor) into a
fresh topic on the local broker, whose end offset counts what was delivered before it is deleted.
``measure_extraction`` is the helper tests use.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from helpers import ROOT, child_env, services

BOOTSTRAP = os.environ.get("PSTT_MEMORY_BOOTSTRAP", services.BOOTSTRAP)
SQL = (
    "SELECT g AS id, (g * 1.0000000001)::numeric(38,10) AS amount, now() AS extracted, "
    "'spedizione n° ' || g AS note FROM generate_series(1, {rows}) g"
)


def measure_extraction(rows: int, batch_size: int = 5000, timeout_s: float = 900) -> dict:
    """Runs one extraction of ``rows`` rows in a subprocess and returns its figures (peak_rss_kb among them)."""
    completed = subprocess.run(
        [sys.executable, "-m", __name__, str(rows), str(batch_size)],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=child_env(os.environ),
        cwd=ROOT,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"memory measurement of {rows} rows failed:\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def peak_rss_kb() -> int:
    """
    This process's own high-water mark (VmHWM). Not ``getrusage().ru_maxrss``: Linux carries that across
    fork and exec, so a child started from a large pytest process would report the parent's size.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def _end_offset(topic: str) -> int:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "pstt-memory-count"})
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)[1]
    finally:
        consumer.close()


def _extract(rows: int, batch_size: int) -> dict:
    import time
    import uuid

    for name, value in services.airflow_connections(BOOTSTRAP).items():
        os.environ.setdefault(name, value)
    from confluent_kafka.admin import AdminClient, NewTopic

    from helpers.operator_context import RecordingTaskInstance, context_for
    from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator

    topic = f"pstt-memory-{uuid.uuid4().hex[:12]}"
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
    try:
        operator = SqlToKafkaOperator(
            task_id="memory",
            conn_id="pstt_test_pg",
            sql=SQL.format(rows=rows),
            topic=topic,
            message_key_field="id",
            batch_size=batch_size,
        )
        started = time.monotonic()
        result = operator.execute(context_for(RecordingTaskInstance()))
        duration = time.monotonic() - started
        delivered = _end_offset(topic)
    finally:
        admin.delete_topics([topic])[topic].result(timeout=30)
    return {
        "rows": result["rows"],
        "messages_sent": result["messages_sent"],
        "delivered": delivered,
        "peak_rss_kb": peak_rss_kb(),
        "duration_s": round(duration, 2),
        "rows_per_s": round(rows / duration),
        "latency_p99_ms": result["latency_ms"]["p99"],
    }


if __name__ == "__main__":
    figures = _extract(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 5000)
    print(json.dumps(figures))

"""
The seed's production topology, a replicated three-broker cluster, losing brokers in the middle of a run.

Each run publishes 500,000 numbered keys from PostgreSQL to a topic of three partitions, replicated 3 with
min.insync.replicas 2, through a producer with the seed's production settings (acks=all, idempotence, lz4). The
query is slowed and held at a late row until the fault is over (``helpers.broker_faults``), so the fault lands
while rows are being produced. Every case ends by reading the topic back with read_committed, key by key.

Figures (failover pause, failure bound) are printed for docs/reliability.md: ``pytest -s`` shows them.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from helpers.broker_faults import FaultAt, Gate, Watermarks, numbered_keys, numbered_table, slowed_query
from helpers.kafka import consume_all, new_topic
from helpers.kafka_cluster import NODES, KafkaCluster
from helpers.operator_context import RecordingTaskInstance, context_for, retry_of

from pstt_provider.exceptions import NotEnoughReplicasError
from pstt_provider.hooks.kafka import DEFAULT_METADATA_TIMEOUT_S
from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator

ROWS = 500_000
FAULT_AFTER = 100_000
"""Messages in the topic when the fault starts."""
GATE_ROW = 450_000
"""The query waits here until the fault is over, so the run cannot end before it."""
SLOW = {"pause_every": 1000, "pause_s": 0.01}
"""About 5 s of pauses over the run: rows keep flowing while a node is down or restarting."""
SHORT_MESSAGE_TIMEOUT_MS = 15_000
FLUSH_GRACE_S = 5.0
FAILURE_BOUND_S = {
    "at_least_once": SHORT_MESSAGE_TIMEOUT_MS / 1000 + FLUSH_GRACE_S,
    "exactly_once": SHORT_MESSAGE_TIMEOUT_MS / 1000 + DEFAULT_METADATA_TIMEOUT_S,
}
"""As docs/reliability.md states them: message.timeout.ms, then the final flush's grace (at_least_once) or the wait
for the transaction's abort, which the coordinator cannot write either (exactly_once, metadata_timeout_s)."""
LOADED_MACHINE_S = 20.0


@pytest.fixture(scope="module")
def source_table(postgres: dict) -> Iterator[str]:
    with numbered_table(postgres, "pstt_cluster", ROWS) as name:
        yield name


def cluster_connection(monkeypatch: pytest.MonkeyPatch, producer_config: dict) -> str:
    conn_id = f"pstt_cluster_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "kafka", "extra": producer_config}))
    return conn_id


def publisher(conn_id: str, topic: str, table: str, delivery: str, gate: Gate) -> SqlToKafkaOperator:
    return SqlToKafkaOperator(
        task_id="publish",
        conn_id="pstt_test_pg",
        sql=slowed_query(table, "id, code", gate, **SLOW),
        topic=topic,
        message_key_field="code",
        kafka_config_id=conn_id,
        delivery=delivery,
        include_metadata=False,
        flush_grace_s=FLUSH_GRACE_S,
        run_marker_topic=f"pstt-run-markers-{uuid.uuid4().hex[:6]}",
    )


def keys_read_back(cluster: KafkaCluster, topic: str) -> Counter[bytes]:
    records = consume_all(topic, bootstrap=cluster.bootstrap, expected=ROWS, timeout_s=120)
    return Counter(record.key for record in records)


@pytest.mark.parametrize("delivery", ["at_least_once", "exactly_once"])
def test_leader_crash_mid_run_fails_over_without_a_retry_and_delivers_each_key_once(
    cluster: KafkaCluster,
    cluster_producer_config: dict,
    source_table: str,
    postgres: dict,
    monkeypatch: pytest.MonkeyPatch,
    delivery: str,
) -> None:
    topic = new_topic(cluster.bootstrap, partitions=3)
    leader = cluster.leader(topic, 0)
    paused: dict[str, float] = {}

    def partition_end() -> int:
        with Watermarks(cluster.bootstrap) as watermarks:  # a new one per look: it finds the new leader
            return watermarks.high(topic, 0)

    def crash_leader() -> None:
        before = partition_end()
        killed_at = time.monotonic()
        cluster.kill(leader)
        while partition_end() <= before:
            assert time.monotonic() - killed_at < 120, "partition 0 took no write for 120 s after its leader died"
            time.sleep(0.1)
        paused["failover_s"] = time.monotonic() - killed_at

    gate = Gate(postgres, GATE_ROW)
    fault = FaultAt(cluster.bootstrap, topic, FAULT_AFTER, gate, crash_leader)
    operator = publisher(cluster_connection(monkeypatch, cluster_producer_config), topic, source_table, delivery, gate)
    fault.start()
    result = operator.execute(context_for(RecordingTaskInstance()))
    fault.result()

    keys = keys_read_back(cluster, topic)
    assert set(keys) == numbered_keys(ROWS)
    assert [key for key, seen in keys.items() if seen > 1] == []
    assert result["messages_sent"] == sum(keys.values()) == ROWS
    assert result["messages_failed"] == 0
    print(
        f"\n{delivery}: leader {leader} killed at {FAULT_AFTER} messages; partition 0 wrote again after "
        f"{paused['failover_s']:.1f} s"
    )


def test_rolling_restart_during_a_run_delivers_each_key_once(
    cluster: KafkaCluster,
    cluster_producer_config: dict,
    source_table: str,
    postgres: dict,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topic = new_topic(cluster.bootstrap, partitions=3)

    def rolling_restart() -> None:
        for node in NODES:
            cluster.stop_broker(node)
            cluster.start_broker(node)
            cluster.wait_in_sync()

    gate = Gate(postgres, GATE_ROW)
    fault = FaultAt(cluster.bootstrap, topic, FAULT_AFTER, gate, rolling_restart)
    operator = publisher(
        cluster_connection(monkeypatch, cluster_producer_config), topic, source_table, "exactly_once", gate
    )
    fault.start()
    started = time.monotonic()
    result = operator.execute(context_for(RecordingTaskInstance()))
    fault.result()

    keys = keys_read_back(cluster, topic)
    assert set(keys) == numbered_keys(ROWS)
    assert [key for key, seen in keys.items() if seen > 1] == []
    assert result["messages_sent"] == ROWS
    assert fault.started_at is not None
    assert fault.done_at is not None
    print(
        f"\nrolling restart of {len(NODES)} nodes took {fault.done_at - fault.started_at:.1f} s; "
        f"the run {time.monotonic() - started:.1f} s"
    )


@pytest.mark.parametrize("delivery", ["at_least_once", "exactly_once"])
def test_two_of_three_brokers_down_fails_naming_min_insync_replicas_and_the_retry_delivers(
    cluster: KafkaCluster,
    cluster_producer_config: dict,
    source_table: str,
    postgres: dict,
    monkeypatch: pytest.MonkeyPatch,
    delivery: str,
) -> None:
    topic = new_topic(cluster.bootstrap, partitions=3)
    down = (2, 3)
    config = {**cluster_producer_config, "message.timeout.ms": SHORT_MESSAGE_TIMEOUT_MS}
    conn_id = cluster_connection(monkeypatch, config)

    def two_down() -> None:
        for node in down:
            cluster.stop_broker(node)

    gate = Gate(postgres, FAULT_AFTER + 50_000)
    fault = FaultAt(cluster.bootstrap, topic, FAULT_AFTER, gate, two_down)
    ti = RecordingTaskInstance()
    fault.start()
    with pytest.raises(NotEnoughReplicasError) as failure:
        publisher(conn_id, topic, source_table, delivery, gate).execute(context_for(ti))
    failed_at = time.monotonic()
    fault.result()
    assert fault.done_at is not None
    assert failed_at - fault.done_at < FAILURE_BOUND_S[delivery] + LOADED_MACHINE_S
    message = str(failure.value)
    print(f"\n{message[:600]}")
    assert "min.insync.replicas=2" in message
    assert "brokers reachable: 1 at 127.0.0.1:" in message
    assert all(f"{node} at 127.0.0.1" not in message for node in down)

    cluster.heal()
    retried_at = time.monotonic()
    result = publisher(conn_id, topic, source_table, delivery, gate).execute(context_for(retry_of(ti)))
    keys = keys_read_back(cluster, topic)
    assert set(keys) == numbered_keys(ROWS)
    if delivery == "exactly_once":
        assert [key for key, seen in keys.items() if seen > 1] == []
        assert result["messages_sent"] == sum(keys.values()) == ROWS
    print(
        f"\n{delivery}: failed {failed_at - fault.done_at:.1f} s after the second broker stopped "
        f"(message.timeout.ms {SHORT_MESSAGE_TIMEOUT_MS}); the retry took {time.monotonic() - retried_at:.1f} s"
    )

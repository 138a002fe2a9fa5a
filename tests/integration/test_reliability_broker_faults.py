"""
The runbook's worst case, Kafka going away, against a broker of the test's own (never the shared one).

The source is a PostgreSQL table read through a slowed query held at one row until the broker is down
(``helpers.broker_faults``), so the broker is stopped (or restarted) while the task still has rows to produce.
Every case reads the topic back and checks keys, not exit codes: after a retry every key is present
(at_least_once), exactly once for a read_committed reader (exactly_once); an outage shorter than
``message.timeout.ms`` loses nothing and duplicates nothing (idempotent producer).
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from helpers.broker_faults import BrokerFault, Gate, numbered_keys, numbered_table, slowed_query
from helpers.kafka import PrivateBroker, consume_all, new_topic
from helpers.operator_context import RecordingTaskInstance, context_for, retry_of

from pstt_provider.exceptions import DeliveryError
from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator

ROWS = 200_000
MESSAGE_TIMEOUT_MS = 10_000
FLUSH_GRACE_S = 5.0
FAILURE_BOUND_S = 120.0
"""Generous: the operator documents message.timeout.ms + flush_grace_s once the broker is gone."""


@pytest.fixture(scope="module")
def source_table(postgres: dict) -> Iterator[str]:
    with numbered_table(postgres, "pstt_faults", ROWS, pad=40) as name:
        yield name


@pytest.fixture
def private_kafka_conn(private_broker: PrivateBroker, monkeypatch: pytest.MonkeyPatch) -> str:
    conn_id = f"pstt_private_{uuid.uuid4().hex[:8]}"
    extra = {"bootstrap.servers": private_broker.bootstrap}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "kafka", "extra": extra}))
    return conn_id


def publisher(conn_id: str, topic: str, table: str, delivery: str, gate: Gate, **kwargs) -> SqlToKafkaOperator:
    return SqlToKafkaOperator(
        task_id="publish",
        conn_id="pstt_test_pg",
        sql=slowed_query(table, "id, code, pad", gate, **kwargs.pop("pause", {})),
        topic=topic,
        message_key_field="code",
        kafka_config_id=conn_id,
        delivery=delivery,
        batch_size=2000,
        include_metadata=False,
        run_marker_topic=f"pstt-run-markers-{uuid.uuid4().hex[:6]}",
        **kwargs,
    )


def run_until_broker_stops(operator: SqlToKafkaOperator, fault: BrokerFault, ti: RecordingTaskInstance) -> float:
    """Executes the task while ``fault`` stops the broker; returns seconds from the stop to the failure."""
    fault.start()
    try:
        operator.execute(context_for(ti))
    except DeliveryError as failure:
        operator.failure = failure  # type: ignore[attr-defined]
    else:
        fault.result()  # the fault's own error, when it never stopped the broker
        pytest.fail(f"the run succeeded though the broker was to stop at {fault.after} messages")
    failed_at = time.monotonic()
    fault.result()
    assert fault.stopped_at is not None
    return failed_at - fault.stopped_at


@pytest.mark.parametrize("delivery", ["at_least_once", "exactly_once"])
def test_broker_stopped_mid_run_fails_within_the_bound_and_the_retry_delivers_every_row(
    delivery, private_broker, private_kafka_conn, source_table, postgres, record_property
):
    topic = new_topic(private_broker.bootstrap)
    producer_config = {"message.timeout.ms": MESSAGE_TIMEOUT_MS}
    gate = Gate(postgres, at_row=30_000)
    operator = publisher(
        private_kafka_conn,
        topic,
        source_table,
        delivery,
        gate,
        producer_config=producer_config,
        flush_grace_s=FLUSH_GRACE_S,
        metadata_timeout_s=30,
    )
    first = RecordingTaskInstance()

    fault = BrokerFault(private_broker, topic, 20_000, gate, restart_after_s=None)

    seconds_to_fail = run_until_broker_stops(operator, fault, first)

    assert seconds_to_fail < FAILURE_BOUND_S
    message = str(operator.failure)
    assert "not acknowledged" in message
    assert "timed out" in message.lower() or "unacknowledged" in message.lower()
    failed = first.xcoms["pstt_delivery"]
    assert failed["state"] == "failed"
    assert failed["messages_failed"] > 0
    assert failed["messages_sent"] < ROWS

    private_broker.start()
    if delivery == "exactly_once":
        assert consume_all(topic, bootstrap=private_broker.bootstrap) == [], "uncommitted rows visible"
    retry = retry_of(first)
    result = operator.execute(context_for(retry))

    assert (result["state"], result["messages_sent"], result["messages_failed"]) == ("success", ROWS, 0)
    records = consume_all(topic, bootstrap=private_broker.bootstrap, expected=ROWS, timeout_s=180)
    keys = Counter(r.key for r in records)
    assert set(keys) == numbered_keys(ROWS)
    if delivery == "exactly_once":
        assert len(records) == ROWS
        assert max(keys.values()) == 1
    record_property("broker_shutdown_s", round(fault.stopped_at - fault.stopping_at, 1))
    record_property("stop_to_failure_s", round(seconds_to_fail, 1))
    record_property("failed_attempt_messages_sent", failed["messages_sent"])
    record_property("failure_message", message[:300])


@pytest.mark.parametrize("delivery", ["at_least_once", "exactly_once"])
def test_broker_restarted_mid_run_loses_and_duplicates_nothing(
    delivery, private_broker, private_kafka_conn, source_table, postgres, record_property
):
    topic = new_topic(private_broker.bootstrap)
    gate = Gate(postgres, at_row=30_000)
    operator = publisher(
        private_kafka_conn,
        topic,
        source_table,
        delivery,
        gate,
        pause={"pause_every": 500, "pause_s": 0.1},
    )
    fault = BrokerFault(private_broker, topic, 20_000, gate, restart_after_s=0)
    fault.start()

    result = operator.execute(context_for(RecordingTaskInstance()))
    finished_at = time.monotonic()

    fault.result()
    assert fault.restarted_at is not None
    assert fault.restarted_at < finished_at, "the broker came back only after the run: no mid-run restart"
    assert (result["state"], result["messages_sent"], result["messages_failed"]) == ("success", ROWS, 0)
    records = consume_all(topic, bootstrap=private_broker.bootstrap, expected=ROWS, timeout_s=180)
    ids = [int(json.loads(r.value)["id"]) for r in records]
    assert len(records) == ROWS
    assert sorted(ids) == list(range(1, ROWS + 1))
    assert [r.offset for r in records] == list(range(ROWS))
    record_property("outage_s", round(fault.restarted_at - fault.stopping_at, 1))
    record_property("run_s", result["duration_s"])


def test_the_failure_bound_does_not_grow_with_the_rows_still_to_read(
    private_broker, private_kafka_conn, source_table, postgres, record_property
):
    """
    The documented bound is message.timeout.ms + flush_grace_s. A run that kept reading after the broker is gone
    would wait message.timeout.ms again for every local queue's worth of rows still to come: here 39 queues of
    5,000, over 3 minutes. The assertion leaves a loaded machine room (the figure is 5 s on a quiet one) and
    still tells the two apart.
    """
    topic = new_topic(private_broker.bootstrap)
    timeout_ms, grace_s, queue = 5_000, 5.0, 5_000
    gate = Gate(postgres, at_row=10_000)
    operator = publisher(
        private_kafka_conn,
        topic,
        source_table,
        "at_least_once",
        gate,
        producer_config={"message.timeout.ms": timeout_ms, "queue.buffering.max.messages": queue},
        flush_grace_s=grace_s,
    )
    fault = BrokerFault(private_broker, topic, 5_000, gate, restart_after_s=None)

    seconds_to_fail = run_until_broker_stops(operator, fault, RecordingTaskInstance())

    record_property("stop_to_failure_s", round(seconds_to_fail, 1))
    documented_bound_s = timeout_ms / 1000 + grace_s
    growing_s = (ROWS - 5_000) / queue * timeout_ms / 1000
    assert seconds_to_fail < documented_bound_s + 50 < growing_s, (
        f"failed {seconds_to_fail:.0f} s after the broker stopped; documented bound {documented_bound_s:.0f} s"
    )

"""
A broker whose ``transaction.max.timeout.ms`` is 60 s (a static setting, so a private broker of this module's own)
and an extraction that takes minutes: exactly_once caps ``transaction.timeout.ms`` at the broker's limit, and
with ``checkpoint_rows`` it commits each transaction once it has run half of it, so the run completes exactly
once however long it reads; without checkpoints the one transaction would outlive the limit, and the task stops
it itself, before the broker aborts it behind its back, saying what to do.

The source is ``ROWS`` numbered rows read in id order (through the primary key, so the rows stream) by a query
that sleeps ``PAUSE_S`` every ``PAUSE_EVERY`` rows: 150 s in all, 5 s a batch of ``BATCH_SIZE``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import psycopg
import pytest
from confluent_kafka.admin import AdminClient
from helpers.broker_faults import numbered_keys, numbered_table
from helpers.kafka import PrivateBroker, consume_all, free_port_triple, new_topic
from helpers.operator_context import RecordingTaskInstance, context_for

from pstt_provider.dialects.postgres import DIALECT
from pstt_provider.exceptions import TransactionTimeoutError
from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator
from pstt_provider.ordered_read import ReadPlan
from pstt_provider.query_file import parse_query_text
from pstt_provider.transactions import broker_transaction_max_ms

pytestmark = pytest.mark.slow  # a private broker of this module's own fixture (not one tests/conftest.py knows)

TRANSACTION_MAX_TIMEOUT_MS = 60_000
ROWS = 3_000
PAUSE_EVERY = 20
PAUSE_S = 1.0
"""150 s of sleeps in all: two and a half times the longest transaction the broker accepts."""
BATCH_SIZE = 100
"""5 s of sleeps a batch: the transaction's clock is checked after each one."""
FAILURE_BOUND_S = 90.0
"""Generous: the task stops at 90 % of the 60 s transaction, at the end of a batch; the extraction takes 150 s."""


@pytest.fixture(scope="module")
def limited_broker(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str) -> Iterator[PrivateBroker]:
    """A private broker accepting no transaction longer than TRANSACTION_MAX_TIMEOUT_MS; the module's tests share it."""
    broker = PrivateBroker(
        tmp_path_factory.mktemp("txn-limit"), free_port_triple(), transaction_max_timeout_ms=TRANSACTION_MAX_TIMEOUT_MS
    )
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def limited_kafka_conn(limited_broker: PrivateBroker) -> Iterator[str]:
    """The Airflow Kafka connection of the limited broker, as the operator reads it: an AIRFLOW_CONN_ variable."""
    conn_id = f"pstt_txn_limit_{uuid.uuid4().hex[:8]}"
    extra = {"bootstrap.servers": limited_broker.bootstrap}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "kafka", "extra": extra}))
        yield conn_id


@pytest.fixture(scope="module")
def slow_source(postgres: dict) -> Iterator[str]:
    """
    The numbered rows with a primary key on id, so the operator's ORDER BY id streams through the index: a Sort
    would sleep through the whole table before the first row, inside the first transaction.
    """
    with numbered_table(postgres, "pstt_txn_limit", ROWS) as name:
        with psycopg.connect(**postgres, autocommit=True) as conn:
            conn.execute(f"ALTER TABLE {name} ADD PRIMARY KEY (id)")
            conn.execute(f"ANALYZE {name}")
            ordered, _binds = ReadPlan(("id",)).apply(parse_query_text(slowed(name)), DIALECT, ("id", "code"))
            explain = f"EXPLAIN DECLARE probe CURSOR FOR {ordered.statement('pyformat').sql}"
            plan = [line for (line,) in conn.execute(explain, {}).fetchall()]  # with binds: %% reads as %
        assert not any("Sort" in line for line in plan), "the ordered read does not stream:\n" + "\n".join(plan)
        yield name


def slowed(table: str) -> str:
    """The table, sleeping PAUSE_S every PAUSE_EVERY rows as the cursor reaches them."""
    return f"SELECT id, code FROM {table} WHERE id % {PAUSE_EVERY} <> 0 OR pg_sleep({PAUSE_S})::text = ''"


def export(conn_id: str, table: str, topic: str, checkpoint_rows: int | None) -> SqlToKafkaOperator:
    """The minutes-long extraction, in id order, exactly once, with or without checkpoints."""
    return SqlToKafkaOperator(
        task_id="publish",
        conn_id="pstt_test_pg",
        sql=slowed(table),
        topic=topic,
        message_key_field="code",
        kafka_config_id=conn_id,
        delivery="exactly_once",
        batch_size=BATCH_SIZE,
        include_metadata=False,
        order_by=["id"],
        checkpoint_rows=checkpoint_rows,
    )


def new_run() -> RecordingTaskInstance:
    """A job of the test's own: positions are kept per dag_id/task_id in the broker's state topic."""
    return RecordingTaskInstance(dag_id=f"pstt_txn_limit_{uuid.uuid4().hex[:10]}")


def test_the_private_broker_has_the_lowered_transaction_limit(limited_broker):
    admin = AdminClient({"bootstrap.servers": limited_broker.bootstrap})
    assert broker_transaction_max_ms(admin, 30) == TRANSACTION_MAX_TIMEOUT_MS


def test_with_checkpoint_rows_a_run_longer_than_the_brokers_transaction_limit_completes_exactly_once(
    limited_broker, limited_kafka_conn, slow_source, record_property
):
    topic = new_topic(limited_broker.bootstrap)
    # More rows than the table holds: every checkpoint is one the transaction's clock called for.
    operator = export(limited_kafka_conn, slow_source, topic, checkpoint_rows=10 * ROWS)

    started = time.monotonic()
    result = operator.execute(context_for(new_run()))
    took_s = time.monotonic() - started
    record_property("extraction_s", round(took_s, 1))
    record_property("checkpoints", result["checkpoints"])

    assert took_s > TRANSACTION_MAX_TIMEOUT_MS / 1000, "the extraction did not outlive one transaction"
    assert (result["state"], result["rows"], result["messages_sent"]) == ("success", ROWS, ROWS)
    assert result["checkpoints"] >= 2
    assert result["position_after"] == {"id": ROWS}
    delivered = consume_all(topic, bootstrap=limited_broker.bootstrap, expected=ROWS, timeout_s=120)
    counts = Counter(record.key for record in delivered)
    assert set(counts) == numbered_keys(ROWS)
    assert max(counts.values()) == 1


def test_without_checkpoint_rows_the_run_stops_before_the_brokers_limit_and_publishes_nothing(
    limited_broker, limited_kafka_conn, slow_source, record_property
):
    topic = new_topic(limited_broker.bootstrap)
    operator = export(limited_kafka_conn, slow_source, topic, checkpoint_rows=None)
    run = new_run()

    started = time.monotonic()
    with pytest.raises(TransactionTimeoutError) as failure:
        operator.execute(context_for(run))
    failed_after_s = time.monotonic() - started
    record_property("seconds_to_fail", round(failed_after_s, 1))

    assert failed_after_s < FAILURE_BOUND_S
    message = str(failure.value)
    assert f"({TRANSACTION_MAX_TIMEOUT_MS // 1000} s, transaction.timeout.ms)" in message
    assert "Set checkpoint_rows" in message
    summary = run.xcoms["pstt_delivery"]
    assert (summary["state"], summary["messages_sent"]) == ("failed", 0)
    assert 0 < summary["messages_aborted"] < ROWS
    assert consume_all(topic, bootstrap=limited_broker.bootstrap) == [], "rows of the aborted transaction visible"

from __future__ import annotations

import json
from collections import Counter

import pytest
from confluent_kafka import Producer
from helpers.operator_context import RecordingTaskInstance, context_for, retry_of

from pstt_provider.exceptions import SourceQueryError, TransactionTimeoutError
from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator
from pstt_provider.transactions import transactional_id

ROWS = 1000


@pytest.fixture
def fuse_table(new_pg_table) -> str:
    """Rows 1..1000; row 550 divides by zero until the test repairs it, failing the query mid-stream."""
    return new_pg_table(
        "pstt_eos",
        f"AS SELECT g AS id, 'row ' || g AS payload, "
        f"CASE WHEN g = 550 THEN 0 ELSE 1 END AS divisor FROM generate_series(1, {ROWS}) g",
    )


def exactly_once(table: str, topic: str, **kwargs) -> SqlToKafkaOperator:
    return SqlToKafkaOperator(
        task_id="publish",
        conn_id="pstt_test_pg",
        sql=f"SELECT id, payload, 1 / divisor AS one FROM {table}",
        topic=topic,
        message_key_field="id",
        batch_size=100,
        delivery="exactly_once",
        **kwargs,
    )


def keys(records) -> Counter:
    return Counter(int(r.key) for r in records)


def test_failed_then_retried_run_leaves_each_key_exactly_once_and_a_rerun_adds_nothing(
    fuse_table, pg_conn, topic, consume
):
    first = RecordingTaskInstance()
    with pytest.raises(SourceQueryError, match="division by zero"):
        exactly_once(fuse_table, topic).execute(context_for(first))
    assert first.xcoms["pstt_delivery"]["rows"] == 500
    assert consume(topic) == []

    pg_conn.execute(f"UPDATE {fuse_table} SET divisor = 1")
    retry = retry_of(first)
    result = exactly_once(fuse_table, topic).execute(context_for(retry))

    assert keys(consume(topic, expected=ROWS)) == Counter(range(1, ROWS + 1))
    assert (result["rows"], result["messages_sent"], result["try_number"]) == (ROWS, ROWS, 2)

    rerun = exactly_once(fuse_table, topic).execute(context_for(retry_of(retry)))

    assert rerun["messages_sent"] == 0
    assert rerun["already_published"]["rows"] == ROWS
    assert keys(consume(topic, expected=ROWS)) == Counter(range(1, ROWS + 1))


def test_a_retry_fences_an_attempt_that_died_with_its_transaction_open(fuse_table, pg_conn, topic, consume):
    pg_conn.execute(f"UPDATE {fuse_table} SET divisor = 1")
    crashed = RecordingTaskInstance()
    zombie = Producer(
        {
            "bootstrap.servers": "127.0.0.1:9092",
            "transactional.id": transactional_id(crashed.dag_id, crashed.task_id, crashed.run_id),
        }
    )
    zombie.init_transactions(30)
    zombie.begin_transaction()
    for n in range(1, 301):
        zombie.produce(topic, key=str(n), value=json.dumps({"data": {"id": n, "zombie": True}}))
    assert zombie.flush(30) == 0

    exactly_once(fuse_table, topic).execute(context_for(retry_of(crashed)))

    records = consume(topic, expected=ROWS)
    assert keys(records) == Counter(range(1, ROWS + 1))
    assert not any(b"zombie" in r.value for r in records)


def test_force_publishes_a_committed_run_again(fuse_table, pg_conn, topic, consume):
    pg_conn.execute(f"UPDATE {fuse_table} SET divisor = 1")
    ti = RecordingTaskInstance()
    exactly_once(fuse_table, topic).execute(context_for(ti))

    result = exactly_once(fuse_table, topic, force=True).execute(context_for(retry_of(ti)))

    assert result["messages_sent"] == ROWS
    assert keys(consume(topic, expected=2 * ROWS)) == Counter({n: 2 for n in range(1, ROWS + 1)})


def test_an_extraction_that_would_outlive_the_transaction_fails_saying_what_to_do(topic, consume):
    slow = SqlToKafkaOperator(
        task_id="publish",
        conn_id="pstt_test_pg",
        sql="SELECT g AS id, pg_sleep(0.05) AS pause FROM generate_series(1, 200) g",
        topic=topic,
        message_key_field="id",
        batch_size=10,
        delivery="exactly_once",
        producer_config={"transaction.timeout.ms": 2000},
    )
    ti = RecordingTaskInstance()

    with pytest.raises(TransactionTimeoutError, match=r"Set checkpoint_rows .* raise transaction\.timeout\.ms"):
        slow.execute(context_for(ti))

    assert consume(topic) == []
    assert ti.xcoms["pstt_delivery"]["state"] == "failed"

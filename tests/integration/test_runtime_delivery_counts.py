"""
After a failure mid-batch, the run's result and its error count exactly what a consumer reads back.

Rows before the failing one are produced and delivered by the failure flush; the result's ``rows`` and
``messages_sent`` and the error's "N of M message(s) ... (K acknowledged)" are taken after that flush, so all of
them equal the number of messages in the topic.
"""

from __future__ import annotations

import base64
import os
import re
import uuid

import pytest
from helpers.kafka import new_topic
from helpers.operator_context import RecordingTaskInstance, context_for

from pstt_provider.exceptions import DeliveryError, MessageKeyError, MessageTooLargeError
from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator

ROWS = 10
BIG_ROW = 3
INCOMPRESSIBLE = base64.b64encode(os.urandom(4000)).decode()
"""About 5.3 kB that no codec shrinks below the 2000- and 3000-byte topic limits used below."""
ACCOUNT = re.compile(r"(\d+) of (\d+) message\(s\) to '[^']+' were not acknowledged \((\d+) acknowledged\)")


@pytest.fixture
def sqlite_conn(new_sqlite_source) -> str:
    """Rows 1..ROWS keyed ``id``, one batch; row BIG_ROW's note is larger than the topics below accept."""
    rows = [(n, INCOMPRESSIBLE if n == BIG_ROW else "ok") for n in range(1, ROWS + 1)]
    return new_sqlite_source("shipments (id INTEGER, note TEXT)", rows).conn_id


def operator(conn_id: str, topic: str, **kwargs) -> SqlToKafkaOperator:
    return SqlToKafkaOperator(
        task_id="publish",
        conn_id=conn_id,
        sql="SELECT id, note FROM shipments ORDER BY id",
        topic=topic,
        message_key_field="id",
        **kwargs,
    )


def stated_account(error: BaseException) -> tuple[int, int, int]:
    """(not acknowledged, produced, acknowledged) as the error text states them."""
    found = ACCOUNT.search(str(error))
    assert found is not None, str(error)
    failed, produced, acked = map(int, found.groups())
    return failed, produced, acked


def test_a_row_too_large_mid_batch_leaves_counts_that_match_what_the_topic_holds(sqlite_conn, kafka_bootstrap, consume):
    topic = new_topic(kafka_bootstrap, config={"max.message.bytes": "2000"})
    ti = RecordingTaskInstance()

    with pytest.raises(MessageTooLargeError, match=rf"key '{BIG_ROW}' is \d+ bytes") as failure:
        operator(sqlite_conn, topic).execute(context_for(ti))

    delivered = consume(topic, expected=BIG_ROW - 1)
    assert [r.key for r in delivered] == [b"1", b"2"]
    result = ti.xcoms["pstt_delivery"]
    assert (result["state"], result["rows"], result["messages_sent"], result["messages_failed"]) == ("failed", 2, 2, 0)
    assert stated_account(failure.value) == (0, len(delivered), len(delivered))
    assert result["errors"][0] == f"MessageTooLargeError: {failure.value}"


def test_a_refused_dead_letter_mid_batch_is_counted_and_the_error_states_the_final_account(
    sqlite_conn, kafka_bootstrap, consume
):
    topic = new_topic(kafka_bootstrap, config={"max.message.bytes": "2000"})
    dead_letters = new_topic(kafka_bootstrap, config={"max.message.bytes": "3000"})
    ti = RecordingTaskInstance()

    with pytest.raises(DeliveryError, match=r"nor 1 dead letter\(s\)") as failure:
        operator(sqlite_conn, topic, dead_letter_topic=dead_letters).execute(context_for(ti))

    delivered = consume(topic, expected=ROWS - 1)
    assert sorted(int(r.key) for r in delivered) == [n for n in range(1, ROWS + 1) if n != BIG_ROW]
    assert consume(dead_letters) == []
    result = ti.xcoms["pstt_delivery"]
    assert (result["rows"], result["messages_sent"], result["messages_failed"], result["messages_dead_lettered"]) == (
        ROWS,
        len(delivered),
        1,
        0,
    )
    assert stated_account(failure.value) == (0, len(delivered), len(delivered))


def test_postgres_row_too_large_after_some_batches_counts_every_delivered_row(pg_conn, kafka_bootstrap, consume):
    table = f"pstt_counts_{uuid.uuid4().hex[:10]}"
    pg_conn.execute(
        f"CREATE TABLE {table} AS SELECT g AS id, CASE WHEN g = 550 THEN repeat('y', 50000) ELSE 'ok' END AS note "
        "FROM generate_series(1, 1000) g"
    )
    topic = new_topic(kafka_bootstrap, config={"max.message.bytes": "10000"})
    ti = RecordingTaskInstance()
    try:
        with pytest.raises(MessageTooLargeError, match=r"key '550'") as failure:
            SqlToKafkaOperator(
                task_id="publish",
                conn_id="pstt_test_pg",
                sql=f"SELECT id, note FROM {table} ORDER BY id",
                topic=topic,
                message_key_field="id",
                batch_size=100,
                producer_config={"compression.type": "none"},
            ).execute(context_for(ti))
    finally:
        pg_conn.execute(f"DROP TABLE {table}")

    delivered = consume(topic, expected=549)
    assert sorted(int(r.key) for r in delivered) == list(range(1, 550))
    result = ti.xcoms["pstt_delivery"]
    assert result["rows"] == result["messages_sent"] == len(delivered) == 549
    assert stated_account(failure.value) == (0, 549, 549)


def test_a_null_key_mid_batch_counts_only_the_rows_sent_and_names_both_settings(kafka_bootstrap, consume):
    topic = new_topic(kafka_bootstrap)
    ti = RecordingTaskInstance()

    with pytest.raises(MessageKeyError, match="row 2500 has a NULL code") as failure:
        SqlToKafkaOperator(
            task_id="publish",
            conn_id="pstt_test_pg",
            sql="SELECT NULLIF(g, 2500) AS code FROM generate_series(1, 5000) g",
            topic=topic,
            message_key_field="code",
            batch_size=1000,
        ).execute(context_for(ti))

    assert "set null_key (job spec: kafka_config.null_key) to 'null'" in str(failure.value)
    delivered = consume(topic, expected=2000)
    result = ti.xcoms["pstt_delivery"]
    assert result["rows"] == result["messages_sent"] == len(delivered) == 2000

"""
The dead-letter producer is fitted to the dead-letter topic's own max.message.bytes, above 1,000,000 bytes too.

A dead-letter topic exists for rows the main topic cannot take, so a row of 1.5 MB must fit there when that
topic allows 3 MB, although librdkafka's default message.max.bytes is 1,000,000. A limit set explicitly stays.
"""

from __future__ import annotations

import base64
import json
import os

import pytest
from helpers.kafka import new_topic
from helpers.operator_context import RecordingTaskInstance, context_for

from pstt_provider.delivery import DEAD_LETTER_ERROR_HEADER, DEAD_LETTER_SIZE_HEADER, DEAD_LETTER_TOPIC_HEADER
from pstt_provider.exceptions import DeliveryError
from pstt_provider.hooks.kafka import PsttKafkaHook
from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator

MAIN_LIMIT = "100000"
DEAD_LETTER_LIMIT = "3000000"
HUGE_NOTE = base64.b64encode(os.urandom(1_100_000)).decode()
"""About 1.47 MB of base64 that no codec shrinks under 1,000,000 bytes."""
HUGE_ROW = 4


@pytest.fixture
def sqlite_conn(new_sqlite_source) -> str:
    """Rows 1..6 keyed ``id``; row HUGE_ROW carries HUGE_NOTE."""
    rows = [(n, HUGE_NOTE if n == HUGE_ROW else "ok") for n in range(1, 7)]
    return new_sqlite_source("shipments (id INTEGER, note TEXT)", rows).conn_id


def operator(conn_id: str, topic: str, dead_letters: str, **kwargs) -> SqlToKafkaOperator:
    return SqlToKafkaOperator(
        task_id="publish",
        conn_id=conn_id,
        sql="SELECT id, note FROM shipments ORDER BY id",
        topic=topic,
        message_key_field="id",
        dead_letter_topic=dead_letters,
        **kwargs,
    )


def test_a_row_over_a_megabyte_lands_in_a_dead_letter_topic_that_allows_it(sqlite_conn, kafka_bootstrap, consume):
    topic = new_topic(kafka_bootstrap, config={"max.message.bytes": MAIN_LIMIT})
    dead_letters = new_topic(kafka_bootstrap, config={"max.message.bytes": DEAD_LETTER_LIMIT})

    result = operator(sqlite_conn, topic, dead_letters).execute(context_for(RecordingTaskInstance()))

    diverted = consume(dead_letters, expected=1)
    assert [r.key for r in diverted] == [str(HUGE_ROW).encode()]
    assert len(diverted[0].value) > 1_000_000
    assert json.loads(diverted[0].value)["data"] == {"id": HUGE_ROW, "note": HUGE_NOTE}
    headers = dict(diverted[0].headers)
    assert b"too large" in headers[DEAD_LETTER_ERROR_HEADER].lower()
    assert headers[DEAD_LETTER_TOPIC_HEADER] == topic.encode()
    assert int(headers[DEAD_LETTER_SIZE_HEADER]) == len(diverted[0].value)
    delivered = consume(topic, expected=5)
    assert sorted(int(r.key) for r in delivered) == [1, 2, 3, 5, 6]
    assert (result["state"], result["rows"], result["messages_sent"]) == ("success", 6, 5)
    assert (result["messages_dead_lettered"], result["messages_failed"]) == (1, 0)


def test_an_explicit_message_max_bytes_is_kept_for_the_dead_letter_producer_too(sqlite_conn, kafka_bootstrap, consume):
    topic = new_topic(kafka_bootstrap, config={"max.message.bytes": MAIN_LIMIT})
    dead_letters = new_topic(kafka_bootstrap, config={"max.message.bytes": DEAD_LETTER_LIMIT})
    ti = RecordingTaskInstance()

    with pytest.raises(DeliveryError, match=r"nor 1 dead letter\(s\).*dead-letter row with key '4'"):
        operator(sqlite_conn, topic, dead_letters, producer_config={"message.max.bytes": 1_000_000}).execute(
            context_for(ti)
        )

    assert consume(dead_letters) == []
    assert ti.xcoms["pstt_delivery"]["messages_dead_lettered"] == 0


def test_the_hook_raises_the_limit_only_when_asked_and_never_over_an_explicit_one(kafka_bootstrap):
    hook = PsttKafkaHook("kafka_default")
    large = new_topic(kafka_bootstrap, config={"max.message.bytes": DEAD_LETTER_LIMIT})
    small = new_topic(kafka_bootstrap, config={"max.message.bytes": "50000"})
    topics = hook.topics()

    assert topics.fit(large, {}, 30, allow_larger=True) == {"message.max.bytes": 2_999_488}
    assert topics.fit(large, {}, 30) == {}
    assert topics.fit(small, {}, 30, allow_larger=True) == {"message.max.bytes": 49_488, "batch.size": 49_488}
    assert topics.fit(large, {"message.max.bytes": 500_000}, 30, allow_larger=True) == {"message.max.bytes": 500_000}

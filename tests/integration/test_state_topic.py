"""
The state topic read as a run reads it: the latest committed record of a key, never an older one, even while
another job's transaction is open in the same partition.
"""

from __future__ import annotations

import threading
import uuid

import pytest
from confluent_kafka import Producer

from pstt_provider.exceptions import JobStateError
from pstt_provider.hooks.kafka import PsttKafkaHook
from pstt_provider.job_state import STATE_PARTITIONS, JobState, StateTopic
from pstt_provider.keyed_topic import KeyedTopic


@pytest.fixture
def state(kafka_bootstrap: str) -> StateTopic:
    return StateTopic(PsttKafkaHook("kafka_default"), f"test-state-{uuid.uuid4().hex[:8]}", timeout_s=5)


def neighbour(key: str) -> str:
    """Another job's key in the same partition of the state topic."""
    wanted = KeyedTopic.partition(key, STATE_PARTITIONS)
    return next(
        other for n in range(1000) if KeyedTopic.partition(other := f"job/other-{n}", STATE_PARTITIONS) == wanted
    )


def committed(state: StateTopic, kafka_bootstrap: str, key: str, record: JobState) -> None:
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "transactional.id": f"test-{uuid.uuid4().hex}"})
    producer.init_transactions(10)
    producer.begin_transaction()
    state.produce(producer, key, record)
    producer.commit_transaction(10)


def open_transaction(state: StateTopic, kafka_bootstrap: str, key: str) -> Producer:
    """Another job's transaction left open with a record in the partition, as a job killed before its commit."""
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "transactional.id": f"test-{uuid.uuid4().hex}"})
    producer.init_transactions(10)
    producer.begin_transaction()
    state.produce(producer, key, JobState(columns=("id",), position=(999,)))
    assert producer.flush(10) == 0
    return producer


def test_a_record_committed_behind_an_open_transaction_is_read_once_that_transaction_ends(state, kafka_bootstrap):
    committed(state, kafka_bootstrap, "job/a", JobState(columns=("id",), position=(1,)))
    other = open_transaction(state, kafka_bootstrap, neighbour("job/a"))
    committed(state, kafka_bootstrap, "job/a", JobState(columns=("id",), position=(2,)))
    threading.Timer(1.5, other.abort_transaction).start()

    found = state.read("job/a")

    assert found is not None
    assert found.position == (2,)  # not (1,): the read waited for the other transaction instead of stopping at it


def test_a_read_blocked_by_a_transaction_that_stays_open_fails_instead_of_returning_an_older_record(
    state, kafka_bootstrap
):
    committed(state, kafka_bootstrap, "job/a", JobState(columns=("id",), position=(1,)))
    other = open_transaction(state, kafka_bootstrap, neighbour("job/a"))
    committed(state, kafka_bootstrap, "job/a", JobState(columns=("id",), position=(2,)))
    try:
        with pytest.raises(JobStateError, match="is held by a Kafka transaction still open after 5 s"):
            state.read("job/a")
    finally:
        other.abort_transaction(10)


def test_reading_an_absent_state_topic_finds_nothing_and_creates_nothing(state):
    assert state.read("job/a") is None
    assert state.topic.partition_count(state.hook.get_admin_client(), 5) == 0


def test_a_record_that_is_not_json_is_named_and_a_later_tombstone_clears_it(state, kafka_bootstrap):
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    state.write(producer, "job/x", JobState(columns=("id",), position=(1,)), 10)  # creates the topic
    producer.produce(
        state.name, key="job/x", value=b"not json", partition=KeyedTopic.partition("job/x", STATE_PARTITIONS)
    )
    producer.flush(10)
    with pytest.raises(JobStateError, match=r"record of .job/x. in .* cannot be read \(not JSON"):
        state.read("job/x")
    state.write(producer, "job/x", None, 10)
    assert state.read("job/x") is None

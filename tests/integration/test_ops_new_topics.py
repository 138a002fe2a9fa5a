"""
Day one in operations: the first run on a topic that does not exist yet.

Against the shared broker (``auto.create.topics.enable=true``, like most development clusters) and a private one
started with auto-creation off (like most production clusters). Every case reads the topic back, or its settings
through the Admin API.
"""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
from airflow.sdk.exceptions import AirflowFailException
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType
from helpers.kafka import consume_all
from helpers.operator_context import RecordingTaskInstance, context_for
from helpers.services import BOOTSTRAP

from pstt_provider.exceptions import TopicNotFoundError
from pstt_provider.hooks.kafka import PsttKafkaHook
from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator
from pstt_provider.transactions import MARKER_PARTITIONS, marker_topic_of

ROWS = 300
TOPIC_SETTINGS = {"partitions": 3, "replication_factor": None, "config": {"retention.ms": 3_600_000}}


def fresh_topic_name() -> str:
    return f"test-ops-new-{uuid.uuid4().hex[:12]}"


def publisher(topic: str, **kwargs) -> SqlToKafkaOperator:
    return SqlToKafkaOperator(
        task_id="publish",
        conn_id="pstt_test_pg",
        sql=f"SELECT g AS id, 'row ' || g AS label FROM generate_series(1, {ROWS}) g",
        topic=topic,
        message_key_field="id",
        **kwargs,
    )


def topic_exists(bootstrap: str, topic: str) -> bool:
    """Without asking for the topic by name: a metadata request for it would make the broker create it."""
    return topic in AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics


def partitions_and_retention(bootstrap: str, topic: str) -> tuple[int, str]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    partitions = len(admin.list_topics(timeout=10).topics[topic].partitions)
    resource = ConfigResource(ResourceType.TOPIC, topic)
    configs = admin.describe_configs([resource])[resource].result(timeout=10)
    return partitions, configs["retention.ms"].value


def kafka_connection(monkeypatch: pytest.MonkeyPatch, bootstrap: str) -> str:
    conn_id = f"pstt_ops_{uuid.uuid4().hex[:8]}"
    extra = {"bootstrap.servers": bootstrap}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "kafka", "extra": extra}))
    return conn_id


def test_ten_first_runs_on_ten_new_auto_created_topics_each_succeed_on_the_first_try(
    postgres, kafka_bootstrap, record_property
):
    topics = [fresh_topic_name() for _ in range(10)]
    assert not any(topic_exists(kafka_bootstrap, topic) for topic in topics)
    durations = []

    for topic in topics:
        started = time.monotonic()
        result = publisher(topic).execute(context_for(RecordingTaskInstance()))
        durations.append(time.monotonic() - started)
        assert (result["state"], result["messages_sent"], result["messages_failed"]) == ("success", ROWS, 0)

    for topic in topics:
        records = consume_all(topic, expected=ROWS)
        assert sorted(int(r.key) for r in records) == list(range(1, ROWS + 1))
    record_property("slowest_first_run_s", round(max(durations), 2))


def test_topic_config_creates_the_topic_and_the_dead_letter_topic_with_the_asked_settings(postgres, kafka_bootstrap):
    topic, dead_letters = fresh_topic_name(), fresh_topic_name()

    result = publisher(topic, topic_config=TOPIC_SETTINGS, dead_letter_topic=dead_letters).execute(
        context_for(RecordingTaskInstance())
    )

    assert (result["state"], result["messages_sent"]) == ("success", ROWS)
    assert partitions_and_retention(kafka_bootstrap, topic) == (3, "3600000")
    assert partitions_and_retention(kafka_bootstrap, dead_letters) == (3, "3600000")
    records = consume_all(topic, expected=ROWS)
    assert sorted(int(r.key) for r in records) == list(range(1, ROWS + 1))
    assert {r.partition for r in records} == {0, 1, 2}


def test_concurrent_creators_of_the_same_topic_all_succeed(kafka_bootstrap):
    topic = fresh_topic_name()
    failures: list[BaseException] = []

    def check() -> None:
        hook = PsttKafkaHook("kafka_default")
        try:
            hook.topics().ensure_writable(topic, 30, topic_config=TOPIC_SETTINGS)
        except BaseException as err:
            failures.append(err)

    threads = [threading.Thread(target=check) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert failures == []
    assert partitions_and_retention(kafka_bootstrap, topic) == (3, "3600000")


def test_without_auto_creation_or_topic_config_the_run_fails_at_once_naming_both_remedies(
    postgres, no_auto_create_broker, monkeypatch, record_property
):
    conn_id = kafka_connection(monkeypatch, no_auto_create_broker.bootstrap)
    topic = fresh_topic_name()
    ti = RecordingTaskInstance()
    started = time.monotonic()

    with pytest.raises(TopicNotFoundError) as failure:
        publisher(topic, kafka_config_id=conn_id).execute(context_for(ti))
    elapsed = time.monotonic() - started

    assert isinstance(failure.value, AirflowFailException)
    message = str(failure.value)
    assert f"topic {topic!r} does not exist" in message
    assert "create the topic" in message
    assert "kafka_config.topic_config" in message
    assert "topic_config=" in message
    assert elapsed < 10, f"took {elapsed:.1f} s: the broker's configuration says at once that nothing will create it"
    assert ti.xcoms["pstt_delivery"]["state"] == "failed"
    assert not topic_exists(no_auto_create_broker.bootstrap, topic)
    record_property("seconds_to_fail", round(elapsed, 2))


def test_without_auto_creation_topic_config_creates_the_topic_and_the_run_delivers(
    postgres, no_auto_create_broker, monkeypatch
):
    conn_id = kafka_connection(monkeypatch, no_auto_create_broker.bootstrap)
    topic = fresh_topic_name()

    result = publisher(topic, kafka_config_id=conn_id, topic_config=TOPIC_SETTINGS).execute(
        context_for(RecordingTaskInstance())
    )

    assert (result["state"], result["messages_sent"]) == ("success", ROWS)
    assert partitions_and_retention(no_auto_create_broker.bootstrap, topic) == (3, "3600000")
    records = consume_all(topic, bootstrap=no_auto_create_broker.bootstrap, expected=ROWS)
    assert sorted(int(r.key) for r in records) == list(range(1, ROWS + 1))


def test_the_hook_reads_whether_the_broker_auto_creates_topics(kafka_bootstrap, no_auto_create_broker, monkeypatch):
    """The premise of the tests above: the shared broker auto-creates, the private one does not."""
    shared = PsttKafkaHook("kafka_default")
    private = PsttKafkaHook(kafka_connection(monkeypatch, no_auto_create_broker.bootstrap))

    assert kafka_bootstrap == BOOTSTRAP
    assert shared.topics().broker_auto_creates(10) is True
    assert private.topics().broker_auto_creates(10) is False


def test_when_the_broker_configuration_cannot_be_read_a_topic_that_never_appears_fails_at_the_deadline(
    no_auto_create_broker, monkeypatch
):
    """No DescribeConfigs permission (managed clusters): waiting is the only way to tell, bounded by the timeout."""
    hook = PsttKafkaHook(kafka_connection(monkeypatch, no_auto_create_broker.bootstrap))
    topics = hook.topics()
    monkeypatch.setattr(topics, "broker_auto_creates", lambda timeout_s: None)
    started = time.monotonic()

    with pytest.raises(TopicNotFoundError, match=r"did not appear within 3 s.*kafka_config\.topic_config"):
        topics.ensure_writable(fresh_topic_name(), 3)

    assert 2.5 < time.monotonic() - started < 8


def test_the_exactly_once_marker_topic_is_created_compacted_with_its_partitions_on_an_auto_creating_broker(
    kafka_bootstrap,
):
    """Asked for by name first, the auto-creating broker used to make it with one partition and delete policy."""
    topic = f"pstt-run-markers-ops-{uuid.uuid4().hex[:8]}"

    assert marker_topic_of(topic).ensure(AdminClient({"bootstrap.servers": kafka_bootstrap}), 30) == MARKER_PARTITIONS

    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    resource = ConfigResource(ResourceType.TOPIC, topic)
    configs = admin.describe_configs([resource])[resource].result(timeout=10)
    assert len(admin.list_topics(timeout=10).topics[topic].partitions) == MARKER_PARTITIONS
    assert configs["cleanup.policy"].value == "compact,delete"

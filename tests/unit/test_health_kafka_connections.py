"""
Which connections the health check probes, and how an unreachable one reads: ``pstt_kafka`` is a Kafka
connection like ``kafka``, and librdkafka's own log lines never reach stderr (no broker needed: a closed
local port refuses at once).
"""

from __future__ import annotations

import json
import os
import socket

import pytest

from pstt_provider.hooks.librdkafka_log import quiet_logger
from pstt_provider.metrics import kafka_health


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> int:
    """Connections of several types in AIRFLOW_CONN_* variables, the Kafka ones pointing at a closed port."""
    for name in [name for name in os.environ if name.startswith("AIRFLOW_CONN_")]:
        monkeypatch.delenv(name)
    port = closed_port()
    servers = f"127.0.0.1:{port}"
    monkeypatch.setenv(
        "AIRFLOW_CONN_OFFICIAL", json.dumps({"conn_type": "kafka", "extra": {"bootstrap.servers": servers}})
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_OWN", json.dumps({"conn_type": "pstt_kafka", "extra": {"bootstrap.servers": servers}})
    )
    monkeypatch.setenv("AIRFLOW_CONN_OWN_URI", f"pstt-kafka://?bootstrap.servers=127.0.0.1%3A{port}")
    monkeypatch.setenv("AIRFLOW_CONN_SOURCE", json.dumps({"conn_type": "postgres", "host": "127.0.0.1"}))
    monkeypatch.setenv("AIRFLOW_CONN_SOURCE_URI", "sqlite:///tmp/x.db")
    return port


def test_both_kafka_types_are_found_and_nothing_else(connections):
    assert kafka_health.env_kafka_connection_ids() == {"official", "own", "own_uri"}


def test_a_pstt_kafka_connection_gives_its_librdkafka_config_and_another_type_is_refused(connections):
    assert kafka_health.kafka_hook("own").explicit_config()["bootstrap.servers"] == f"127.0.0.1:{connections}"
    assert kafka_health.kafka_hook("own_uri").explicit_config()["bootstrap.servers"] == f"127.0.0.1:{connections}"
    with pytest.raises(kafka_health.NotAKafkaConnectionError, match="type 'postgres', not 'kafka' or 'pstt_kafka'"):
        kafka_health.kafka_hook("source")
    with pytest.raises(kafka_health.KafkaConnectionNotFoundError):
        kafka_health.kafka_hook("nowhere")


def test_an_unreachable_connection_is_one_line_and_librdkafka_prints_nothing(connections, capfd):
    result = kafka_health.probe("own", 1.5)

    assert result.reachable is False
    assert result.brokers == 0
    assert result.error.startswith("no broker answered within 1.5 s: ")
    assert f"127.0.0.1:{connections}" in result.error
    assert "Connection refused" in result.error
    assert "\n" not in result.error
    assert "after 0ms in state" not in result.error
    captured = capfd.readouterr()
    assert "FAIL" not in captured.err
    assert "%3|" not in captured.err
    assert captured.out == ""


def test_the_quiet_logger_keeps_lines_from_stderr_and_other_handlers():
    logger, collected = quiet_logger("pstt.librdkafka.test")
    logger.error("FAIL [rdkafka#producer-1] %s", "Connect to ipv4#127.0.0.1:1 failed")
    assert collected.messages == ["FAIL [rdkafka#producer-1] Connect to ipv4#127.0.0.1:1 failed"]
    assert logger.propagate is False

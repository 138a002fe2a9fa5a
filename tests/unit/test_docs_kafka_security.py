"""Every connection example in docs/kafka-security.md is a librdkafka producer config that librdkafka accepts."""

from __future__ import annotations

import json
import re

import pytest
from confluent_kafka import Producer
from helpers import ROOT

PAGE = ROOT / "docs" / "kafka-security.md"


def examples() -> list[tuple[str, dict]]:
    found = []
    for block in re.findall(r"^```json\n(.*?)^```", PAGE.read_text(), re.MULTILINE | re.DOTALL):
        for conn_id, connection in json.loads(block).items():
            found.append((conn_id, connection))
    return found


def test_the_page_shows_plain_scram_and_ssl():
    extras = [connection["extra"] for _, connection in examples()]
    assert {extra.get("sasl.mechanism") for extra in extras} >= {"PLAIN", "SCRAM-SHA-256"}
    assert {extra["security.protocol"] for extra in extras} >= {"PLAINTEXT", "SSL", "SASL_SSL"}


@pytest.mark.parametrize(("conn_id", "connection"), examples(), ids=[conn_id for conn_id, _ in examples()])
def test_each_example_is_a_kafka_connection_librdkafka_accepts(conn_id, connection):
    assert connection["conn_type"] == "kafka"
    # Built without brokers (nothing is contacted) and without the example's certificate paths, which exist only
    # on the reader's machines; everything else is validated by librdkafka at construction.
    config = {
        key: value
        for key, value in connection["extra"].items()
        if key != "bootstrap.servers" and not key.endswith(".location")
    }
    Producer({**config, "log_level": 0}).flush(0)

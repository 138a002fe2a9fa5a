"""
The local Schema Registry (scripts/schema-registry.sh: in memory, empty at each start) and reading values back
through it with confluent-kafka's own deserializers, as a consumer of an avro or json_schema topic would.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable
from typing import Any

from helpers import ROOT

SCHEMA_REGISTRY_CONN_ID = "pstt_test_schema_registry"


def start_schema_registry() -> str:
    """Starts the registry unless it runs already; its URL, the script's last line."""
    done = subprocess.run(
        [str(ROOT / "scripts" / "schema-registry.sh"), "start"], check=True, cwd=ROOT, capture_output=True, text=True
    )
    return done.stdout.strip().splitlines()[-1]


def connection_env(url: str) -> dict[str, str]:
    """The Airflow ``http`` connection of the registry at ``url``, as the environment variable Airflow reads."""
    return {f"AIRFLOW_CONN_{SCHEMA_REGISTRY_CONN_ID.upper()}": json.dumps({"conn_type": "http", "host": url})}


def client(url: str) -> Any:
    from confluent_kafka.schema_registry import SchemaRegistryClient

    return SchemaRegistryClient({"url": url})


def deserialized(url: str, topic: str, values: Iterable[bytes], value_format: str) -> list[Any]:
    """``values`` of ``topic`` read by ``AvroDeserializer`` or ``JSONDeserializer`` (which validates)."""
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.schema_registry.json_schema import JSONDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    conf = {"subject.name.strategy.type": "TOPIC"}
    registry = client(url)
    if value_format == "avro":
        deserialize = AvroDeserializer(registry, conf=conf)
    else:
        deserialize = JSONDeserializer(None, schema_registry_client=registry, conf=conf)
    context = SerializationContext(topic, MessageField.VALUE)
    return [deserialize(value, context) for value in values]

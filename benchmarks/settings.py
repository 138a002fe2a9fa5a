"""
What every variant shares: the broker, the Airflow connections and the producer settings.

The producer settings are pstt's own defaults, read from the hook at run time, so the alternatives are measured
with the same acks, idempotence, linger and compression as the operator, whatever those defaults become.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from source import PG

ROOT = Path(__file__).resolve().parent.parent
BOOTSTRAP = os.environ.get("BENCH_BOOTSTRAP", "127.0.0.1:9092")
PG_CONN_ID = "pstt_bench_pg"
KAFKA_CONN_ID = "pstt_bench_kafka"
SCHEMA_REGISTRY_CONN_ID = "pstt_bench_schema_registry"
SCHEMA_REGISTRY_URL = os.environ.get("BENCH_SCHEMA_REGISTRY", "http://127.0.0.1:8081")
AIRFLOW_HOME = ROOT / ".cache" / "bench" / "airflow"


def producer_config() -> dict[str, Any]:
    """librdkafka settings of every confluent-kafka variant: pstt's safe defaults on the benchmark broker."""
    from pstt_provider.hooks.kafka import SAFE_PRODUCER_DEFAULTS

    return {"bootstrap.servers": BOOTSTRAP, **SAFE_PRODUCER_DEFAULTS}


def kafka_python_config() -> dict[str, Any]:
    """
    The same settings for kafka-python-ng where it has them: acks, linger, compression, the seed's retries.

    kafka-python-ng has no idempotent producer, so that one setting cannot be matched.
    """
    config = producer_config()
    return {
        "bootstrap_servers": BOOTSTRAP,
        "acks": "all" if str(config["acks"]) in ("all", "-1") else int(config["acks"]),
        "linger_ms": int(config.get("linger.ms", 0)),
        "compression_type": config.get("compression.type"),
        "retries": 3,
    }


def variant_env() -> dict[str, str]:
    """Environment of a variant process: a private Airflow home and the connections, set before Airflow loads."""
    AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
    pg = {
        "conn_type": "postgres",
        "host": PG["host"],
        "port": PG["port"],
        "login": PG["user"],
        "password": PG["password"],
        "schema": PG["dbname"],
    }
    kafka = {"conn_type": "kafka", "extra": producer_config()}
    return {
        **os.environ,
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME}/airflow.db",
        f"AIRFLOW_CONN_{PG_CONN_ID.upper()}": json.dumps(pg),
        f"AIRFLOW_CONN_{KAFKA_CONN_ID.upper()}": json.dumps(kafka),
        f"AIRFLOW_CONN_{SCHEMA_REGISTRY_CONN_ID.upper()}": json.dumps(
            {"conn_type": "http", "host": SCHEMA_REGISTRY_URL}
        ),
    }

"""Where the local services listen, as scripts/kafka.sh and scripts/postgres.sh start them."""

from __future__ import annotations

import json
import os

from helpers import ROOT

BOOTSTRAP = "127.0.0.1:9092"
SASL_BOOTSTRAP = "127.0.0.1:9093"
SCRAM_USER = os.environ.get("PSTT_KAFKA_SCRAM_USER", "pstt")
SCRAM_PASSWORD = os.environ.get("PSTT_KAFKA_SCRAM_PASSWORD", "pstt-secret")
KAFKA_CA = ROOT / ".cache" / "kafka" / "tls" / "ca.crt"
PG = {
    "host": "127.0.0.1",
    "port": 5432,
    "user": os.environ.get("PSTT_PG_USER", "pstt"),
    "password": os.environ.get("PSTT_PG_PASSWORD", "pstt"),
    "dbname": os.environ.get("PSTT_PG_DB", "pstt"),
}


def airflow_connections(bootstrap: str = BOOTSTRAP) -> dict[str, str]:
    """The Airflow connections the tests' operators name, as environment variables: kafka_default, pstt_test_pg."""
    postgres = {
        "conn_type": "postgres",
        "host": PG["host"],
        "port": PG["port"],
        "login": PG["user"],
        "password": PG["password"],
        "schema": PG["dbname"],
    }
    return {
        "AIRFLOW_CONN_KAFKA_DEFAULT": json.dumps({"conn_type": "kafka", "extra": {"bootstrap.servers": bootstrap}}),
        "AIRFLOW_CONN_PSTT_TEST_PG": json.dumps(postgres),
    }

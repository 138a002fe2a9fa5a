"""
Reachability of the configured Kafka connections.

Only Airflow connections of type ``kafka`` are ever contacted, looked up by id: nothing a request says
can make the server dial an arbitrary host.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from airflow.configuration import conf

DEFAULT_TIMEOUT_S = 5.0
KAFKA_CONN_TYPE = "kafka"


class KafkaConnectionNotFoundError(LookupError):
    """No Airflow connection has this id."""


class NotAKafkaConnectionError(ValueError):
    """The connection exists but is not of type ``kafka``."""


@dataclass(frozen=True)
class ConnectionHealth:
    conn_id: str
    reachable: bool
    latency_ms: float | None
    brokers: int
    error: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def probe_timeout_s() -> float:
    return conf.getfloat("pstt", "kafka_probe_timeout_s", fallback=DEFAULT_TIMEOUT_S)


def kafka_config(conn_id: str) -> dict[str, Any]:
    """The librdkafka config of a configured Kafka connection, refusing anything else."""
    from airflow.exceptions import AirflowNotFoundException

    from pstt_provider.hooks.kafka import PsttKafkaHook

    hook = PsttKafkaHook(kafka_config_id=conn_id)
    try:
        connection = hook.get_connection(conn_id)
    except AirflowNotFoundException as error:
        raise KafkaConnectionNotFoundError(f"no Airflow connection {conn_id!r}") from error
    if connection.conn_type != KAFKA_CONN_TYPE:
        raise NotAKafkaConnectionError(
            f"connection {conn_id!r} is of type {connection.conn_type!r}, not {KAFKA_CONN_TYPE!r}"
        )
    return hook._build_config()


def _env_kafka_ids() -> set[str]:
    """Kafka connections defined as AIRFLOW_CONN_* variables (JSON or URI form)."""
    ids = set()
    for name, value in os.environ.items():
        if not name.startswith("AIRFLOW_CONN_"):
            continue
        value = value.strip()
        if value.startswith("{"):
            try:
                conn_type = json.loads(value).get("conn_type")
            except ValueError:
                continue
        else:
            conn_type = value.split(":", 1)[0]
        if conn_type == KAFKA_CONN_TYPE:
            ids.add(name.removeprefix("AIRFLOW_CONN_").lower())
    return ids


def kafka_connection_ids() -> list[str]:
    """Every Kafka connection Airflow knows from its database and its environment variables."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        stored = set(session.scalars(select(Connection.conn_id).where(Connection.conn_type == KAFKA_CONN_TYPE)))
    return sorted(stored | _env_kafka_ids())


def probe(conn_id: str, timeout_s: float) -> ConnectionHealth:
    """Ask the cluster for its metadata: reachable means at least one broker answered in time."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    try:
        config = kafka_config(conn_id)
        client = AdminClient({**config, "socket.connection.setup.timeout.ms": int(timeout_s * 1000)})
        started = time.perf_counter()
        metadata = client.list_topics(timeout=timeout_s)
        latency_ms = (time.perf_counter() - started) * 1000
    except (KafkaException, KafkaConnectionNotFoundError, NotAKafkaConnectionError, ValueError) as error:
        return ConnectionHealth(conn_id, reachable=False, latency_ms=None, brokers=0, error=str(error))
    return ConnectionHealth(conn_id, True, round(latency_ms, 3), len(metadata.brokers), None)


def check_all(timeout_s: float | None = None) -> list[ConnectionHealth]:
    """Probe every Kafka connection in parallel, so one dead cluster costs one timeout, not one each."""
    ids = kafka_connection_ids()
    if not ids:
        return []
    timeout = probe_timeout_s() if timeout_s is None else timeout_s
    with ThreadPoolExecutor(max_workers=min(8, len(ids))) as pool:
        return list(pool.map(lambda conn_id: probe(conn_id, timeout), ids))


def overall_status(results: list[ConnectionHealth]) -> str:
    """healthy: every connection answers; degraded: some do; unhealthy: none does (or none is configured)."""
    reachable = sum(1 for result in results if result.reachable)
    if results and reachable == len(results):
        return "healthy"
    return "degraded" if reachable else "unhealthy"

"""
Reachability of the configured Kafka connections, for ``pstt health``, the API and Prometheus.

Only Airflow connections of a Kafka type (the official provider's ``kafka`` and this provider's own
``pstt_kafka``, the same librdkafka-config format) are ever contacted, looked up by id: nothing a request
says can make the server dial an arbitrary host. Each is probed by ``PsttKafkaHook.probe``, the check every run
starts with, whose librdkafka lines never reach stderr: one line per connection says what is wrong.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from pstt_provider import options
from pstt_provider.hooks.connection_health import ConnectionHealth

if TYPE_CHECKING:
    from pstt_provider.hooks.kafka import PsttKafkaHook


KAFKA_CONN_TYPE = "kafka"
KAFKA_CONN_TYPES = (KAFKA_CONN_TYPE, "pstt_kafka")
"""Connection types whose extra is a librdkafka config: the official provider's and ``PsttKafkaHook``'s."""
CONN_ENV_PREFIX = "AIRFLOW_CONN_"


class KafkaConnectionNotFoundError(LookupError):
    """No Airflow connection has this id."""


class NotAKafkaConnectionError(ValueError):
    """The connection exists but is not of a Kafka type (``kafka`` or ``pstt_kafka``)."""


def kafka_hook(conn_id: str) -> PsttKafkaHook:
    """The hook of a configured Kafka connection, refusing anything else."""
    from airflow.exceptions import AirflowNotFoundException

    from pstt_provider.hooks.kafka import PsttKafkaHook

    hook = PsttKafkaHook(kafka_config_id=conn_id)
    try:
        connection = hook.get_connection(conn_id)
    except AirflowNotFoundException as error:
        raise KafkaConnectionNotFoundError(f"no Airflow connection {conn_id!r}") from error
    if connection.conn_type not in KAFKA_CONN_TYPES:
        raise NotAKafkaConnectionError(
            f"connection {conn_id!r} is of type {connection.conn_type!r}, not "
            + " or ".join(repr(conn_type) for conn_type in KAFKA_CONN_TYPES)
        )
    return hook


def env_kafka_connection_ids() -> set[str]:
    """
    Kafka connections defined as AIRFLOW_CONN_* variables, parsed as Airflow's secrets backend parses them (JSON or
    URI). The Task SDK's ``Connection`` reads the same formats without encrypting the extra on the way, which would
    print Airflow's "empty cryptography key" warning into ``pstt health --json``.
    """
    from airflow.sdk import Connection

    ids = set()
    for name, value in os.environ.items():
        if not name.startswith(CONN_ENV_PREFIX) or not value.strip():
            continue
        conn_id = name.removeprefix(CONN_ENV_PREFIX).lower()
        try:
            if value.strip().startswith("{"):
                connection = Connection.from_json(value, conn_id=conn_id)
            else:
                connection = Connection.from_uri(value.strip(), conn_id=conn_id)
        except (ValueError, TypeError, AttributeError):  # Airflow itself cannot read it: not a connection to probe
            continue
        if connection.conn_type in KAFKA_CONN_TYPES:
            ids.add(conn_id)
    return ids


def kafka_connection_ids() -> list[str]:
    """Every Kafka connection Airflow knows from its database and its environment variables."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        stored = set(session.scalars(select(Connection.conn_id).where(Connection.conn_type.in_(KAFKA_CONN_TYPES))))
    return sorted(stored | env_kafka_connection_ids())


def probe(conn_id: str, timeout_s: float) -> ConnectionHealth:
    """The hook's probe of a Kafka connection; a connection that is unknown, not Kafka or unreadable says so."""
    try:
        return kafka_hook(conn_id).probe(timeout_s)
    except (KafkaConnectionNotFoundError, NotAKafkaConnectionError, ValueError) as error:
        return ConnectionHealth(conn_id, reachable=False, latency_ms=None, brokers=0, error=str(error))


def check_all(timeout_s: float | None = None) -> list[ConnectionHealth]:
    """Probe every Kafka connection in parallel, so one dead cluster costs one timeout, not one each."""
    ids = kafka_connection_ids()
    if not ids:
        return []
    timeout = options.KAFKA_PROBE_TIMEOUT_S.get() if timeout_s is None else timeout_s
    with ThreadPoolExecutor(max_workers=min(8, len(ids))) as pool:
        return list(pool.map(lambda conn_id: probe(conn_id, timeout), ids))


def overall_status(results: list[ConnectionHealth]) -> str:
    """healthy: every connection answers; degraded: some do; unhealthy: none does (or none is configured)."""
    reachable = sum(1 for result in results if result.reachable)
    if results and reachable == len(results):
        return "healthy"
    return "degraded" if reachable else "unhealthy"

"""
Reachability of the configured Kafka connections.

Only Airflow connections of a Kafka type (the official provider's ``kafka`` and this provider's own
``pstt_kafka``, the same librdkafka-config format) are ever contacted, looked up by id: nothing a request
says can make the server dial an arbitrary host.

librdkafka logs every failed connection attempt to stderr (dozens of ``%3|...|FAIL|`` lines per dead broker
and probe); a probe hands it a Python logger of its own instead and reports one line per connection.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from airflow.configuration import conf

DEFAULT_TIMEOUT_S = 5.0
KAFKA_CONN_TYPE = "kafka"
KAFKA_CONN_TYPES = (KAFKA_CONN_TYPE, "pstt_kafka")
"""Connection types whose extra is a librdkafka config: the official provider's and ``PsttKafkaHook``'s."""


class KafkaConnectionNotFoundError(LookupError):
    """No Airflow connection has this id."""


class NotAKafkaConnectionError(ValueError):
    """The connection exists but is not of a Kafka type (``kafka`` or ``pstt_kafka``)."""


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
    if connection.conn_type not in KAFKA_CONN_TYPES:
        raise NotAKafkaConnectionError(
            f"connection {conn_id!r} is of type {connection.conn_type!r}, not "
            + " or ".join(repr(conn_type) for conn_type in KAFKA_CONN_TYPES)
        )
    return hook._build_config()


def _env_kafka_ids() -> set[str]:
    """Kafka connections defined as AIRFLOW_CONN_* variables (JSON, or a URI: ``pstt-kafka://`` is ``pstt_kafka``)."""
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
            conn_type = value.split(":", 1)[0].replace("-", "_")  # as Airflow reads a URI's scheme
        if conn_type in KAFKA_CONN_TYPES:
            ids.add(name.removeprefix("AIRFLOW_CONN_").lower())
    return ids


def kafka_connection_ids() -> list[str]:
    """Every Kafka connection Airflow knows from its database and its environment variables."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        stored = set(session.scalars(select(Connection.conn_id).where(Connection.conn_type.in_(KAFKA_CONN_TYPES))))
    return sorted(stored | _env_kafka_ids())


class LibrdkafkaLog(logging.Handler):
    """Keeps what librdkafka logs for one client instead of letting it reach stderr."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def quiet_logger(name: str) -> tuple[logging.Logger, LibrdkafkaLog]:
    """
    A logger of one client's own (``logger`` in its config), unregistered so it is freed with the client: it
    collects librdkafka's lines and never propagates them to Airflow's handlers or stderr.
    """
    logger = logging.Logger(name, logging.DEBUG)
    collected = LibrdkafkaLog()
    logger.addHandler(collected)
    logger.propagate = False
    return logger, collected


_STATE_SUFFIX = re.compile(r"\s*\(after \d+ms in state \w+\)$")


def _unreachable(errors: list[Any], timeout_s: float, fallback: Exception) -> str:
    """One line: the most telling error librdkafka reported (a refused connection, a failed login)."""
    from confluent_kafka import KafkaError

    from pstt_provider.hooks.kafka import kafka_reason

    refusals = {KafkaError._AUTHENTICATION, KafkaError._SSL, KafkaError.SASL_AUTHENTICATION_FAILED}
    telling = [error for error in errors if error.code() != KafkaError._ALL_BROKERS_DOWN]
    for error in telling:
        if error.code() in refusals:
            return f"the broker refused the connection: {_STATE_SUFFIX.sub('', error.str())}"
    if telling:
        reason = _STATE_SUFFIX.sub("", telling[0].str())
    else:
        reason = errors[0].str() if errors else kafka_reason(fallback)
    return f"no broker answered within {timeout_s:g} s: {reason}"


def probe(conn_id: str, timeout_s: float) -> ConnectionHealth:
    """
    Ask the cluster for its metadata: reachable means at least one broker answered in time. An unreachable
    connection is one line (``error``), whatever librdkafka logged meanwhile.
    """
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    from pstt_provider.hooks.kafka import kafka_reason

    try:
        config = kafka_config(conn_id)
    except (KafkaConnectionNotFoundError, NotAKafkaConnectionError, ValueError) as error:
        return ConnectionHealth(conn_id, reachable=False, latency_ms=None, brokers=0, error=str(error))
    logger, _ = quiet_logger(f"pstt.librdkafka.{conn_id}")
    errors: list[Any] = []
    try:
        client = AdminClient(
            {
                **config,
                "socket.connection.setup.timeout.ms": max(1000, int(timeout_s * 1000)),
                "logger": logger,
                "error_cb": errors.append,
            }
        )
    except (KafkaException, ValueError, TypeError) as error:  # librdkafka refused the connection's config
        reason = kafka_reason(error) if isinstance(error, KafkaException) else str(error)
        return ConnectionHealth(conn_id, False, None, 0, f"invalid Kafka configuration: {reason}")
    try:
        started = time.perf_counter()
        metadata = client.list_topics(timeout=timeout_s)
        latency_ms = (time.perf_counter() - started) * 1000
    except KafkaException as error:
        client.poll(0)  # serves the queued error callbacks (and log lines, to the quiet logger)
        message = _unreachable(errors, timeout_s, error)
        return ConnectionHealth(conn_id, reachable=False, latency_ms=None, brokers=0, error=message)
    client.poll(0)
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

"""
Kafka hook: the official provider's connection format, delivery-safe defaults, and every Kafka client a run uses.

The hook makes the producers, the admin client and the consumer, each logging through its ``LibrdkafkaLog``, and
answers the first question of a run, of the connection-test button, of the API's Kafka routes and of ``pstt
health``: does a broker answer and, when none does, why (``probe``). What a run needs of its topics is in
``KafkaTopics`` (``topics()``).
"""

from __future__ import annotations

import re
import time
from typing import Any

from airflow.providers.apache.kafka.hooks.base import KafkaBaseHook
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from pstt_provider.exceptions import BrokerUnreachableError, KafkaAuthenticationError, PsttError, TopicUnavailableError
from pstt_provider.hooks.connection_health import ConnectionHealth
from pstt_provider.hooks.librdkafka_log import LibrdkafkaLog, quiet_logger
from pstt_provider.hooks.topics import KafkaTopics

__all__ = [  # the errors of the hook's checks stay importable from here, as before the topic checks moved out
    "DEFAULT_METADATA_TIMEOUT_S",
    "SAFE_PRODUCER_DEFAULTS",
    "BrokerUnreachableError",
    "KafkaAuthenticationError",
    "PsttKafkaHook",
    "TopicUnavailableError",
    "kafka_reason",
]

SAFE_PRODUCER_DEFAULTS: dict[str, Any] = {
    "acks": "all",
    "enable.idempotence": True,
    "linger.ms": 20,
    "compression.type": "lz4",
    "message.timeout.ms": 120_000,
}
"""
``message.timeout.ms`` bounds how long a message may wait for its acknowledgement (retries included):
with the broker gone, every pending message fails after at most this long, so a run never hangs.
"""

DEFAULT_METADATA_TIMEOUT_S = 30.0
CONNECTION_TEST_TIMEOUT_S = 10.0
"""The connection-test button's wait for a broker."""

_AUTHENTICATION_ERRORS = frozenset({KafkaError._AUTHENTICATION, KafkaError._SSL, KafkaError.SASL_AUTHENTICATION_FAILED})
_STATE_SUFFIX = re.compile(r"\s*\(after \d+ms in state \w+\)$")


def kafka_reason(err: KafkaException) -> str:
    reason = err.args[0] if err.args else err
    return reason.str() if isinstance(reason, KafkaError) else str(reason)


class PsttKafkaHook(KafkaBaseHook):
    """
    Turns an Airflow Kafka connection (extra = librdkafka config dict) into Kafka clients.

    Any connection in the official provider's format works, whatever its type. Defaults never lose data
    silently: every message is acknowledged by all in-sync replicas and the producer is idempotent. The
    connection's extra overrides the defaults; per-operator overrides win last.
    """

    conn_type = "pstt_kafka"
    hook_name = "PSTT Kafka producer"

    def __init__(self, kafka_config_id: str = KafkaBaseHook.default_conn_name) -> None:
        super().__init__(kafka_config_id=kafka_config_id)
        self._connection_config: dict[str, Any] | None = None
        self._client_errors: list[KafkaError] = []
        self.librdkafka_log = LibrdkafkaLog()

    def _build_config(self) -> dict[str, Any]:
        """The connection's config, read once per hook: inside a task every lookup is a call to the API server."""
        if self._connection_config is None:
            self._connection_config = super()._build_config()
        return dict(self._connection_config)

    def explicit_config(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """What the connection and the overrides set, without the defaults: to tell a choice from a default."""
        return {**self._build_config(), **(overrides or {})}

    def client_config(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """The connection's config for any client (admin, consumer), logging through this hook's ``LibrdkafkaLog``."""
        return {"logger": self.librdkafka_log, **self._build_config(), **(overrides or {})}

    def producer_config(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        return {**SAFE_PRODUCER_DEFAULTS, "logger": self.librdkafka_log, **self._build_config(), **(overrides or {})}

    def get_producer(self, overrides: dict[str, Any] | None = None) -> Producer:
        return Producer(self.producer_config(overrides))

    def get_admin_client(self) -> AdminClient:
        """
        An admin client that remembers librdkafka's authentication errors: a refused password only surfaces
        through ``error_cb``, while the request itself merely times out (``connection_error`` tells them apart).
        """
        return AdminClient(self.client_config({"error_cb": self._client_errors.append}))

    def get_consumer(self, overrides: dict[str, Any] | None = None) -> Consumer:
        return Consumer(self.client_config(overrides))

    def topics(self) -> KafkaTopics:
        return KafkaTopics(self)

    def probe(self, timeout_s: float) -> ConnectionHealth:
        """
        One metadata request: reachable means a broker answered within ``timeout_s``. When none did, ``error`` is
        one line, whatever librdkafka logged meanwhile (its lines go to a logger of the probe's own), and
        ``problem`` says whether the credentials were refused. A connection Airflow does not know raises.
        """
        logger, _ = quiet_logger(f"pstt.librdkafka.{self.kafka_config_id}")
        errors: list[KafkaError] = []
        try:
            client = AdminClient(
                self.client_config(
                    {
                        "socket.connection.setup.timeout.ms": max(1000, int(timeout_s * 1000)),
                        "logger": logger,
                        "error_cb": errors.append,
                    }
                )
            )
        except (KafkaException, ValueError, TypeError) as err:  # librdkafka refused the connection's config
            reason = kafka_reason(err) if isinstance(err, KafkaException) else str(err)
            message = f"invalid Kafka configuration in connection {self.kafka_config_id!r}: {reason}"
            return ConnectionHealth(self.kafka_config_id, False, None, 0, message, "configuration")
        started = time.perf_counter()
        try:
            metadata = client.list_topics(timeout=timeout_s)
        except KafkaException as err:
            client.poll(0)  # serves the queued error callbacks (and log lines, to the quiet logger)
            return self._unanswered(errors, err, timeout_s)
        latency_ms = (time.perf_counter() - started) * 1000
        client.poll(0)
        return ConnectionHealth(self.kafka_config_id, True, round(latency_ms, 3), len(metadata.brokers), None)

    def connection_error(self, client: Producer | AdminClient, err: Exception, timeout_s: float) -> PsttError:
        """What a request of one of this hook's clients without an answer means, as the probe would say it."""
        client.poll(0)
        return self._unanswered(self._client_errors, err, timeout_s).unreachable_error()

    def _unanswered(self, errors: list[KafkaError], err: Exception, timeout_s: float) -> ConnectionHealth:
        """No answer: refused credentials if the client saw them (``error_cb``), else the most telling error."""
        refusal = next((error for error in errors if error.code() in _AUTHENTICATION_ERRORS), None)
        if refusal is not None:
            message = (
                f"Kafka authentication failed for connection {self.kafka_config_id!r}: "
                f"{_STATE_SUFFIX.sub('', refusal.str())}; check sasl.username/sasl.password, sasl.mechanism and "
                "the TLS settings"
            )
            return ConnectionHealth(self.kafka_config_id, False, None, 0, message, "authentication")
        telling = [error for error in errors if error.code() != KafkaError._ALL_BROKERS_DOWN] or errors
        if telling:
            reason = _STATE_SUFFIX.sub("", telling[0].str())
        else:
            reason = kafka_reason(err) if isinstance(err, KafkaException) else "timed out"
        message = (
            f"no broker answered within {timeout_s:g} s: {reason}; check bootstrap.servers and that the broker is "
            "running"
        )
        return ConnectionHealth(self.kafka_config_id, False, None, 0, message, "unreachable")

    def test_connection(self) -> tuple[bool, str]:
        """Airflow's connection-test button: the probe every run starts with."""
        try:
            health = self.probe(CONNECTION_TEST_TIMEOUT_S)
        except Exception as err:  # the button shows any failure, a connection it cannot read included
            return False, str(err)
        if not health.reachable:
            return False, health.error or "unreachable"
        servers = self.explicit_config().get("bootstrap.servers")
        return True, f"Connected to {servers}: {health.brokers} broker(s), answered in {health.latency_ms:.0f} ms."

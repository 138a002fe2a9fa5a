"""Kafka producer hook: the official provider's connection format, with delivery-safe defaults."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airflow.providers.apache.kafka.hooks.base import KafkaBaseHook
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from pstt_provider.delivery import BulkSender

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
LIBRDKAFKA_MAX_BYTES_DEFAULT = 1_000_000
LIBRDKAFKA_MIN_MESSAGE_MAX_BYTES = 1000
LIBRDKAFKA_MAX_MESSAGE_MAX_BYTES = 1_000_000_000
BATCH_FRAMING_MARGIN = 512
"""Bytes kept free under the topic's max.message.bytes for record-batch and record headers."""


class BrokerUnreachableError(ConnectionError):
    """No broker of the Kafka connection answered a metadata request in time."""


class KafkaAuthenticationError(PermissionError):
    """The broker answered but refused the connection's credentials (SASL) or certificate (TLS)."""


class TopicUnavailableError(RuntimeError):
    """The broker answered but the topic does not exist (and is not auto-created) or is not authorised."""


_AUTHENTICATION_ERRORS = frozenset({KafkaError._AUTHENTICATION, KafkaError._SSL, KafkaError.SASL_AUTHENTICATION_FAILED})


def kafka_reason(err: KafkaException) -> str:
    reason = err.args[0] if err.args else err
    return reason.str() if isinstance(reason, KafkaError) else str(reason)


class PsttKafkaHook(KafkaBaseHook):
    """
    Turns an Airflow Kafka connection (extra = librdkafka config dict) into a producer.

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

    def _build_config(self) -> dict[str, Any]:
        """The connection's config, read once per hook: inside a task every lookup is a call to the API server."""
        if self._connection_config is None:
            self._connection_config = super()._build_config()
        return dict(self._connection_config)

    def explicit_config(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """What the connection and the overrides set, without the defaults: to tell a choice from a default."""
        return {**self._build_config(), **(overrides or {})}

    def producer_config(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        return {**SAFE_PRODUCER_DEFAULTS, **self._build_config(), **(overrides or {})}

    def get_producer(self, overrides: dict[str, Any] | None = None) -> Producer:
        return Producer(self.producer_config(overrides))

    def get_admin_client(self) -> AdminClient:
        """
        An admin client that remembers librdkafka's authentication errors: a refused password only surfaces
        through ``error_cb``, while the metadata request itself merely times out.
        """
        return AdminClient({**self._build_config(), "error_cb": self._client_errors.append})

    def bulk_sender(
        self,
        topic: str,
        overrides: dict[str, Any] | None = None,
        *,
        dead_letter_topic: str | None = None,
        dead_letter_producer: Callable[[], Producer] | None = None,
    ) -> BulkSender:
        """The bulk send path: a ``BulkSender`` with its own producer, configured like ``get_producer``."""
        return BulkSender(
            self.producer_config(overrides),
            topic,
            dead_letter_topic=dead_letter_topic,
            dead_letter_producer=dead_letter_producer,
        )

    def fit_to_topic(
        self,
        admin: AdminClient,
        topic: str,
        overrides: dict[str, Any],
        timeout_s: float = DEFAULT_METADATA_TIMEOUT_S,
        *,
        allow_larger: bool = False,
    ) -> dict[str, Any]:
        """
        Overrides with ``message.max.bytes`` and ``batch.size`` lowered under the topic's ``max.message.bytes``.

        The broker checks that limit per record batch, so one large row would get a whole batch of good rows
        rejected with it. Fitted, the producer refuses the large row alone, at ``produce`` time, and the rest
        flows. With ``allow_larger`` (the dead-letter producer, whose topic exists to take rows too large for the
        main one) ``message.max.bytes`` is also raised above librdkafka's default of 1,000,000 when the topic
        allows more. Limits set explicitly in the connection or the overrides are left alone; so is everything
        when the topic's configuration cannot be read (no DescribeConfigs permission).
        """
        explicit = self.explicit_config(overrides)
        if "message.max.bytes" in explicit or "batch.size" in explicit:
            return dict(overrides)
        resource = ConfigResource(ResourceType.TOPIC, topic)
        try:
            configs = admin.describe_configs([resource])[resource].result(timeout=timeout_s)
            topic_limit = int(configs["max.message.bytes"].value)
        except (KafkaException, KeyError, ValueError, TypeError) as err:
            self.log.warning("Cannot read max.message.bytes of topic %s (%s); producer limits unchanged", topic, err)
            return dict(overrides)
        ceiling = LIBRDKAFKA_MAX_MESSAGE_MAX_BYTES if allow_larger else LIBRDKAFKA_MAX_BYTES_DEFAULT
        limit = max(min(ceiling, topic_limit - BATCH_FRAMING_MARGIN), LIBRDKAFKA_MIN_MESSAGE_MAX_BYTES)
        if limit == LIBRDKAFKA_MAX_BYTES_DEFAULT:
            return dict(overrides)
        if limit > LIBRDKAFKA_MAX_BYTES_DEFAULT:
            # A message larger than batch.size still goes out, alone in its batch: batch.size can stay.
            return {**overrides, "message.max.bytes": limit}
        return {**overrides, "message.max.bytes": limit, "batch.size": limit}

    def check_reachable(
        self, client: Producer | AdminClient, topic: str, timeout_s: float = DEFAULT_METADATA_TIMEOUT_S
    ) -> None:
        """Fail fast, before any row is read, when no broker answers or the topic cannot be written."""
        try:
            metadata = client.list_topics(topic=topic, timeout=timeout_s)
        except KafkaException as err:
            client.poll(0)
            refusal = next((e for e in self._client_errors if e.code() in _AUTHENTICATION_ERRORS), None)
            if refusal is not None:
                raise KafkaAuthenticationError(
                    f"Kafka authentication failed for connection {self.kafka_config_id!r}: {refusal.str()}; "
                    "check sasl.username/sasl.password, sasl.mechanism and the TLS settings"
                ) from err
            raise BrokerUnreachableError(
                f"no Kafka broker answered within {timeout_s:.0f} s ({kafka_reason(err)}); "
                "check bootstrap.servers and that the broker is running"
            ) from err
        topic_metadata = metadata.topics.get(topic)
        error = topic_metadata.error if topic_metadata is not None else None
        if error is not None and error.code() in (
            KafkaError.UNKNOWN_TOPIC_OR_PART,
            KafkaError.TOPIC_AUTHORIZATION_FAILED,
            KafkaError.TOPIC_EXCEPTION,
        ):
            raise TopicUnavailableError(f"cannot produce to topic {topic!r}: {error.str()}")

    def test_connection(self) -> tuple[bool, str]:
        """Airflow's connection-test button: a metadata round trip with the producer's own configuration."""
        try:
            metadata = self.get_producer().list_topics(timeout=10)
        except Exception as err:
            return False, str(err)
        brokers = ", ".join(sorted(f"{b.host}:{b.port}" for b in metadata.brokers.values()))
        return True, f"Connected: {len(metadata.brokers)} broker(s) ({brokers}), {len(metadata.topics)} topic(s)."

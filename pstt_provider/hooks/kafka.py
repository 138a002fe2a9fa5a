"""
Kafka producer hook: the official provider's connection format, with delivery-safe defaults.

Besides the clients, the hook holds what every run needs before its first row: is a broker there, may the
connection write the topic, does the topic exist (creating it when the job says how, or waiting for the broker to
auto-create it), and which size limits fit the topic. Every client it makes logs through ``LibrdkafkaLog``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow.providers.apache.kafka.hooks.base import KafkaBaseHook
from confluent_kafka import KafkaError, KafkaException, Producer, TopicCollection
from confluent_kafka.admin import AdminClient, ClusterMetadata, ConfigResource, NewTopic, ResourceType, TopicMetadata

from pstt_provider.delivery import BulkSender
from pstt_provider.exceptions import (
    BrokerUnreachableError,
    KafkaAuthenticationError,
    TopicAuthorizationError,
    TopicCreationError,
    TopicNotFoundError,
    TopicUnavailableError,
)

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


TOPIC_POLL_S = 0.05
"""Between metadata requests while a topic is being created: a new topic gets its leaders within ~100 ms locally."""
BROKER_CONFIG_TIMEOUT_S = 10.0
"""At most this long (and never beyond ``metadata_timeout_s``) to read the broker's ``auto.create.topics.enable``."""
TOPIC_REMEDIES = (
    "create the topic (kafka-topics.sh --create --topic {topic} ...), or set kafka_config.topic_config in the job "
    "spec (topic_config= on the operator) so the task creates it"
)

_AUTHENTICATION_ERRORS = frozenset({KafkaError._AUTHENTICATION, KafkaError._SSL, KafkaError.SASL_AUTHENTICATION_FAILED})
_AUTHORIZATION_ERRORS = frozenset({KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.CLUSTER_AUTHORIZATION_FAILED})
_CREATION_TIMEOUTS = frozenset(
    {KafkaError._TIMED_OUT, KafkaError.REQUEST_TIMED_OUT, KafkaError._TRANSPORT, KafkaError.NOT_CONTROLLER}
)

LIBRDKAFKA_LOGGER = logging.getLogger("pstt_provider.librdkafka")
"""Where librdkafka's own log lines go, through Python logging (so into the task log, with real levels)."""
REPEAT_WINDOW_S = 30.0
_MAX_REMEMBERED = 1000
_PARENTHESISED = re.compile(r"\((?:[^()]|\([^()]*\))*\)")
_DIGITS = re.compile(r"\d+")
_SUPPRESSED = re.compile(r",? *\d+ identical error\(s\) suppressed")
"""librdkafka's own count of the repeats it held back: the same failure, said again."""


def _volatile_masked(match: re.Match[str]) -> str:
    return _DIGITS.sub("#", match.group())


@dataclass
class _Repeats:
    since: float
    count: int = 0
    level: int = logging.INFO
    line: tuple[str, str, str] = ("", "", "")


class LibrdkafkaLog:
    """
    The ``logger`` of every Kafka client the hook makes: librdkafka's lines in Python logging, each at most once
    per ``window_s``.

    Without it librdkafka writes to stderr, which the task log shows as ERROR whatever the level (a routine
    ``%4|...|Coordinator load in progress`` in red), and a broker outage repeats "Connect to ... failed" for every
    reconnect of every client: 583 lines in one task log. confluent-kafka calls ``log(level, "%s [%s] %s",
    facility, client, text)`` with librdkafka's syslog level already turned into Python's (0-2 CRITICAL, 3 ERROR,
    4 WARNING, 5-6 INFO, 7 DEBUG); CRITICAL is capped at ERROR here, so the task log reads 0-3 error, 4 warning,
    5-6 info, 7 debug.

    The same message (same facility and text; the numbers inside parentheses such as "after 12ms", and
    librdkafka's own "3 identical error(s) suppressed", do not count) is logged once per window; the first
    occurrence after the window ends is logged with "(repeated N times in the last 30 s)". ``flush`` reports what
    is still counted, at the end of a run.
    Callbacks only run inside the clients' ``poll``/``flush``, never per message produced.
    """

    def __init__(
        self,
        logger: logging.Logger = LIBRDKAFKA_LOGGER,
        window_s: float = REPEAT_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.window_s = window_s
        self._clock = clock
        self._seen: dict[tuple[str, str], _Repeats] = {}
        self._lock = threading.Lock()

    def log(self, level: int, msg: str, *args: Any) -> None:
        if len(args) == 3:
            facility, client, text = (str(arg) for arg in args)
        else:
            facility, client, text = "", "", msg % args if args else msg
        level = min(level, logging.ERROR)
        key = (facility, _PARENTHESISED.sub(_volatile_masked, _SUPPRESSED.sub("", text)))
        now = self._clock()
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None and now - seen.since < self.window_s:
                seen.count += 1
                seen.level, seen.line = max(seen.level, level), (facility, client, text)
                return
            repeated = seen.count if seen is not None else 0
            if len(self._seen) >= _MAX_REMEMBERED:
                self._forget_before(now - self.window_s)
            self._seen[key] = _Repeats(since=now)
        self._emit(level, facility, client, text, repeated, self.window_s)

    def flush(self) -> None:
        """Logs the messages still being counted (once each, with their count), e.g. when a run ends."""
        now = self._clock()
        with self._lock:
            pending = [seen for seen in self._seen.values() if seen.count]
            self._seen.clear()
        for seen in pending:
            self._emit(seen.level, *seen.line, seen.count, now - seen.since)

    def _forget_before(self, horizon: float) -> None:
        for key in [key for key, seen in self._seen.items() if seen.since < horizon and not seen.count]:
            del self._seen[key]

    def _emit(self, level: int, facility: str, client: str, text: str, repeated: int, period_s: float) -> None:
        if not self.logger.isEnabledFor(level):
            return
        if repeated:
            self.logger.log(
                level, "%s [%s] %s (repeated %d times in the last %.0f s)", facility, client, text, repeated, period_s
            )
        else:
            self.logger.log(level, "%s [%s] %s", facility, client, text)


def _writable(metadata: TopicMetadata) -> bool:
    """The topic exists and every partition has a leader: a producer can write it now."""
    return (
        metadata.error is None
        and bool(metadata.partitions)
        and all(p.error is None and p.leader >= 0 for p in metadata.partitions.values())
    )


def _left(deadline: float, floor: float = 1.0) -> float:
    """Seconds to ``deadline``, at least ``floor``: a request given no time at all fails without asking."""
    return max(deadline - time.monotonic(), floor)


def _config_text(value: Any) -> str:
    """A topic setting as the Admin API wants it: text, booleans in Kafka's lower case."""
    return str(value).lower() if isinstance(value, bool) else str(value)


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
        self._cluster: ClusterMetadata | None = None
        """The last metadata answer: which brokers to ask for their configuration."""
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
        through ``error_cb``, while the metadata request itself merely times out.
        """
        return AdminClient(self.client_config({"error_cb": self._client_errors.append}))

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
        self,
        client: Producer | AdminClient,
        topic: str,
        timeout_s: float = DEFAULT_METADATA_TIMEOUT_S,
        *,
        topic_config: Mapping[str, Any] | None = None,
    ) -> None:
        """
        Fail fast, before any row is read, when no broker answers or the topic cannot be written; make sure the
        topic exists, with a leader for every partition, when it does not yet.

        An absent topic is created with ``topic_config`` (``{"partitions", "replication_factor", "config"}``, None
        for the broker's default) when given; its absence is asked without a metadata request for it by name,
        which an auto-creating broker would answer by creating it with its defaults first. Otherwise that request
        makes a broker with ``auto.create.topics.enable=true`` create it, and the run waits for its leaders; a
        broker that does not auto-create (read from its configuration, or, when that may not be read, no topic by
        the deadline) fails the task at once with both remedies. Everything together takes at most ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        if topic_config is not None:
            admin = client if isinstance(client, AdminClient) else self.get_admin_client()
            if not self.topic_exists(admin, topic, timeout_s):
                self.create_topic(admin, topic, topic_config, _left(deadline))
        metadata = self._topic_metadata(client, topic, _left(deadline))
        if _writable(metadata):
            return
        code = metadata.error.code() if metadata.error is not None else None
        if code in _AUTHORIZATION_ERRORS:
            raise self._not_allowed(topic, metadata.error)
        if code == KafkaError.TOPIC_EXCEPTION:
            raise TopicNotFoundError(f"cannot produce to topic {topic!r}: {metadata.error.str()}; check the topic name")
        auto_create: bool | None = None
        if code == KafkaError.UNKNOWN_TOPIC_OR_PART and topic_config is None:
            admin = client if isinstance(client, AdminClient) else self.get_admin_client()
            auto_create = self.broker_auto_creates_topics(admin, _left(deadline))
            if auto_create is False:
                raise TopicNotFoundError(
                    f"topic {topic!r} does not exist and the broker does not create topics on first use "
                    f"(auto.create.topics.enable=false): {TOPIC_REMEDIES.format(topic=topic)}"
                )
        metadata = self._wait_for_leaders(client, topic, metadata, deadline)
        if _writable(metadata):
            return
        absent = metadata.error is not None and metadata.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
        if absent and topic_config is None and not auto_create:
            raise TopicNotFoundError(
                f"topic {topic!r} does not exist and did not appear within {timeout_s:.0f} s (the broker's "
                f"auto.create.topics.enable could not be read; it seems off): {TOPIC_REMEDIES.format(topic=topic)}"
            )
        state = metadata.error.str() if metadata.error is not None else "partitions without a leader"
        raise TopicUnavailableError(
            f"topic {topic!r} had no leader for every partition within {timeout_s:.0f} s ({state}); "
            "the brokers may still be creating it or electing leaders: the retry will look again"
        )

    def topic_exists(self, admin: AdminClient, topic: str, timeout_s: float) -> bool:
        """
        Whether ``topic`` exists, asked so that no broker creates it: DescribeTopics, or the list of all topics
        when that fails (older brokers); an unreachable broker or refused credentials fail as in check_reachable.
        """
        future = admin.describe_topics(TopicCollection([topic]), request_timeout=timeout_s)[topic]
        try:
            future.result(timeout=timeout_s + 1)
            return True
        except KafkaException as err:
            code = err.args[0].code()
            if code == KafkaError.UNKNOWN_TOPIC_OR_PART:
                return False
            if code in _AUTHORIZATION_ERRORS:
                return True  # the metadata request that follows says what is not allowed
            if code in _CREATION_TIMEOUTS:
                raise self._unreachable(admin, err, timeout_s) from err
        except TimeoutError as err:
            raise self._unreachable(admin, err, timeout_s) from err
        return self._topic_metadata(admin, topic, timeout_s, by_name=False).error is None

    def _topic_metadata(
        self, client: Producer | AdminClient, topic: str, timeout_s: float, *, by_name: bool = True
    ) -> TopicMetadata:
        """
        The topic's metadata; a broker that does not answer, or refuses the credentials, fails here. Asked
        ``by_name`` a broker that auto-creates topics creates it; else all topics are listed (an absent topic:
        an UNKNOWN_TOPIC_OR_PART error).
        """
        try:
            if by_name:
                metadata = client.list_topics(topic=topic, timeout=timeout_s)
            else:
                metadata = client.list_topics(timeout=timeout_s)
        except KafkaException as err:
            raise self._unreachable(client, err, timeout_s) from err
        self._cluster = metadata
        found = metadata.topics.get(topic)
        if found is None:
            found = TopicMetadata()
            found.error = KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART)
        return found

    def _unreachable(
        self, client: Producer | AdminClient, err: Exception, timeout_s: float
    ) -> KafkaAuthenticationError | BrokerUnreachableError:
        """A request without an answer: refused credentials if the client saw them (``error_cb``), else no broker."""
        client.poll(0)
        refusal = next((e for e in self._client_errors if e.code() in _AUTHENTICATION_ERRORS), None)
        if refusal is not None:
            return KafkaAuthenticationError(
                f"Kafka authentication failed for connection {self.kafka_config_id!r}: {refusal.str()}; "
                "check sasl.username/sasl.password, sasl.mechanism and the TLS settings"
            )
        reason = kafka_reason(err) if isinstance(err, KafkaException) else "timed out"
        return BrokerUnreachableError(
            f"no Kafka broker answered within {timeout_s:.0f} s ({reason}); "
            "check bootstrap.servers and that the broker is running"
        )

    def _not_allowed(self, topic: str, error: KafkaError) -> TopicAuthorizationError:
        return TopicAuthorizationError(
            f"the Kafka connection {self.kafka_config_id!r} may not write to topic {topic!r} ({error.str()}); "
            "grant its principal WRITE and DESCRIBE on the topic"
        )

    def _wait_for_leaders(
        self, client: Producer | AdminClient, topic: str, metadata: TopicMetadata, deadline: float
    ) -> TopicMetadata:
        """
        Polls the topic's metadata until every partition has a leader or the deadline passes; the last answer.
        Asked by name, so a broker that auto-creates topics is reminded to, should the first request have been lost.
        """
        while not _writable(metadata) and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(TOPIC_POLL_S, left))
            metadata = self._topic_metadata(client, topic, _left(deadline, 0.1))
            if metadata.error is not None and metadata.error.code() in _AUTHORIZATION_ERRORS:
                raise self._not_allowed(topic, metadata.error)
        return metadata

    def broker_auto_creates_topics(self, admin: AdminClient, timeout_s: float) -> bool | None:
        """
        The broker's ``auto.create.topics.enable``, or None when it cannot be read (no DescribeConfigs permission
        on the cluster, as managed services often deny): then only waiting tells.
        """
        cluster = self._cluster
        if cluster is None:
            try:
                cluster = admin.list_topics(timeout=timeout_s)
            except KafkaException:
                return None
        broker_ids = [cluster.controller_id] if cluster.controller_id >= 0 else []
        broker_ids += sorted(cluster.brokers)
        if not broker_ids:
            return None
        resource = ConfigResource(ResourceType.BROKER, str(broker_ids[0]))
        try:
            configs = admin.describe_configs([resource])[resource].result(
                timeout=min(timeout_s, BROKER_CONFIG_TIMEOUT_S)
            )
            value = configs["auto.create.topics.enable"].value
        except (KafkaException, KeyError, TypeError, TimeoutError) as err:
            self.log.info("Cannot read the broker's auto.create.topics.enable (%s); waiting for the topic instead", err)
            return None
        return str(value).lower() == "true"

    def create_topic(self, admin: AdminClient, topic: str, settings: Mapping[str, Any], timeout_s: float) -> None:
        """
        Creates ``topic`` with ``settings`` (``partitions``, ``replication_factor``: None for the broker's default;
        ``config``: topic settings). A topic created meanwhile by someone else (another task of the same job, a
        broker auto-creating it) is fine: the existing one is used as it is.
        """
        partitions = settings.get("partitions") or -1
        replication = settings.get("replication_factor") or -1
        config = {name: _config_text(value) for name, value in (settings.get("config") or {}).items()}
        future = admin.create_topics(
            [NewTopic(topic, partitions, replication, config=config)],
            operation_timeout=timeout_s,
            request_timeout=timeout_s,
        )[topic]
        try:
            future.result(timeout=timeout_s + 1)
        except KafkaException as err:
            error = err.args[0]
            code = error.code()
            if code == KafkaError.TOPIC_ALREADY_EXISTS:
                self.log.info("Topic %s was created meanwhile by another client; using it as it is", topic)
                return
            if code in _AUTHORIZATION_ERRORS:
                raise TopicAuthorizationError(
                    f"the Kafka connection {self.kafka_config_id!r} may not create topic {topic!r} ({error.str()}); "
                    "grant its principal CREATE on the topic (or the cluster), or create the topic beforehand"
                ) from err
            if code in _CREATION_TIMEOUTS:
                raise TopicUnavailableError(
                    f"creating topic {topic!r} did not finish within {timeout_s:.0f} s ({error.str()}); "
                    "the retry will look again"
                ) from err
            raise TopicCreationError(
                f"the broker refused to create topic {topic!r} with partitions={settings.get('partitions')}, "
                f"replication_factor={settings.get('replication_factor')}, config={config} ({error.str()}); "
                "fix kafka_config.topic_config in the job spec (topic_config= on the operator)"
            ) from err
        except TimeoutError as err:
            raise TopicUnavailableError(
                f"creating topic {topic!r} did not finish within {timeout_s:.0f} s; the retry will look again"
            ) from err
        self.log.info(
            "Created topic %s: partitions %s, replication factor %s, config %s",
            topic,
            settings.get("partitions") or "broker default",
            settings.get("replication_factor") or "broker default",
            config or "broker defaults",
        )

    def test_connection(self) -> tuple[bool, str]:
        """Airflow's connection-test button: a metadata round trip with the producer's own configuration."""
        try:
            metadata = self.get_producer().list_topics(timeout=10)
        except Exception as err:
            return False, str(err)
        brokers = ", ".join(sorted(f"{b.host}:{b.port}" for b in metadata.brokers.values()))
        return True, f"Connected: {len(metadata.brokers)} broker(s) ({brokers}), {len(metadata.topics)} topic(s)."

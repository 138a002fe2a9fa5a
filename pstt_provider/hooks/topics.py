"""
What a run needs of its topics before the first row: may the connection write them, do they exist (created when
the job says how, or waited for while the broker auto-creates them), and which producer limits fit them.

``KafkaTopics`` works through one admin client of a ``PsttKafkaHook``, so a refused password or an absent broker
reads the same here as in the hook's ``probe``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaError, KafkaException, TopicCollection
from confluent_kafka.admin import ClusterMetadata, ConfigResource, NewTopic, ResourceType, TopicMetadata

from pstt_provider.exceptions import (
    TopicAuthorizationError,
    TopicCreationError,
    TopicNotFoundError,
    TopicUnavailableError,
)

if TYPE_CHECKING:
    from pstt_provider.hooks.kafka import PsttKafkaHook

LIBRDKAFKA_MAX_BYTES_DEFAULT = 1_000_000
LIBRDKAFKA_MIN_MESSAGE_MAX_BYTES = 1000
LIBRDKAFKA_MAX_MESSAGE_MAX_BYTES = 1_000_000_000
BATCH_FRAMING_MARGIN = 512
"""Bytes kept free under the topic's max.message.bytes for record-batch and record headers."""
TOPIC_POLL_S = 0.05
"""Between metadata requests while a topic is being created: a new topic gets its leaders within ~100 ms locally."""
SHORTFALL_TIMEOUT_S = 2.0
"""How long a failed run asks the cluster whether its ISRs are short: brokers that answer at all answer in
milliseconds, and when none does (the broker is gone) the question must not add to the failure's bound."""
BROKER_CONFIG_TIMEOUT_S = 10.0
"""At most this long (and never beyond ``metadata_timeout_s``) to read the broker's ``auto.create.topics.enable``."""
TOPIC_REMEDIES = (
    "create the topic (kafka-topics.sh --create --topic {topic} ...), or set kafka_config.topic_config in the job "
    "spec (topic_config= on the operator) so the task creates it"
)

AUTHORIZATION_ERRORS = frozenset({KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.CLUSTER_AUTHORIZATION_FAILED})
_CREATION_TIMEOUTS = frozenset(
    {KafkaError._TIMED_OUT, KafkaError.REQUEST_TIMED_OUT, KafkaError._TRANSPORT, KafkaError.NOT_CONTROLLER}
)


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


class KafkaTopics:
    """The topics of one connection, seen through one admin client of ``hook``."""

    def __init__(self, hook: PsttKafkaHook) -> None:
        self.hook = hook
        self.admin = hook.get_admin_client()
        self.log = hook.log
        self._cluster: ClusterMetadata | None = None
        """The last metadata answer: which brokers to ask for their configuration."""

    def fit(
        self, topic: str, overrides: dict[str, Any], timeout_s: float, *, allow_larger: bool = False
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
        explicit = self.hook.explicit_config(overrides)
        if "message.max.bytes" in explicit or "batch.size" in explicit:
            return dict(overrides)
        resource = ConfigResource(ResourceType.TOPIC, topic)
        try:
            configs = self.admin.describe_configs([resource])[resource].result(timeout=timeout_s)
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

    def ensure_writable(self, topic: str, timeout_s: float, *, topic_config: Mapping[str, Any] | None = None) -> None:
        """
        Fail fast, before any row is read, when the topic cannot be written; make sure it exists, with a leader for
        every partition, when it does not yet.

        An absent topic is created with ``topic_config`` (``{"partitions", "replication_factor", "config"}``, None
        for the broker's default) when given; its absence is asked without a metadata request for it by name,
        which an auto-creating broker would answer by creating it with its defaults first. Otherwise that request
        makes a broker with ``auto.create.topics.enable=true`` create it, and the run waits for its leaders; a
        broker that does not auto-create (read from its configuration, or, when that may not be read, no topic by
        the deadline) fails the task at once with both remedies. Everything together takes at most ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        if topic_config is not None and not self.exists(topic, timeout_s):
            self.create(topic, topic_config, _left(deadline))
        metadata = self._metadata(topic, _left(deadline))
        if _writable(metadata):
            return
        error = metadata.error
        code = error.code() if error is not None else None
        if error is not None and code in AUTHORIZATION_ERRORS:
            raise self._not_allowed(topic, error)
        if error is not None and code == KafkaError.TOPIC_EXCEPTION:
            raise TopicNotFoundError(f"cannot produce to topic {topic!r}: {error.str()}; check the topic name")
        auto_create: bool | None = None
        if code == KafkaError.UNKNOWN_TOPIC_OR_PART and topic_config is None:
            auto_create = self.broker_auto_creates(_left(deadline))
            if auto_create is False:
                raise TopicNotFoundError(
                    f"topic {topic!r} does not exist and the broker does not create topics on first use "
                    f"(auto.create.topics.enable=false): {TOPIC_REMEDIES.format(topic=topic)}"
                )
        metadata = self._wait_for_leaders(topic, metadata, deadline)
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

    def replication_shortfall(self, topic: str, timeout_s: float = SHORTFALL_TIMEOUT_S) -> str | None:
        """
        Why ``acks=all`` writes to ``topic`` are refused, when they are: partitions with fewer in-sync replicas
        than the topic's ``min.insync.replicas``, and the brokers this client still reaches. A producer only
        reports such messages as timed out (librdkafka retries NOT_ENOUGH_REPLICAS until ``message.timeout.ms``),
        so the cause is read from the cluster after the failure. None when the ISRs are full, or cannot be read.
        """
        deadline = time.monotonic() + timeout_s
        resource = ConfigResource(ResourceType.TOPIC, topic)
        try:
            metadata = self.admin.list_topics(topic=topic, timeout=timeout_s)
            configs = self.admin.describe_configs([resource])[resource].result(timeout=_left(deadline))
            min_insync = int(configs["min.insync.replicas"].value)
        except (KafkaException, KeyError, ValueError, TypeError):
            return None
        partitions = metadata.topics[topic].partitions if topic in metadata.topics else {}
        short = {number: p for number, p in sorted(partitions.items()) if len(p.isrs) < min_insync}
        if not short:
            return None
        replicas = sorted({replica for p in partitions.values() for replica in p.replicas})
        brokers = sorted(metadata.brokers.values(), key=lambda broker: broker.id)
        reachable = ", ".join(f"{broker.id} at {broker.host}:{broker.port}" for broker in brokers)
        in_sync = ", ".join(f"partition {number}: {sorted(p.isrs)}" for number, p in short.items())
        return (
            f"topic {topic!r} has fewer in-sync replicas than its min.insync.replicas={min_insync} ({in_sync}; "
            f"replicas on brokers {replicas}), so the brokers refuse acks=all writes (NOT_ENOUGH_REPLICAS); "
            f"brokers reachable: {reachable or 'none'}; bring the others back and the retry delivers"
        )

    def exists(self, topic: str, timeout_s: float) -> bool:
        """
        Whether ``topic`` exists, asked so that no broker creates it: DescribeTopics, or the list of all topics
        when that fails (older brokers); an unreachable broker or refused credentials fail as in the hook's probe.
        """
        future = self.admin.describe_topics(TopicCollection([topic]), request_timeout=timeout_s)[topic]
        try:
            future.result(timeout=timeout_s + 1)
            return True
        except KafkaException as err:
            code = err.args[0].code()
            if code == KafkaError.UNKNOWN_TOPIC_OR_PART:
                return False
            if code in AUTHORIZATION_ERRORS:
                return True  # the metadata request that follows says what is not allowed
            if code in _CREATION_TIMEOUTS:
                raise self.hook.connection_error(self.admin, err, timeout_s) from err
        except TimeoutError as err:
            raise self.hook.connection_error(self.admin, err, timeout_s) from err
        return self._metadata(topic, timeout_s, by_name=False).error is None

    def _metadata(self, topic: str, timeout_s: float, *, by_name: bool = True) -> TopicMetadata:
        """
        The topic's metadata; a broker that does not answer, or refuses the credentials, fails here. Asked
        ``by_name`` a broker that auto-creates topics creates it; else all topics are listed (an absent topic:
        an UNKNOWN_TOPIC_OR_PART error).
        """
        try:
            if by_name:
                metadata = self.admin.list_topics(topic=topic, timeout=timeout_s)
            else:
                metadata = self.admin.list_topics(timeout=timeout_s)
        except KafkaException as err:
            raise self.hook.connection_error(self.admin, err, timeout_s) from err
        self._cluster = metadata
        found = metadata.topics.get(topic)
        if found is None:
            found = TopicMetadata()
            found.error = KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART)
        return found

    def _not_allowed(self, topic: str, error: KafkaError) -> TopicAuthorizationError:
        return TopicAuthorizationError(
            f"the Kafka connection {self.hook.kafka_config_id!r} may not write to topic {topic!r} ({error.str()}); "
            "grant its principal WRITE and DESCRIBE on the topic"
        )

    def _wait_for_leaders(self, topic: str, metadata: TopicMetadata, deadline: float) -> TopicMetadata:
        """
        Polls the topic's metadata until every partition has a leader or the deadline passes; the last answer.
        Asked by name, so a broker that auto-creates topics is reminded to, should the first request have been lost.
        """
        while not _writable(metadata) and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(TOPIC_POLL_S, left))
            metadata = self._metadata(topic, _left(deadline, 0.1))
            if metadata.error is not None and metadata.error.code() in AUTHORIZATION_ERRORS:
                raise self._not_allowed(topic, metadata.error)
        return metadata

    def broker_auto_creates(self, timeout_s: float) -> bool | None:
        """
        The broker's ``auto.create.topics.enable``, or None when it cannot be read (no DescribeConfigs permission
        on the cluster, as managed services often deny): then only waiting tells.
        """
        cluster = self._cluster
        if cluster is None:
            try:
                cluster = self.admin.list_topics(timeout=timeout_s)
            except KafkaException:
                return None
        broker_ids = [cluster.controller_id] if cluster.controller_id >= 0 else []
        broker_ids += sorted(cluster.brokers)
        if not broker_ids:
            return None
        resource = ConfigResource(ResourceType.BROKER, str(broker_ids[0]))
        try:
            configs = self.admin.describe_configs([resource])[resource].result(
                timeout=min(timeout_s, BROKER_CONFIG_TIMEOUT_S)
            )
            value = configs["auto.create.topics.enable"].value
        except (KafkaException, KeyError, TypeError, TimeoutError) as err:
            self.log.info("Cannot read the broker's auto.create.topics.enable (%s); waiting for the topic instead", err)
            return None
        return str(value).lower() == "true"

    def create(self, topic: str, settings: Mapping[str, Any], timeout_s: float) -> None:
        """
        Creates ``topic`` with ``settings`` (``partitions``, ``replication_factor``: None for the broker's default;
        ``config``: topic settings). A topic created meanwhile by someone else (another task of the same job, a
        broker auto-creating it) is fine: the existing one is used as it is.
        """
        partitions = settings.get("partitions") or -1
        replication = settings.get("replication_factor") or -1
        config = {name: _config_text(value) for name, value in (settings.get("config") or {}).items()}
        future = self.admin.create_topics(
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
            if code in AUTHORIZATION_ERRORS:
                raise TopicAuthorizationError(
                    f"the Kafka connection {self.hook.kafka_config_id!r} may not create topic {topic!r} "
                    f"({error.str()}); grant its principal CREATE on the topic (or the cluster), or create the "
                    "topic beforehand"
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

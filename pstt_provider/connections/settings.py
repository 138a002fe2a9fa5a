"""
PSTT Tool's producer settings: each KAFKA_* variable (or connections.json key), the librdkafka property it becomes,
and how its text is read. docs/coming-from-pstt-tool.md's variable tables are generated from this module.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI", "OAUTHBEARER")
COMPRESSION_TYPES = ("none", "gzip", "snappy", "lz4", "zstd")
MAX_PORT = 65535
# librdkafka's ceiling for 32-bit properties (CONFIGURATION.md ranges), and for queue.buffering.max.kbytes in bytes.
INT32_MAX = 2147483647
MAX_BUFFER_BYTES = INT32_MAX * 1024


def _text(value: str) -> str:
    return value.strip()


def _integer(value: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise ValueError(f"expected a whole number, got {value!r}") from None


@dataclass(frozen=True)
class WholeNumber:
    """
    A whole number in librdkafka's documented range for the property: a value outside it would fail every task
    at producer creation, or (for a byte count turned into KiB) be silently bent into range.
    """

    low: int
    high: int
    unit: str = ""

    def __call__(self, value: str) -> int:
        number = _integer(value)
        if not self.low <= number <= self.high:
            raise ValueError(f"expected a whole number{self.unit} from {self.low} to {self.high}, got {value!r}")
        return number


def port_number(value: str) -> int:
    """A TCP port, for Kafka servers, DB connections and SMTP alike."""
    try:
        return WholeNumber(1, MAX_PORT)(value)
    except ValueError:
        raise ValueError(f"expected a port number from 1 to {MAX_PORT}, got {value!r}") from None


def _boolean(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _one_of(choices: tuple[str, ...], *, upper: bool) -> Callable[[str], str]:
    def convert(value: str) -> str:
        normalised = value.strip().upper() if upper else value.strip().lower()
        if normalised not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return normalised

    return convert


def _servers(value: str) -> str:
    servers = [server.strip() for server in value.split(",") if server.strip()]
    if not servers:
        raise ValueError("expected host:port[,host:port...], got nothing")
    for server in servers:
        port = _server_port(server)
        if port is not None:
            try:
                port_number(port)
            except ValueError as error:
                raise ValueError(f"{server!r}: {error}") from None
    return ",".join(servers)


def _server_port(server: str) -> str | None:
    """The port part of ``[proto://]host[:port]`` or ``[ipv6]:port``; None when there is none (or it is ambiguous)."""
    address = server.split("://", 1)[-1]
    if address.startswith("["):
        _, _, rest = address.partition("]")
        return rest[1:] if rest.startswith(":") else None
    if address.count(":") != 1:
        return None  # no port (librdkafka's default 9092), or a bare IPv6 address librdkafka parses itself
    return address.rpartition(":")[2]


def _acks(value: str) -> str | int:
    lowered = value.strip().lower()
    if lowered in ("all", "-1"):
        return "all"
    if lowered in ("0", "1"):
        return int(lowered)
    raise ValueError(f"expected all, -1, 0 or 1, got {value!r}")


def _hostname_check(value: str) -> str:
    return "https" if _boolean(value) else "none"


BUFFER_BYTES = WholeNumber(1, MAX_BUFFER_BYTES, " of bytes")


def _kilobytes(value: str) -> int:
    """Bytes (kafka-python's buffer_memory) to KiB, rounded up: librdkafka's queue.buffering.max.kbytes."""
    return math.ceil(BUFFER_BYTES(value) / 1024)


@dataclass(frozen=True)
class KafkaSetting:
    """
    One PSTT Tool producer setting and the librdkafka property it becomes.

    ``name`` is the key in a connections.json "kafka_connections" entry; the .env variable is KAFKA_<NAME>.
    ``scope`` keeps SASL and TLS settings out of connections whose security protocol would not use them, so a
    .env shared by several environments never hands the production password to a PLAINTEXT development cluster.
    """

    name: str
    property: str
    convert: Callable[[str], Any]
    scope: Literal["any", "sasl", "ssl"] = "any"

    @builtins.property  # the bare name is the field above in this class's scope
    def env(self) -> str:
        return f"KAFKA_{self.name.upper()}"


KAFKA_SETTINGS: tuple[KafkaSetting, ...] = (
    KafkaSetting("bootstrap_servers", "bootstrap.servers", _servers),
    KafkaSetting("security_protocol", "security.protocol", _one_of(SECURITY_PROTOCOLS, upper=True)),
    KafkaSetting("sasl_mechanism", "sasl.mechanism", _one_of(SASL_MECHANISMS, upper=True), "sasl"),
    KafkaSetting("sasl_username", "sasl.username", _text, "sasl"),
    KafkaSetting("sasl_password", "sasl.password", _text, "sasl"),
    KafkaSetting("ssl_cafile", "ssl.ca.location", _text, "ssl"),
    KafkaSetting("ssl_certfile", "ssl.certificate.location", _text, "ssl"),
    KafkaSetting("ssl_keyfile", "ssl.key.location", _text, "ssl"),
    KafkaSetting("ssl_password", "ssl.key.password", _text, "ssl"),
    KafkaSetting("ssl_check_hostname", "ssl.endpoint.identification.algorithm", _hostname_check, "ssl"),
    KafkaSetting("client_id", "client.id", _text),
    KafkaSetting("compression_type", "compression.type", _one_of(COMPRESSION_TYPES, upper=False)),
    KafkaSetting("linger_ms", "linger.ms", WholeNumber(0, 900_000)),
    KafkaSetting("batch_size", "batch.size", WholeNumber(1, INT32_MAX)),
    KafkaSetting("acks", "acks", _acks),
    KafkaSetting("enable_idempotence", "enable.idempotence", _boolean),
    KafkaSetting("retries", "retries", WholeNumber(0, INT32_MAX)),
    KafkaSetting("retry_backoff_ms", "retry.backoff.ms", WholeNumber(1, 300_000)),
    KafkaSetting("request_timeout_ms", "request.timeout.ms", WholeNumber(1, 900_000)),
    KafkaSetting("max_request_size", "message.max.bytes", WholeNumber(1000, 1_000_000_000)),
    KafkaSetting("max_in_flight_requests", "max.in.flight.requests.per.connection", WholeNumber(1, 1_000_000)),
    KafkaSetting("buffer_memory", "queue.buffering.max.kbytes", _kilobytes),
)
SETTINGS_BY_NAME = {setting.name: setting for setting in KAFKA_SETTINGS}
SETTINGS_BY_ENV = {setting.env: setting for setting in KAFKA_SETTINGS}

# PSTT Tool settings that are not producer properties, and where each one lives now.
NOT_LIBRDKAFKA: dict[str, str] = {
    "KAFKA_DEFAULT_TOPIC": "a job's topic is kafka_config.topic in its spec; there is no default topic",
    "KAFKA_MESSAGE_BATCH_SIZE": "messages per batch is librdkafka's batch.num.messages: set it in a job's "
    "kafka_config.producer_config if at all (kafka_config.batch_size is accepted but no longer sizes anything)",
    "KAFKA_MAX_RETRIES": "PSTT Tool's own resend loop: a failed delivery fails the task and the job's max_retries "
    "re-runs it (librdkafka's retries come from KAFKA_RETRIES)",
    "KAFKA_MAX_BLOCK_MS": "no librdkafka equivalent: produce() never blocks on a full queue, it raises at once; "
    "the queue's size is KAFKA_BUFFER_MEMORY (queue.buffering.max.kbytes)",
    "KAFKA_LOG_LEVEL": "Airflow's task log level: AIRFLOW__LOGGING__LOGGING_LEVEL",
    "KAFKA_LOG_PAYLOAD": "no equivalent: message payloads are not written to task logs",
    "KAFKA_HEALTH_CHECK_INTERVAL_SEC": "the health check is `pstt health`, run as often as your monitoring asks",
}

# The runbook's other .env settings: not connections, and where each one lives now.
OTHER_SETTINGS: dict[str, str] = {
    "SMTP_TO": "recipients are per job: email_notification.recipients in each spec",
    "ALERT_SUCCESS_RATE_WARNING": "`pstt health` threshold: AIRFLOW__PSTT__SUCCESS_RATE_WARNING",
    "ALERT_SUCCESS_RATE_CRITICAL": "`pstt health` threshold: AIRFLOW__PSTT__SUCCESS_RATE_CRITICAL",
    "ALERT_LATENCY_P99_WARNING": "`pstt health` threshold: AIRFLOW__PSTT__LATENCY_P99_WARNING_MS",
    "ALERT_LATENCY_P99_CRITICAL": "`pstt health` threshold: AIRFLOW__PSTT__LATENCY_P99_CRITICAL_MS",
}

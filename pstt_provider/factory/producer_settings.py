"""
Which librdkafka producer properties a job spec may set in ``kafka_config.producer_config``.

Only tuning: batching, linger, compression, acknowledgements, idempotence, retries, timeouts, message and
queue sizes. Where the producer connects and with which credentials comes from the Airflow connection
alone, so a spec can neither send the connection's secrets to another host nor make the worker load a
library (``plugin.library.paths``) or read a file (``*.location``). Each property has its type and range,
checked at validation, so a typo or a value librdkafka would refuse is a spec problem, not a failed run.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_INT32_MAX = 2_147_483_647


@dataclass(frozen=True)
class Setting:
    """One allowed property: a whole number in ``[low, high]``, a boolean, or one of ``choices``."""

    what: str
    low: int = 0
    high: int = _INT32_MAX
    choices: tuple[str, ...] = ()
    boolean: bool = False

    @property
    def kind(self) -> str:
        if self.boolean:
            return "true or false"
        if self.choices:
            return " | ".join(self.choices)
        return f"{self.low:,} to {self.high:,}"

    def check(self, value: Any) -> Any:
        if self.boolean:
            if not isinstance(value, bool):
                raise ValueError(f"must be true or false, not {value!r}")
        elif self.choices:
            if str(value).lower() not in self.choices or isinstance(value, bool):
                raise ValueError(f"must be one of {', '.join(self.choices)}, not {value!r}")
        else:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"must be a whole number, not {value!r}")
            if not self.low <= value <= self.high:
                raise ValueError(f"must be from {self.low:,} to {self.high:,}, not {value:,}")
        return value


def _ms(what: str, low: int = 0, high: int = _INT32_MAX) -> Setting:
    return Setting(what, low, high)


_COMPRESSION = ("none", "gzip", "snappy", "lz4", "zstd")
ALLOWED: dict[str, Setting] = {
    "acks": Setting("acknowledgements each message needs", choices=("all", "-1", "0", "1")),
    "request.required.acks": Setting("alias of acks", choices=("all", "-1", "0", "1")),
    "enable.idempotence": Setting("exactly one copy per produced message, in order", boolean=True),
    "linger.ms": _ms("how long to wait for more messages before sending a batch", 0, 900_000),
    "queue.buffering.max.ms": _ms("alias of linger.ms", 0, 900_000),
    "batch.size": Setting("bytes in one batch of messages", 1, _INT32_MAX),
    "batch.num.messages": Setting("messages in one batch", 1, 1_000_000),
    "compression.type": Setting("compression of batches", choices=_COMPRESSION),
    "compression.codec": Setting("alias of compression.type", choices=_COMPRESSION),
    "compression.level": Setting("compression level (-1: the codec's default)", -1, 12),
    "message.max.bytes": Setting("largest request the producer sends", 1000, 1_000_000_000),
    "queue.buffering.max.messages": Setting("messages waiting for delivery at most", 1, _INT32_MAX),
    "queue.buffering.max.kbytes": Setting("KiB waiting for delivery at most", 1, _INT32_MAX),
    "max.in.flight.requests.per.connection": Setting("unacknowledged requests per broker", 1, 1_000_000),
    "max.in.flight": Setting("alias of max.in.flight.requests.per.connection", 1, 1_000_000),
    "retries": Setting("resends of a failed message", 0, _INT32_MAX),
    "message.send.max.retries": Setting("alias of retries", 0, _INT32_MAX),
    "retry.backoff.ms": _ms("wait before a resend", 1, 300_000),
    "retry.backoff.max.ms": _ms("longest wait before a resend", 1, 300_000),
    "message.timeout.ms": _ms("time a message may take to be acknowledged, resends included"),
    "delivery.timeout.ms": _ms("alias of message.timeout.ms"),
    "request.timeout.ms": _ms("time the broker has to acknowledge one request", 1, 900_000),
    "socket.timeout.ms": _ms("time a network request may take", 10, 300_000),
    "transaction.timeout.ms": _ms("exactly_once: time one transaction may stay open", 1000),
    "sticky.partitioning.linger.ms": _ms("how long keyless messages stick to one partition", 0, 900_000),
    "partitioner": Setting(
        "how keys map to partitions",
        choices=("random", "consistent", "consistent_random", "murmur2", "murmur2_random", "fnv1a", "fnv1a_random"),
    ),
}

_CONNECTION_PREFIXES = ("sasl.", "ssl.", "oauthbearer.", "ssl_", "enable.ssl", "https.")
_CONNECTION_KEYS = frozenset(
    {
        "bootstrap.servers",
        "metadata.broker.list",
        "security.protocol",
        "client.dns.lookup",
        "broker.address.family",
        "client.rack",
        "client.id",
        "socket.keepalive.enable",
    }
)
_MANAGED = frozenset({"transactional.id", "dr_cb", "dr_msg_cb", "error_cb", "logger", "stats_cb", "on_delivery"})


def refusal(key: str) -> str | None:
    """Why ``key`` may not be set in a spec, or None when it may (its value is checked by :func:`check`)."""
    if key in ALLOWED:
        return None
    if key == "plugin.library.paths" or key.endswith(".location") or key.endswith(".path"):
        return "loads a library or reads a file on the worker: not allowed in a job spec"
    if key in _CONNECTION_KEYS or key.startswith(_CONNECTION_PREFIXES):
        return (
            "addressing and security come from the Airflow Kafka connection only "
            "(kafka_config.connection_name): set it there"
        )
    if key in _MANAGED:
        return "set by pstt itself"
    close = difflib.get_close_matches(key, list(ALLOWED), n=1, cutoff=0.75)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"not a producer tuning property a job spec may set; {hint}see docs/job-spec.md for the allowed ones"


def check(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` unchanged when every key is allowed and every value in range; else ValueError naming each key."""
    problems = []
    for key, value in config.items():
        reason = refusal(key)
        if reason is None:
            try:
                ALLOWED[key].check(value)
            except ValueError as err:
                reason = str(err)
        if reason is not None:
            problems.append(f"{key}: {reason}")
    acks = str(config.get("acks", config.get("request.required.acks", "all"))).lower()
    if acks in ("0", "1") and config.get("enable.idempotence", True) is True:
        problems.append(f"acks: {acks} needs enable.idempotence: false (idempotence, the default, needs acks=all)")
    if problems:
        raise ValueError("; ".join(problems))
    return dict(config)

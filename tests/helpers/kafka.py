"""Topics of one test, reading a topic back to its end, and brokers a test may stop and restart."""

from __future__ import annotations

import logging
import os
import random
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from helpers import ROOT
from helpers.services import BOOTSTRAP

_READER_LOG = logging.getLogger("tests.kafka.reader")
_READER_LOG.addHandler(logging.NullHandler())
_READER_LOG.propagate = False
"""Where the reading consumer's own librdkafka lines go: nowhere, so a test counting librdkafka lines sees only
the clients it tests."""


def new_topic(bootstrap: str, partitions: int = 1, config: dict[str, str] | None = None) -> str:
    from confluent_kafka.admin import AdminClient, NewTopic

    name = f"test-{uuid.uuid4().hex[:12]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    # replication -1: the broker's default (1 on the single broker, 3 on the cluster)
    futures = admin.create_topics([NewTopic(name, partitions, -1, config=config or {})], operation_timeout=30)
    futures[name].result(timeout=30)
    return name


@dataclass(frozen=True)
class Record:
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    partition: int
    offset: int


def consume_all(
    topic: str,
    *,
    bootstrap: str = BOOTSTRAP,
    expected: int | None = None,
    timeout_s: float = 60.0,
    isolation: str = "read_committed",
) -> list[Record]:
    """
    Everything in ``topic`` from the beginning to the end it has when called, so nothing is waited for but
    the reads: whatever a producer had acknowledged by then is in, extras and duplicates included. The end of
    each partition is where the broker's fetch stops (``enable.partition.eof``): the last stable offset for
    read_committed, before any transaction still open, the high watermark for read_uncommitted.

    ``expected`` covers what is acknowledged but not readable yet (a committed transaction's markers are
    written after the commit returns): until that many records arrived, the end is read again, for at most
    ``timeout_s``.
    """
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "fetch.wait.max.ms": 10,  # the broker answers a fetch at the end at once, so the end is seen at once
            "isolation.level": isolation,
            "logger": _READER_LOG,
        }
    )
    records: list[Record] = []
    deadline = time.monotonic() + timeout_s
    try:
        partitions = _partitions(consumer, topic)
        consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING) for partition in partitions])
        at_end: set[int] = set()
        while time.monotonic() < deadline:
            for message in consumer.consume(num_messages=10_000, timeout=0.1):
                error = message.error()
                if error is not None and error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition())
                elif error is not None:
                    raise RuntimeError(f"consuming {topic}: {error}")
                else:
                    at_end.discard(message.partition())
                    records.append(
                        Record(
                            message.key(),
                            message.value(),
                            message.headers() or [],
                            message.partition(),
                            message.offset(),
                        )
                    )
            if at_end == set(partitions) and (expected is None or len(records) >= expected):
                break
    finally:
        consumer.close()
    return records


def _partitions(consumer, topic: str) -> list[int]:
    metadata = consumer.list_topics(topic, timeout=30).topics[topic]
    if metadata.error is not None:
        raise RuntimeError(f"reading {topic}: {metadata.error}")
    return sorted(metadata.partitions)


class PrivateBroker:
    """
    A broker of a test's own (ports base..base+2, files in a temp dir) that the test may stop and restart;
    ``auto_create_topics=False`` makes it refuse to create topics on first use, as many production clusters do;
    ``transaction_max_timeout_ms`` lowers the longest transaction it accepts (None: the broker's default, 15 min).
    """

    def __init__(
        self,
        home: Path,
        port: int,
        *,
        auto_create_topics: bool = True,
        transaction_max_timeout_ms: int | None = None,
    ) -> None:
        self.home = home
        self.port = port
        self.auto_create_topics = auto_create_topics
        self.transaction_max_timeout_ms = transaction_max_timeout_ms
        self.bootstrap = f"127.0.0.1:{port}"
        self.sasl_bootstrap = f"127.0.0.1:{port + 1}"
        self.ca_file = home / "tls" / "ca.crt"

    def _script(self, action: str) -> None:
        env = {
            **os.environ,
            "PSTT_KAFKA_HOME": str(self.home),
            "PSTT_KAFKA_PORT": str(self.port),
            "PSTT_KAFKA_AUTO_CREATE_TOPICS": str(self.auto_create_topics).lower(),
        }
        if self.transaction_max_timeout_ms is not None:
            env["PSTT_KAFKA_TRANSACTION_MAX_TIMEOUT_MS"] = str(self.transaction_max_timeout_ms)
        done = subprocess.run(
            [str(ROOT / "scripts" / "kafka.sh"), action], cwd=ROOT, env=env, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"kafka.sh {action} of the private broker on {self.bootstrap} failed ({done.returncode}):\n"
                f"{done.stdout}{done.stderr}"
            )

    def start(self) -> None:
        self._script("start")

    def stop(self) -> None:
        self._script("stop")


def free_port_triple() -> int:
    """
    The first of three consecutive free ports on 127.0.0.1, for a private broker: below the kernel's ephemeral
    range, so no outgoing connection and no port-0 server of another test can take one between here and the start.
    """
    ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(100):
        base = random.randrange(20_000, ephemeral_low - 3)
        sockets = []
        try:
            for port in range(base, base + 3):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no three consecutive free ports for a private broker")

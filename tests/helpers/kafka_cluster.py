"""
The three-broker cluster of ``scripts/kafka.sh cluster``: where it listens, crashing, stopping and starting one
node, finding a partition's leader, and waiting until every replica is back in sync.

Tests that crash nodes leave the cluster as they found it (``heal``): the next test sees three brokers, every
partition with its three replicas in sync, so no test inherits a leader election or a replica catching up. And
they have it to themselves (``exclusive``): a node one test crashes is a fault in every other test's run, whichever
pytest worker or session runs it.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from helpers import ROOT

SCRIPT = ROOT / "scripts" / "kafka.sh"
NODES = (1, 2, 3)
LOCK = Path(os.environ.get("PSTT_KAFKA_CLUSTER_HOME", ROOT / ".cache" / "kafka-cluster")) / "tests.lock"

PRODUCTION_SETTINGS: dict[str, Any] = {"acks": "all", "enable.idempotence": True, "compression.type": "lz4"}
"""What the seed asks of a production producer (KAFKA_ACKS=all, KAFKA_ENABLE_IDEMPOTENCE=true; lz4 of its codecs)."""


def _cluster(*args: str) -> str:
    done = subprocess.run(
        [str(SCRIPT), "cluster", *args], cwd=ROOT, env=dict(os.environ), capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"kafka.sh cluster {' '.join(args)} failed ({done.returncode}): {done.stdout}{done.stderr}")
    return done.stdout.strip()


class KafkaCluster:
    def __init__(self) -> None:
        self.bootstrap = _cluster("bootstrap")

    def start(self) -> None:
        _cluster("start")

    def kill(self, node: int) -> None:
        """SIGKILL: a crash, with no controlled shutdown to move leadership first."""
        _cluster("kill", str(node))

    def stop_broker(self, node: int) -> None:
        """A clean stop: the controller moves the node's leaderships and shrinks its ISRs before it exits."""
        _cluster("stop-broker", str(node))

    def start_broker(self, node: int) -> None:
        _cluster("start-broker", str(node))

    def admin(self):
        from confluent_kafka.admin import AdminClient

        return AdminClient({"bootstrap.servers": self.bootstrap})

    def leader(self, topic: str, partition: int = 0, timeout_s: float = 30.0) -> int:
        """
        The partition's leader, waited for: a topic just created may not be in the metadata of the broker asked yet
        (no partitions, or leader -1), since each broker learns of it from the controller on its own.
        """
        deadline = time.monotonic() + timeout_s
        admin = self.admin()
        while True:
            found = admin.list_topics(topic, timeout=10).topics[topic].partitions.get(partition)
            if found is not None and found.leader >= 0:
                return found.leader
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}[{partition}] has no leader after {timeout_s:.0f} s")
            time.sleep(0.2)

    def wait_in_sync(self, timeout_s: float = 180.0) -> None:
        """Until the cluster has its three brokers and every partition of every topic its three replicas in sync."""
        deadline = time.monotonic() + timeout_s
        admin = self.admin()
        lagging: list[str] = ["(no metadata yet)"]
        while time.monotonic() < deadline:
            try:
                metadata = admin.list_topics(timeout=10)
            except Exception as error:  # a node still starting answers with errors: ask again
                lagging = [str(error)]
            else:
                lagging = [
                    f"{name}[{number}] isr={sorted(partition.isrs)}"
                    for name, topic in metadata.topics.items()
                    for number, partition in topic.partitions.items()
                    if len(partition.isrs) < len(NODES) or partition.leader < 0
                ]
                if len(metadata.brokers) == len(NODES) and not lagging:
                    return
            time.sleep(0.5)
        raise TimeoutError(f"the cluster is not back in sync after {timeout_s:.0f} s: {lagging[:5]}")

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """The cluster to the caller alone, until it leaves: other pytest workers and sessions wait here."""
        LOCK.parent.mkdir(parents=True, exist_ok=True)
        with LOCK.open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def heal(self) -> None:
        """Every node running again and every replica in sync: what a test that crashed nodes leaves behind."""
        self.start()
        self.wait_in_sync()

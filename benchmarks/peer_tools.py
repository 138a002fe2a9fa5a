"""
The peer tools: Kafka Connect with Aiven's JDBC source connector, and Benthos, each reading the same table into
a fresh topic of the same broker. Built by the scripts in benchmarks/peers/ (``make bench-peers``) into .cache/peers.

Neither tool says when it has sent every row (Connect's bulk mode polls the table for ever), so the clock runs
from the tool's start until the topic's end offsets reach the table's row count; the time of its first message
is kept too, since a JVM's start-up is not the work a long-running Connect worker does per run.
"""

from __future__ import annotations

import resource
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import settings
from source import PG

PEERS = settings.ROOT / ".cache" / "peers"
CONNECT_HOME = PEERS / "connect"
BENTHOS = PEERS / "benthos" / "benthos"
PEER_TIMEOUT_S = 900.0
OFFSETS_POLL_S = 0.05
CONNECT_BATCH_ROWS = 1_000
CONNECT_FETCH_ROWS = 10_000
BENTHOS_BATCH = 1_000


class PeerNotBuiltError(RuntimeError):
    """The peer's binary is absent: ``make bench-peers`` builds it."""


def missing(name: str) -> str | None:
    """Why the peer variant ``name`` cannot run here, or None when it can (or is not a peer)."""
    needs = {
        "connect_jdbc_source": (CONNECT_HOME / "classpath.txt", "benchmarks/peers/connect_jdbc.sh"),
        "benthos_sql": (BENTHOS, "benchmarks/peers/benthos.sh"),
    }
    if name not in needs:
        return None
    path, script = needs[name]
    return None if path.exists() else f"not built ({path.relative_to(settings.ROOT)} absent: run {script})"


def connect_jdbc_source(select: str, topic: str, rows: int) -> tuple[int, dict[str, Any]]:
    """
    Connect standalone, one task, bulk mode over ``select``: batch.max.rows 1,000, the PostgreSQL driver
    fetching 10,000 rows per round trip, JSON without schemas, the key BARCODE (ValueToKey + ExtractField),
    the producer with pstt's acks, idempotence, linger and compression.
    """
    if reason := missing("connect_jdbc_source"):
        raise PeerNotBuiltError(reason)
    producer = settings.producer_config()
    with tempfile.TemporaryDirectory(prefix="pstt-bench-connect-") as tmp:
        work = Path(tmp)
        worker = {
            "bootstrap.servers": settings.BOOTSTRAP,
            "key.converter": "org.apache.kafka.connect.json.JsonConverter",
            "key.converter.schemas.enable": "false",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter",
            "value.converter.schemas.enable": "false",
            # Exact numbers as JSON numbers, as pstt writes them; the converter's default is base64 bytes.
            "value.converter.decimal.format": "NUMERIC",
            "offset.storage.file.filename": str(work / "offsets"),
            "offset.flush.interval.ms": "60000",
            "plugin.discovery": "service_load",
            "listeners": f"http://127.0.0.1:{_free_port()}",
            "producer.acks": str(producer["acks"]),
            "producer.enable.idempotence": str(producer["enable.idempotence"]).lower(),
            "producer.linger.ms": str(producer["linger.ms"]),
            "producer.compression.type": str(producer["compression.type"]),
        }
        connector = {
            "name": "pstt-bench-jdbc",
            "connector.class": "io.aiven.connect.jdbc.JdbcSourceConnector",
            "tasks.max": "1",
            "connection.url": f"jdbc:postgresql://{PG['host']}:{PG['port']}/{PG['dbname']}"
            f"?defaultRowFetchSize={CONNECT_FETCH_ROWS}",
            "connection.user": PG["user"],
            "connection.password": PG["password"],
            "mode": "bulk",
            "query": select,
            # In query mode the topic is the prefix itself.
            "topic.prefix": topic,
            "batch.max.rows": str(CONNECT_BATCH_ROWS),
            # Bulk mode reads the table again after this long: once is what is measured.
            "poll.interval.ms": "86400000",
            "transforms": "createKey,extractKey",
            "transforms.createKey.type": "org.apache.kafka.connect.transforms.ValueToKey",
            "transforms.createKey.fields": "BARCODE",
            "transforms.extractKey.type": "org.apache.kafka.connect.transforms.ExtractField$Key",
            "transforms.extractKey.field": "BARCODE",
        }
        _write_properties(work / "worker.properties", worker)
        _write_properties(work / "connector.properties", connector)
        classpath = (CONNECT_HOME / "classpath.txt").read_text().strip().rstrip(":")
        command = [
            "java",
            "-cp",
            classpath,
            "org.apache.kafka.connect.cli.ConnectStandalone",
            str(work / "worker.properties"),
            str(work / "connector.properties"),
        ]
        return _run_peer(command, topic, rows, work / "connect.log", stops_by_itself=False)


def benthos_sql(select: str, topic: str, rows: int) -> tuple[int, dict[str, Any]]:
    """Benthos sql_raw (postgres, lib/pq) into kafka_franz, batches of 1,000, the key BARCODE."""
    if reason := missing("benthos_sql"):
        raise PeerNotBuiltError(reason)
    producer = settings.producer_config()
    dsn = f"postgres://{PG['user']}:{PG['password']}@{PG['host']}:{PG['port']}/{PG['dbname']}?sslmode=disable"
    config = f"""
logger:
  level: WARN
input:
  sql_raw:
    driver: postgres
    dsn: "{dsn}"
    query: '{select}'
output:
  kafka_franz:
    seed_brokers: ["{settings.BOOTSTRAP}"]
    topic: "{topic}"
    key: '${{! this.BARCODE }}'
    compression: {producer["compression.type"]}
    batching:
      count: {BENTHOS_BATCH}
      period: {producer["linger.ms"]}ms
"""
    with tempfile.TemporaryDirectory(prefix="pstt-bench-benthos-") as tmp:
        work = Path(tmp)
        (work / "benthos.yaml").write_text(config)
        command = [str(BENTHOS), "-c", str(work / "benthos.yaml")]
        return _run_peer(command, topic, rows, work / "benthos.log", stops_by_itself=True)


def _run_peer(
    command: list[str], topic: str, rows: int, log: Path, stops_by_itself: bool
) -> tuple[int, dict[str, Any]]:
    """Runs the tool until ``topic`` holds ``rows`` messages: the messages, and the figures of the tool's run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with log.open("wb") as log_file:
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            first, done, peak_rss = _await_offsets(topic, rows, process, log)
            ended = time.monotonic()
        finally:
            if not stops_by_itself or process.poll() is None:
                process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    seconds = ended - started
    return done, {
        "seconds": seconds,
        "cpu_s": cpu,
        "main_thread_cpu_s": 0.0,
        "peak_rss_mb": peak_rss,
        "first_message_s": round(first - started, 3),
        "rows_per_s_from_first_message": round(done / (ended - first), 1),
    }


def _await_offsets(topic: str, rows: int, process: subprocess.Popen[bytes], log: Path) -> tuple[float, int, float]:
    """(time of the first message, messages, the tool's peak RSS MB) once the topic's end offsets reach ``rows``."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": settings.BOOTSTRAP, "group.id": "pstt-bench-offsets", "log_level": 3})
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        assignment = [TopicPartition(topic, p) for p in partitions]
        first: float | None = None
        peak = 0.0
        deadline = time.monotonic() + PEER_TIMEOUT_S
        while True:
            exited = process.poll() is not None
            total = sum(consumer.get_watermark_offsets(tp, timeout=10, cached=False)[1] for tp in assignment)
            now = time.monotonic()
            if total and first is None:
                first = now
            peak = max(peak, _peak_rss_mb(process.pid))
            if total >= rows and first is not None:
                return first, total, peak
            if exited:  # and the offsets read after its exit fall short
                raise RuntimeError(
                    f"{Path(process.args[0]).name} exited {process.returncode} at {total:,}/{rows:,} "
                    f"messages: {_tail(log)}"
                )
            if now > deadline:
                raise TimeoutError(f"{topic} held {total:,}/{rows:,} messages after {PEER_TIMEOUT_S:.0f}s")
            time.sleep(OFFSETS_POLL_S)
    finally:
        consumer.close()


def _peak_rss_mb(pid: int) -> float:
    try:
        line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return 0.0
    return int(line.split()[1]) / 1024


def _tail(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return " | ".join(lines[-3:])[:600] if lines else "no output"


def _write_properties(path: Path, values: dict[str, str]) -> None:
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))


def _free_port() -> int:
    """A port for the worker's REST listener, which the benchmark does not use but Connect always opens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

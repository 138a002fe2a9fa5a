"""
Session-wide real components for the tests: the local Kafka broker, PostgreSQL, an isolated Airflow home.

AIRFLOW_HOME is set before anything imports Airflow, so no test ever touches a developer's own Airflow.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BOOTSTRAP = "127.0.0.1:9092"
SASL_BOOTSTRAP = "127.0.0.1:9093"
SCRAM_USER = os.environ.get("PSTT_KAFKA_SCRAM_USER", "pstt")
SCRAM_PASSWORD = os.environ.get("PSTT_KAFKA_SCRAM_PASSWORD", "pstt-secret")
KAFKA_CA = ROOT / ".cache" / "kafka" / "tls" / "ca.crt"
PG = {
    "host": "127.0.0.1",
    "port": 5432,
    "user": os.environ.get("PSTT_PG_USER", "pstt"),
    "password": os.environ.get("PSTT_PG_PASSWORD", "pstt"),
    "dbname": os.environ.get("PSTT_PG_DB", "pstt"),
}

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="pstt-airflow-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME}/airflow.db"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ.setdefault(
    "AIRFLOW_CONN_KAFKA_DEFAULT", f'{{"conn_type": "kafka", "extra": {{"bootstrap.servers": "{BOOTSTRAP}"}}}}'
)
os.environ.setdefault(
    "AIRFLOW_CONN_PSTT_TEST_PG",
    f'{{"conn_type": "postgres", "host": "{PG["host"]}", "port": {PG["port"]}, "login": "{PG["user"]}", '
    f'"password": "{PG["password"]}", "schema": "{PG["dbname"]}"}}',
)


def _run_script(script: str, *args: str) -> None:
    subprocess.run([str(ROOT / "scripts" / script), *args], check=True, cwd=ROOT)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """The local broker, started through scripts/kafka.sh when it is not running yet."""
    _run_script("kafka.sh", "start")
    return BOOTSTRAP


@pytest.fixture(scope="session")
def postgres() -> dict:
    """Connection parameters of the local PostgreSQL, started through scripts/postgres.sh."""
    _run_script("postgres.sh", "start")
    return dict(PG)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """An initialised SQLite metadata DB in this session's private AIRFLOW_HOME."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
    )
    return _AIRFLOW_HOME


def new_topic(bootstrap: str, partitions: int = 1, config: dict[str, str] | None = None) -> str:
    from confluent_kafka.admin import AdminClient, NewTopic

    name = f"test-{uuid.uuid4().hex[:12]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, partitions, 1, config=config or {})], operation_timeout=30)
    futures[name].result(timeout=30)
    return name


@pytest.fixture
def topic(kafka_bootstrap: str) -> str:
    """A fresh single-partition topic for one test."""
    return new_topic(kafka_bootstrap)


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
    idle_s: float = 2.0,
    timeout_s: float = 60.0,
    isolation: str = "read_committed",
) -> list[Record]:
    """
    Everything in ``topic`` from the beginning: stops once ``expected`` records arrived (then waits
    ``idle_s`` more to catch extras), or after ``idle_s`` without a record when no count is expected.
    """
    from confluent_kafka import Consumer, KafkaError

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": isolation,
        }
    )
    consumer.subscribe([topic])
    records: list[Record] = []
    deadline = time.monotonic() + timeout_s
    last_record = time.monotonic()
    try:
        while time.monotonic() < deadline:
            batch = consumer.consume(num_messages=10_000, timeout=0.5)
            for message in batch:
                if message.error():
                    if message.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise RuntimeError(f"consuming {topic}: {message.error()}")
                records.append(
                    Record(
                        message.key(),
                        message.value(),
                        message.headers() or [],
                        message.partition(),
                        message.offset(),
                    )
                )
            if batch:
                last_record = time.monotonic()
            waited_out = time.monotonic() - last_record >= idle_s
            if expected is not None and len(records) >= expected and waited_out:
                break
            if expected is None and waited_out and (records or time.monotonic() - last_record >= idle_s * 3):
                break
    finally:
        consumer.close()
    return records


@pytest.fixture
def consume() -> Callable[..., list[Record]]:
    return consume_all


@pytest.fixture
def pg_conn(postgres: dict) -> Iterator:
    import psycopg

    conn = psycopg.connect(**postgres, autocommit=True)
    yield conn
    conn.close()


class PrivateBroker:
    """A broker of one test's own (ports base..base+2, files in a temp dir) that the test may stop and restart."""

    def __init__(self, home: Path, port: int) -> None:
        self.home = home
        self.port = port
        self.bootstrap = f"127.0.0.1:{port}"
        self.sasl_bootstrap = f"127.0.0.1:{port + 1}"
        self.ca_file = home / "tls" / "ca.crt"

    def _script(self, action: str) -> None:
        env = {**os.environ, "PSTT_KAFKA_HOME": str(self.home), "PSTT_KAFKA_PORT": str(self.port)}
        subprocess.run([str(ROOT / "scripts" / "kafka.sh"), action], check=True, cwd=ROOT, env=env)

    def start(self) -> None:
        self._script("start")

    def stop(self) -> None:
        self._script("stop")


def _free_port_triple() -> int:
    import random
    import socket

    for _ in range(100):
        base = random.randrange(20_000, 40_000)
        try:
            sockets = []
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


@pytest.fixture
def private_broker(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str) -> Iterator[PrivateBroker]:
    """A started private broker on three free ports (PLAINTEXT, SASL_SSL, controller), stopped after the test."""
    broker = PrivateBroker(tmp_path_factory.mktemp("broker"), _free_port_triple())
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()

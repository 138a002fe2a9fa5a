"""
The real services the integration tests run against, each made once and shared where sharing is safe.

- the local Kafka broker and PostgreSQL, started through scripts/kafka.sh and scripts/postgres.sh when not
  running yet, behind the Airflow connections ``kafka_default`` and ``pstt_test_pg``;
- one metadata DB migrated per run, copied into every Airflow home a test needs (``airflow_home``), the
  session's own AIRFLOW_HOME (``airflow_db``) among them;
- a fresh topic per test and ``consume``, which reads a topic to its end without idling;
- source tables of a test's own: ``new_pg_table`` in PostgreSQL, ``new_sqlite_source`` in a SQLite file;
- private brokers a test may stop and restart;
- the three-broker cluster (``kafka_cluster``), started once for the tests that ask for it, and ``cluster``, the
  same to one test at a time and healed after each test that crashes its nodes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import subprocess
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from helpers import ROOT
from helpers.airflow_home import copy_home, migrate
from helpers.kafka import PrivateBroker, Record, consume_all, free_port_triple, new_topic
from helpers.kafka_cluster import PRODUCTION_SETTINGS, KafkaCluster
from helpers.services import BOOTSTRAP, PG, airflow_connections

for _name, _value in airflow_connections().items():
    os.environ.setdefault(_name, _value)


def _run_script(script: str, *args: str) -> None:
    subprocess.run([str(ROOT / "scripts" / script), *args], check=True, cwd=ROOT)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """The local broker, started through scripts/kafka.sh when it is not running yet."""
    _run_script("kafka.sh", "start")
    return BOOTSTRAP


@pytest.fixture(scope="session")
def kafka_cluster() -> KafkaCluster:
    """
    The three-broker cluster, started through ``scripts/kafka.sh cluster start`` when not running, and left running
    as the single broker is: another test session (a developer's, a helper's) may be using it.
    """
    cluster = KafkaCluster()
    with cluster.exclusive():  # not while another worker's test has a node down on purpose
        cluster.start()
        cluster.wait_in_sync()
    return cluster


@pytest.fixture
def cluster(kafka_cluster: KafkaCluster) -> Iterator[KafkaCluster]:
    """
    The cluster for a test that crashes or stops its nodes: the test has it to itself (other workers' cluster
    tests wait), and leaves every node up and every replica in sync.
    """
    with kafka_cluster.exclusive():
        yield kafka_cluster
        kafka_cluster.heal()


@pytest.fixture
def cluster_producer_config(kafka_cluster: KafkaCluster) -> dict:
    """A producer's settings for the cluster as the seed's production runs it: acks=all, idempotence, lz4."""
    return {"bootstrap.servers": kafka_cluster.bootstrap, **PRODUCTION_SETTINGS}


@pytest.fixture(scope="session")
def postgres() -> dict:
    """Connection parameters of the local PostgreSQL, started through scripts/postgres.sh."""
    _run_script("postgres.sh", "start")
    return dict(PG)


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """
    The metadata DB ``airflow db migrate`` makes, made once for the run and copied into each home: pytest-xdist's
    workers share it through their common temp folder, the first one migrating while the others wait on a lock.
    """
    shared = tmp_path_factory.getbasetemp()
    if "PYTEST_XDIST_WORKER" in os.environ:
        shared = shared.parent  # the run's folder above each worker's own
    db = shared / "migrated-airflow.db"
    with (shared / "migrated-airflow.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not db.exists():
            os.replace(migrate(shared / "migrating-airflow"), db)
    return db


@pytest.fixture(scope="session")
def airflow_home(migrated_db: Path) -> Callable[[Path], Path]:
    """Makes a folder an Airflow home of a test's own: ``dags/`` and a fresh copy of the migrated DB."""
    return lambda home: copy_home(migrated_db, home)


@pytest.fixture(scope="session")
def airflow_db(airflow_home: Callable[[Path], Path]) -> Path:
    """The session's own AIRFLOW_HOME (set in tests/conftest.py) with an initialised SQLite metadata DB."""
    return airflow_home(Path(os.environ["AIRFLOW_HOME"]))


@pytest.fixture
def topic(kafka_bootstrap: str) -> str:
    """A fresh single-partition topic for one test."""
    return new_topic(kafka_bootstrap)


@pytest.fixture
def consume() -> Callable[..., list[Record]]:
    return consume_all


@pytest.fixture
def pg_conn(postgres: dict) -> Iterator:
    import psycopg

    conn = psycopg.connect(**postgres, autocommit=True)
    yield conn
    conn.close()


@pytest.fixture
def new_pg_table(pg_conn) -> Iterator[Callable[[str, str], str]]:
    """
    Makes PostgreSQL tables of the test's own, dropped after it: ``new_pg_table("pstt_rel", "AS SELECT ...")`` or
    ``new_pg_table("pstt_binds", "(id int, note text)")`` runs ``CREATE TABLE <prefix>_<random> <definition>``
    and returns the name.
    """
    made: list[str] = []

    def make(prefix: str, definition: str) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        pg_conn.execute(f"CREATE TABLE {name} {definition}")
        made.append(name)
        return name

    yield make
    for name in made:
        pg_conn.execute(f"DROP TABLE IF EXISTS {name}")


class SqliteSource(NamedTuple):
    conn_id: str
    path: Path


@pytest.fixture
def new_sqlite_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str, Iterable[tuple]], SqliteSource]:
    """
    Makes a SQLite database of one table behind an Airflow connection of its own for the test:
    ``new_sqlite_source("shipments (id INTEGER, note TEXT)", rows)``.
    """

    def make(table: str, rows: Iterable[tuple]) -> SqliteSource:
        rows = list(rows)
        path = tmp_path / f"source-{uuid.uuid4().hex[:8]}.db"
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.execute(f"CREATE TABLE {table}")
            name = table.split("(", 1)[0].strip()
            db.executemany(f"INSERT INTO {name} VALUES ({', '.join('?' * len(rows[0]))})", rows)
            db.commit()
        conn_id = f"pstt_sqlite_{uuid.uuid4().hex[:8]}"
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "sqlite", "host": str(path)}))
        return SqliteSource(conn_id, path)

    return make


def _started(broker: PrivateBroker) -> Iterator[PrivateBroker]:
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def private_broker(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str) -> Iterator[PrivateBroker]:
    """A started private broker on three free ports (PLAINTEXT, SASL_SSL, controller), stopped after the test."""
    yield from _started(PrivateBroker(tmp_path_factory.mktemp("broker"), free_port_triple()))


@pytest.fixture(scope="module")
def no_auto_create_broker(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str) -> Iterator[PrivateBroker]:
    """
    A private broker with ``auto.create.topics.enable=false``, shared by a module's tests: they only make topics
    of their own on it, never stop it.
    """
    home = tmp_path_factory.mktemp("no-auto-create")
    yield from _started(PrivateBroker(home, free_port_triple(), auto_create_topics=False))


@pytest.fixture(scope="session")
def schema_registry() -> str:
    """
    The local Schema Registry, started through scripts/schema-registry.sh when not running (in memory: subjects
    live as long as it runs), behind the Airflow connection ``SCHEMA_REGISTRY_CONN_ID``; its URL.
    """
    from helpers.schema_registry import connection_env, start_schema_registry

    url = start_schema_registry()
    for name, value in connection_env(url).items():
        os.environ.setdefault(name, value)
    return url

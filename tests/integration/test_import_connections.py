"""
``pstt import-connections`` end to end: the seed's connections.json and a production .env become connections that
``airflow connections import`` loads, that librdkafka accepts, and that reach the local SASL_SSL listener.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer
from helpers import ROOT
from helpers.kafka import new_topic
from helpers.services import KAFKA_CA, SASL_BOOTSTRAP, SCRAM_PASSWORD, SCRAM_USER

SEED = ROOT / "tests" / "fixtures" / "seed"
PROD_PASSWORD = "prod-" + uuid.uuid4().hex
SMTP_PASSWORD = "smtp-" + uuid.uuid4().hex


def pstt(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pstt_provider.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
        timeout=120,
    )


@pytest.fixture
def seed_environ(tmp_path: Path) -> dict[str, str]:
    """The secrets and certificate folder the production .env refers to, as an operator would export them."""
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "ca-cert.pem").write_bytes(KAFKA_CA.read_bytes())
    return {"KAFKA_PASSWORD_PROD": PROD_PASSWORD, "SMTP_PASSWORD": SMTP_PASSWORD, "PSTT_CERTS_DIR": str(certs)}


def import_seed(seed_environ: dict[str, str], *flags: str) -> subprocess.CompletedProcess:
    return pstt(
        "import-connections",
        str(SEED / "connections.json"),
        "--env-file",
        str(SEED / "production.env"),
        *flags,
        env=seed_environ,
    )


def test_the_seed_connections_become_producers_librdkafka_accepts(seed_environ, kafka_bootstrap):
    result = import_seed(seed_environ, "--show-secrets")
    assert result.returncode == 0, result.stderr
    connections = json.loads(result.stdout)
    produzione = connections["produzione"]["extra"]
    assert produzione["sasl.password"] == PROD_PASSWORD
    for conn_id in ("development", "collaudo", "produzione", "kafka_default"):
        assert connections[conn_id]["conn_type"] == "kafka"
        # The only change: the example.com brokers become the local one, so no traffic leaves 127.0.0.1.
        producer = Producer({**connections[conn_id]["extra"], "bootstrap.servers": kafka_bootstrap})
        assert producer.flush(0) == 0


def test_the_printed_file_is_what_airflow_connections_import_loads(seed_environ, tmp_path):
    from airflow.secrets.local_filesystem import load_connections_dict

    result = import_seed(seed_environ, "--show-secrets")
    path = tmp_path / "connections.json"
    path.write_text(result.stdout)
    loaded = load_connections_dict(str(path))
    assert loaded["produzione"].conn_type == "kafka"
    assert loaded["produzione"].extra_dejson["sasl.mechanism"] == "SCRAM-SHA-256"
    assert loaded["smtp_default"].password == SMTP_PASSWORD


def test_secrets_are_never_printed_unless_asked(seed_environ):
    result = import_seed(seed_environ)
    assert result.returncode == 0, result.stderr
    assert PROD_PASSWORD not in result.stdout + result.stderr
    assert SMTP_PASSWORD not in result.stdout + result.stderr
    assert json.loads(result.stdout)["produzione"]["extra"]["sasl.password"] == "***"
    assert "--show-secrets" in result.stderr


def test_an_unset_secret_stops_the_import_and_names_it(seed_environ):
    del seed_environ["KAFKA_PASSWORD_PROD"]
    result = import_seed(seed_environ)
    assert result.returncode == 1
    assert "${KAFKA_PASSWORD_PROD}, which is not set" in result.stderr
    assert result.stdout == ""


def test_an_imported_connection_publishes_through_the_sasl_ssl_listener(tmp_path, kafka_bootstrap, consume):
    document = {
        "kafka_connections": {
            "locale": {"name": "Kafka locale", "bootstrap_servers": SASL_BOOTSTRAP, "security_protocol": "SASL_SSL"}
        }
    }
    (tmp_path / "connections.json").write_text(json.dumps(document))
    (tmp_path / ".env").write_text(
        "KAFKA_SASL_MECHANISM=SCRAM-SHA-256\n"
        f"KAFKA_SASL_USERNAME={SCRAM_USER}\n"
        "KAFKA_SASL_PASSWORD=${PSTT_TEST_SCRAM_PASSWORD}\n"
        f"KAFKA_SSL_CAFILE={KAFKA_CA}\n"
        "KAFKA_SSL_CHECK_HOSTNAME=true\n"
        "KAFKA_COMPRESSION_TYPE=snappy\nKAFKA_ENABLE_IDEMPOTENCE=true\nKAFKA_ACKS=all\n"
        "KAFKA_LINGER_MS=10\nKAFKA_BATCH_SIZE=32768\n"
    )
    result = pstt(
        "import-connections",
        str(tmp_path / "connections.json"),
        "--env-file",
        str(tmp_path / ".env"),
        "--show-secrets",
        env={"PSTT_TEST_SCRAM_PASSWORD": SCRAM_PASSWORD},
    )
    assert result.returncode == 0, result.stderr
    extra = json.loads(result.stdout)["locale"]["extra"]
    topic = new_topic(kafka_bootstrap)
    failures = []
    producer = Producer(extra)
    for n in range(20):
        producer.produce(topic, key=f"k{n}", value=f"v{n}", on_delivery=lambda e, _m: e and failures.append(e))
    assert producer.flush(60) == 0
    assert failures == []
    assert sorted(record.key for record in consume(topic, expected=20)) == sorted(f"k{n}".encode() for n in range(20))


def stored_extra(conn_id: str) -> dict:
    """The connection's extra as Airflow reads it back, in a fresh process that loads the Fernet key like a worker."""
    code = (
        "import json, sys; from airflow.models.connection import Connection; "
        "print(json.dumps(Connection.get_connection_from_secrets(sys.argv[1]).extra_dejson))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, conn_id], capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_create_writes_the_connections_to_airflows_database_and_keeps_existing_ones(seed_environ, airflow_db):
    result = import_seed(seed_environ, "--create")
    assert result.returncode == 0, result.stderr
    assert "created produzione (kafka)" in result.stdout
    assert PROD_PASSWORD not in result.stdout + result.stderr
    stored = stored_extra("produzione")
    assert stored["sasl.password"] == PROD_PASSWORD
    assert stored["queue.buffering.max.kbytes"] == 32768

    seed_environ["KAFKA_PASSWORD_PROD"] = "rotated-" + PROD_PASSWORD
    again = import_seed(seed_environ, "--create")
    assert "kept produzione: it already exists" in again.stdout
    assert stored_extra("produzione")["sasl.password"] == PROD_PASSWORD

    replaced = import_seed(seed_environ, "--create", "--overwrite")
    assert "replaced produzione (kafka)" in replaced.stdout
    assert stored_extra("produzione")["sasl.password"] == "rotated-" + PROD_PASSWORD


def test_airflow_connections_import_loads_the_printed_file(seed_environ, airflow_db, tmp_path):
    result = import_seed(seed_environ, "--show-secrets")
    path = tmp_path / "airflow-connections.json"
    path.write_text(result.stdout)
    imported = subprocess.run(
        [sys.executable, "-m", "airflow", "connections", "import", str(path), "--overwrite"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert imported.returncode == 0, imported.stdout + imported.stderr
    for conn_id in ("development", "collaudo", "produzione", "kafka_default", "smtp_default"):
        assert f"Imported connection {conn_id}" in imported.stdout
    assert stored_extra("collaudo")["sasl.mechanism"] == "PLAIN"


def test_create_hands_airflows_importer_a_file_only_this_user_reads_and_deletes_it(airflow_db, monkeypatch):
    from airflow.cli.commands import connection_command

    from pstt_provider.connections.airflow_import import import_connections

    real_import = connection_command.connections_import
    seen = {}

    def watched_import(args):
        path = Path(args.file)
        seen.update(path=path, content=json.loads(path.read_text()))
        seen.update(modes=(stat.S_IMODE(path.stat().st_mode), stat.S_IMODE(path.parent.stat().st_mode)))
        real_import(args)

    monkeypatch.setattr(connection_command, "connections_import", watched_import)
    conn_id = "private_" + uuid.uuid4().hex
    connection = {
        "conn_type": "kafka",
        "extra": {"bootstrap.servers": "127.0.0.1:9092", "sasl.password": PROD_PASSWORD},
    }

    assert import_connections({conn_id: connection}, overwrite=False) == [f"created {conn_id} (kafka)"]
    assert seen["content"] == {conn_id: connection}
    assert seen["modes"] == (0o600, 0o700)
    assert not seen["path"].parent.exists()
    assert stored_extra(conn_id)["sasl.password"] == PROD_PASSWORD


def test_create_without_airflows_database_says_to_migrate_it_first(tmp_path):
    (tmp_path / "connections.json").write_text('{"kafka_connections": {"k": {"bootstrap_servers": "127.0.0.1:9092"}}}')
    fresh_airflow = {"AIRFLOW_HOME": str(tmp_path), "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path}/a.db"}
    result = pstt("import-connections", str(tmp_path / "connections.json"), "--create", env=fresh_airflow)
    assert result.returncode == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("pstt import-connections: cannot read Airflow's connections (no such table: connection)")
    assert "`airflow db migrate`" in line


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"connections": [{"name": "caffè", "dsn": "x"}]}'.encode("latin-1"), "connections.json:1: not UTF-8 text"),
        (b"[" * 100_000 + b"]" * 100_000, "connections.json: the JSON is nested too deeply"),
        (
            b'{"kafka_connections": {"default": {"bootstrap_servers": "a:9092", "bootstrap_servers": "b:9092"}}}',
            "connections.json: kafka_connections.default.bootstrap_servers appears twice",
        ),
    ],
)
def test_an_unreadable_connections_file_is_one_line_naming_it_and_exit_1(tmp_path, content, message):
    (tmp_path / "connections.json").write_bytes(content)
    result = pstt("import-connections", str(tmp_path / "connections.json"))
    assert result.returncode == 1
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert message in result.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ('KAFKA_LINGER_MS=5\nKAFKA_CLIENT_ID="pstt\n', ".env:2: cannot parse the value of KAFKA_CLIENT_ID"),
        ("KAFKA_BATCH_SIZE=-5\n", ".env: KAFKA_BATCH_SIZE: expected a whole number from 1 to 2147483647, got '-5'"),
    ],
)
def test_a_bad_env_file_is_one_line_naming_file_and_line_or_variable(tmp_path, env, message):
    (tmp_path / "connections.json").write_text("{}")
    (tmp_path / ".env").write_text(env)
    result = pstt("import-connections", str(tmp_path / "connections.json"), "--env-file", str(tmp_path / ".env"))
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"pstt import-connections: {tmp_path}/{message}")

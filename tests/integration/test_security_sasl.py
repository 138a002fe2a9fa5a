"""
The broker's second listener (SASL_SSL, SCRAM-SHA-256/512, a CA of the script's own) as production uses it.

Connections are Airflow ``kafka`` connections whose extra is the librdkafka dict, set through AIRFLOW_CONN_*
for the test only. Every successful case reads the messages back from the broker; every failing case checks
that the failure says what is wrong and arrives within a bound, and that the password is never logged.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

import pytest
from confluent_kafka import KafkaError, Producer
from helpers.kafka import new_topic
from helpers.operator_context import RecordingTaskInstance, context_for
from helpers.services import KAFKA_CA, SASL_BOOTSTRAP, SCRAM_PASSWORD, SCRAM_USER

from pstt_provider.exceptions import KafkaAuthenticationError
from pstt_provider.hooks.kafka import PsttKafkaHook
from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator

MECHANISMS = ["SCRAM-SHA-256", "SCRAM-SHA-512"]
AUTH_ERROR_BOUND_S = 30.0
WRONG_PASSWORD = "not-the-" + SCRAM_PASSWORD


def sasl_extra(mechanism: str, password: str = SCRAM_PASSWORD, ca_file: str | None = str(KAFKA_CA)) -> dict:
    extra = {
        "bootstrap.servers": SASL_BOOTSTRAP,
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": mechanism,
        "sasl.username": SCRAM_USER,
        "sasl.password": password,
    }
    if ca_file is not None:
        extra["ssl.ca.location"] = ca_file
    return extra


def set_kafka_connection(monkeypatch: pytest.MonkeyPatch, extra: dict) -> str:
    conn_id = f"pstt_sasl_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "kafka", "extra": extra}))
    return conn_id


class ClientErrors:
    """Collects librdkafka's error callbacks, which the client only serves while it is polled."""

    def __init__(self) -> None:
        self.errors: list[KafkaError] = []

    def __call__(self, error: KafkaError) -> None:
        self.errors.append(error)

    def wait_for(self, producer: Producer, code: int, timeout_s: float) -> KafkaError | None:
        """The first error of ``code``, polling ``producer`` for at most ``timeout_s``; None if none came."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            producer.poll(0.2)
            for error in self.errors:
                if error.code() == code:
                    return error
        return None


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_hook_publishes_through_the_sasl_ssl_listener_with_the_ca_file(
    mechanism, kafka_bootstrap, consume, monkeypatch, caplog
):
    caplog.set_level(logging.DEBUG)
    topic = new_topic(kafka_bootstrap)
    conn_id = set_kafka_connection(monkeypatch, sasl_extra(mechanism))
    producer = PsttKafkaHook(conn_id).get_producer()
    failures: list[KafkaError] = []
    for n in range(200):
        producer.produce(topic, key=f"k{n}", value=f"v{n}", on_delivery=lambda e, _m: failures.append(e) if e else None)
    assert producer.flush(60) == 0
    assert failures == []

    records = consume(topic, bootstrap=kafka_bootstrap, expected=200)

    assert sorted(r.key for r in records) == sorted(f"k{n}".encode() for n in range(200))
    assert SCRAM_PASSWORD not in caplog.text


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_wrong_password_is_reported_as_an_authentication_error_within_a_bound(
    mechanism, kafka_bootstrap, consume, monkeypatch, caplog, capfd
):
    caplog.set_level(logging.DEBUG)
    topic = new_topic(kafka_bootstrap)
    errors = ClientErrors()
    conn_id = set_kafka_connection(monkeypatch, sasl_extra(mechanism, password=WRONG_PASSWORD))
    producer = PsttKafkaHook(conn_id).get_producer({"error_cb": errors, "message.timeout.ms": 5_000})
    undelivered: list[KafkaError] = []
    producer.produce(topic, key="k", value="v", on_delivery=lambda e, _m: undelivered.append(e))

    auth_error = errors.wait_for(producer, KafkaError._AUTHENTICATION, AUTH_ERROR_BOUND_S)
    producer.flush(30)

    assert auth_error is not None, f"no authentication error within {AUTH_ERROR_BOUND_S}s; got {errors.errors}"
    assert "SASL authentication error" in auth_error.str()
    assert "invalid credentials" in auth_error.str()
    assert mechanism in auth_error.str()
    assert [e.code() for e in undelivered] == [KafkaError._MSG_TIMED_OUT]
    assert consume(topic, bootstrap=kafka_bootstrap) == []
    client_output = capfd.readouterr()
    for text in (caplog.text, client_output.out, client_output.err, *(e.str() for e in errors.errors)):
        assert WRONG_PASSWORD not in text


def test_a_broker_certificate_not_signed_by_the_configured_ca_is_refused(monkeypatch, tmp_path, kafka_bootstrap):
    import subprocess

    other_ca = tmp_path / "other-ca.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=not-the-pstt-ca",
         "-keyout", str(tmp_path / "other-ca.key"), "-out", str(other_ca)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    errors = ClientErrors()
    conn_id = set_kafka_connection(monkeypatch, sasl_extra("SCRAM-SHA-512", ca_file=str(other_ca)))
    producer = PsttKafkaHook(conn_id).get_producer({"error_cb": errors, "message.timeout.ms": 5_000})
    producer.produce(new_topic(kafka_bootstrap), key="k", value="v")

    tls_error = errors.wait_for(producer, KafkaError._SSL, AUTH_ERROR_BOUND_S)
    producer.flush(15)

    assert tls_error is not None, f"no TLS error within {AUTH_ERROR_BOUND_S}s; got {errors.errors}"
    assert "certificate verify failed" in tls_error.str()


def sasl_publisher(conn_id: str, topic: str, rows: int = 500, **kwargs) -> SqlToKafkaOperator:
    return SqlToKafkaOperator(
        task_id="publish",
        conn_id="pstt_test_pg",
        sql=f"SELECT g AS id, 'row ' || g AS note FROM generate_series(1, {rows}) g",
        topic=topic,
        message_key_field="id",
        kafka_config_id=conn_id,
        **kwargs,
    )


@pytest.mark.parametrize("mechanism", MECHANISMS)
@pytest.mark.parametrize("delivery", ["at_least_once", "exactly_once"])
def test_a_job_publishes_through_sasl_ssl_and_never_logs_the_password(
    mechanism, delivery, postgres, kafka_bootstrap, consume, monkeypatch, caplog, capfd
):
    caplog.set_level(logging.DEBUG)
    topic = new_topic(kafka_bootstrap)
    conn_id = set_kafka_connection(monkeypatch, sasl_extra(mechanism))
    ti = RecordingTaskInstance()

    result = sasl_publisher(conn_id, topic, delivery=delivery).execute(context_for(ti))

    records = consume(topic, bootstrap=kafka_bootstrap, expected=500)
    assert sorted(int(r.key) for r in records) == list(range(1, 501))
    assert (result["state"], result["messages_sent"]) == ("success", 500)
    output = capfd.readouterr()
    for text in (caplog.text, output.out, output.err, json.dumps(ti.xcoms, default=str)):
        assert SCRAM_PASSWORD not in text


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_a_job_with_a_wrong_password_fails_with_an_authentication_error_within_a_bound(
    mechanism, postgres, kafka_bootstrap, consume, monkeypatch, caplog, capfd, record_property
):
    caplog.set_level(logging.DEBUG)
    topic = new_topic(kafka_bootstrap)
    conn_id = set_kafka_connection(monkeypatch, sasl_extra(mechanism, password=WRONG_PASSWORD))
    ti = RecordingTaskInstance()
    started = time.monotonic()

    with pytest.raises(KafkaAuthenticationError) as failure:
        sasl_publisher(conn_id, topic, metadata_timeout_s=10).execute(context_for(ti))
    elapsed = time.monotonic() - started

    record_property("seconds_to_auth_error", round(elapsed, 1))
    record_property("auth_error", str(failure.value))
    assert elapsed < AUTH_ERROR_BOUND_S
    assert re.search(r"(?i)authentication", str(failure.value)), f"not an authentication error: {failure.value!r}"
    assert ti.xcoms["pstt_delivery"]["state"] == "failed"
    assert consume(topic, bootstrap=kafka_bootstrap) == []
    output = capfd.readouterr()
    for text in (caplog.text, output.out, output.err, str(failure.value), json.dumps(ti.xcoms, default=str)):
        assert WRONG_PASSWORD not in text


DAG_FILE = """
import datetime as dt

from airflow.sdk import DAG

from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator

with DAG("{dag_id}", schedule=None, start_date=dt.datetime(2026, 1, 1)):
    SqlToKafkaOperator(
        task_id="publish",
        conn_id="pstt_test_pg",
        sql="SELECT g AS id FROM generate_series(1, 100) g",
        topic="{topic}",
        message_key_field="id",
        kafka_config_id="{conn_id}",
        metadata_timeout_s=10,
    )
"""


@pytest.mark.parametrize("password", [SCRAM_PASSWORD, WRONG_PASSWORD], ids=["right-password", "wrong-password"])
def test_the_task_logs_of_a_sasl_dag_run_never_contain_the_password(
    password, airflow_db, postgres, kafka_bootstrap, consume, monkeypatch, tmp_path, caplog, capfd
):
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    caplog.set_level(logging.DEBUG)
    topic = new_topic(kafka_bootstrap)
    conn_id = set_kafka_connection(monkeypatch, sasl_extra("SCRAM-SHA-512", password=password))
    dag_id = f"pstt_sasl_{uuid.uuid4().hex[:8]}"
    (tmp_path / "sasl_dag.py").write_text(DAG_FILE.format(dag_id=dag_id, topic=topic, conn_id=conn_id))
    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(str(tmp_path))
    assert bag.import_errors == {}
    sync_bag_to_db(bag, "dags-folder", None)

    run = bag.get_dag(dag_id).test()

    expected_state = "success" if password == SCRAM_PASSWORD else "failed"
    assert run.state == expected_state
    assert len(consume(topic, bootstrap=kafka_bootstrap)) == (100 if password == SCRAM_PASSWORD else 0)
    output = capfd.readouterr()
    task_logs = [path.read_text(errors="replace") for path in (airflow_db / "logs").rglob("*") if path.is_file()]
    everything = "\n".join((caplog.text, output.out, output.err, *task_logs))
    assert "sql_to_kafka" in everything, "the task's own log lines were not captured"
    assert password not in everything

"""
The retry policy: which task errors fail at once (``AirflowFailException``) and which Airflow retries.

Service-free: the classes, the DB-API classification of source errors with real driver exceptions (sqlite3,
psycopg; no server needed), and a query-file error raised by a task before it touches any database or broker.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from pathlib import Path

import psycopg
import psycopg.errors
import pytest
from airflow.sdk.exceptions import AirflowFailException
from confluent_kafka import KafkaError
from helpers.operator_context import RecordingTaskInstance, context_for

from pstt_provider import delivery, exceptions, query_file, serialization, streaming, transactions
from pstt_provider.dialects.sqlite import DIALECT as SQLITE
from pstt_provider.hooks import kafka
from pstt_provider.operators import sql_to_kafka
from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator

FAIL_AT_ONCE = [
    exceptions.MessageKeyError,
    exceptions.QueryParameterError,
    exceptions.QueryFileError,
    exceptions.RowEncodingError,
    exceptions.MessageTooLargeError,
    exceptions.DeliveryNotAuthorizedError,
    exceptions.TopicAuthorizationError,
    exceptions.KafkaAuthenticationError,
    exceptions.KafkaConfigurationError,
    exceptions.TopicNotFoundError,
    exceptions.TopicCreationError,
    exceptions.TransactionTimeoutError,
    exceptions.SourceQueryRejectedError,
    exceptions.SourceConnectionTypeError,
    exceptions.OrderedReadError,
    exceptions.JobStateMismatchError,
    exceptions.SchemaCompatibilityError,
    exceptions.SchemaRegistryRejectedError,
    exceptions.UnsupportedColumnTypeError,
]
RETRIED = [
    exceptions.BrokerUnreachableError,
    exceptions.DeliveryError,
    exceptions.NotEnoughReplicasError,
    exceptions.TopicUnavailableError,
    exceptions.SourceQueryError,
    exceptions.RunMarkerError,
    exceptions.JobStateError,
    exceptions.SchemaRegistryUnavailableError,
]


@pytest.mark.parametrize("error", FAIL_AT_ONCE, ids=lambda cls: cls.__name__)
def test_errors_a_retry_cannot_fix_fail_the_task_at_once(error):
    assert issubclass(error, AirflowFailException)
    assert issubclass(error, exceptions.NonRetryableError)
    assert issubclass(error, exceptions.PsttError)


@pytest.mark.parametrize("error", RETRIED, ids=lambda cls: cls.__name__)
def test_transient_errors_are_left_to_airflows_retries(error):
    assert not issubclass(error, AirflowFailException)
    assert issubclass(error, exceptions.PsttError)


def test_every_class_of_the_module_is_classified_here():
    assert set(exceptions.__all__) - {"PsttError", "NonRetryableError"} == {c.__name__ for c in FAIL_AT_ONCE + RETRIED}


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (exceptions.MessageKeyError, ValueError),
        (exceptions.QueryParameterError, ValueError),
        (exceptions.RowEncodingError, TypeError),
        (exceptions.BrokerUnreachableError, ConnectionError),
        (exceptions.KafkaAuthenticationError, PermissionError),
        (exceptions.QueryFileError, query_file.QueryFileError),
        (exceptions.MessageTooLargeError, exceptions.DeliveryError),
        (exceptions.DeliveryNotAuthorizedError, exceptions.DeliveryError),
        (exceptions.TopicNotFoundError, exceptions.TopicUnavailableError),
        (exceptions.SourceQueryRejectedError, exceptions.SourceQueryError),
    ],
)
def test_each_class_keeps_the_base_older_except_clauses_catch(error, builtin):
    assert issubclass(error, builtin)
    assert str(error("what to do")) == "what to do"


def test_the_old_import_locations_name_the_same_classes():
    assert delivery.DeliveryError is exceptions.DeliveryError
    assert delivery.MessageTooLargeError is exceptions.MessageTooLargeError
    assert kafka.BrokerUnreachableError is exceptions.BrokerUnreachableError
    assert kafka.KafkaAuthenticationError is exceptions.KafkaAuthenticationError
    assert kafka.TopicUnavailableError is exceptions.TopicUnavailableError
    assert sql_to_kafka.MessageKeyError is exceptions.MessageKeyError
    assert sql_to_kafka.QueryParameterError is exceptions.QueryParameterError
    assert streaming.SourceQueryError is exceptions.SourceQueryError
    assert serialization.RowEncodingError is exceptions.RowEncodingError
    assert transactions.TransactionTimeoutError is exceptions.TransactionTimeoutError
    assert transactions.RunMarkerError is exceptions.RunMarkerError


def sqlite_error(sql: str) -> Exception:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    db.execute("INSERT INTO t VALUES (1)")
    try:
        db.execute(sql)
    except sqlite3.Error as err:
        return err
    raise AssertionError(f"{sql} did not fail")


@pytest.mark.parametrize(
    "cause",
    [
        psycopg.errors.UndefinedColumn('column "nope" does not exist'),
        psycopg.errors.SyntaxError("syntax error at or near FORM"),
        psycopg.errors.DivisionByZero("division by zero"),
        psycopg.errors.UniqueViolation("duplicate key"),
        psycopg.NotSupportedError("not supported"),
        sqlite_error("INSERT INTO t VALUES (1)"),  # IntegrityError
        sqlite3.ProgrammingError("Incorrect number of bindings supplied"),
    ],
    ids=lambda err: type(err).__name__,
)
def test_sql_the_database_rejects_as_wrong_fails_at_once_keeping_the_query_file_in_the_message(cause):
    error = streaming.source_query_error(f"Q-001--Report.sql: the database rejected the query: {cause}", cause)

    assert isinstance(error, exceptions.SourceQueryRejectedError)
    assert isinstance(error, AirflowFailException)
    assert str(error).startswith("Q-001--Report.sql: the database rejected the query: ")


@pytest.mark.parametrize(
    "cause",
    [
        psycopg.OperationalError("server closed the connection unexpectedly"),
        psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
        psycopg.InterfaceError("the connection is closed"),
        psycopg.DatabaseError("something the driver does not classify"),
        sqlite_error("SELECT * FROM no_such_table"),  # sqlite3 calls a missing table an OperationalError
        RuntimeError("not a DB-API error at all"),
    ],
    ids=lambda err: f"{type(err).__name__}-{str(err)[:20]}",
)
def test_sql_errors_the_driver_marks_transient_or_leaves_unclassified_are_retried(cause):
    error = streaming.source_query_error(f"Q-001--Report.sql: reading the result failed: {cause}", cause)

    assert type(error) is exceptions.SourceQueryError
    assert not isinstance(error, AirflowFailException)


def test_a_statement_without_a_result_set_fails_at_once():
    db = sqlite3.connect(":memory:")

    with (
        pytest.raises(exceptions.SourceQueryRejectedError, match=r"Q\.sql: the statement returned no result set"),
        streaming.stream_query(SQLITE, db, "SAVEPOINT sp1", {}, fetch_size=10, source="Q.sql"),
    ):
        pass


def test_a_query_file_error_in_a_task_fails_at_once_with_the_same_name_and_message():
    operator = SqlToKafkaOperator(
        task_id="publish", conn_id="db", topic="t", message_key_field="id", sql="DROP TABLE shipments"
    )
    ti = RecordingTaskInstance()

    with pytest.raises(query_file.QueryFileError, match="the statement starts with DROP, not SELECT") as failure:
        operator.execute(context_for(ti))

    assert isinstance(failure.value, exceptions.QueryFileError)
    assert isinstance(failure.value, AirflowFailException)
    assert ti.xcoms["pstt_delivery"]["errors"][0].startswith("QueryFileError: <inline sql>: the statement starts")


def test_parsing_alone_raises_the_airflow_free_query_file_error():
    """``pstt validate`` parses query files without importing Airflow: parsing raises the plain class."""
    with pytest.raises(query_file.QueryFileError) as failure:
        query_file.parse_query_text("DROP TABLE shipments", source="q.sql")

    assert type(failure.value) is query_file.QueryFileError


def documented_retry_table() -> dict[str, str]:
    page = (Path(__file__).resolve().parents[2] / "docs" / "operators.md").read_text()
    section = page.split("## Errors and retries", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `(\w+Error)`[^|]*\| (yes|no) \|", section, re.MULTILINE))


def test_the_documented_retry_table_says_what_each_class_does():
    table = documented_retry_table()

    assert set(table) == {cls.__name__ for cls in FAIL_AT_ONCE + RETRIED}
    for name, retried in table.items():
        assert issubclass(getattr(exceptions, name), AirflowFailException) == (retried == "no"), name


class FakeMessage:
    """What the delivery callback reads of a failed message."""

    def __init__(self, key: bytes, value: bytes, topic: str) -> None:
        self._key, self._value, self._topic = key, value, topic

    def key(self) -> bytes:
        return self._key

    def topic(self) -> str:
        return self._topic

    def __len__(self) -> int:
        return len(self._value)


def sender_with_failures(*codes: int) -> delivery.BulkSender:
    quiet = logging.getLogger("tests.ops.quiet")
    quiet.propagate = False
    sender = delivery.BulkSender({"bootstrap.servers": "127.0.0.1:1", "logger": quiet}, "traces")
    for number, code in enumerate(codes):
        sender.tracker.produced += 1
        sender.tracker.on_failure(KafkaError(code), FakeMessage(f"K{number}".encode(), b"{}", "traces"))
    return sender


def test_messages_refused_for_lack_of_write_permission_fail_at_once_saying_which_acl():
    sender = sender_with_failures(KafkaError._MSG_TIMED_OUT, KafkaError.TOPIC_AUTHORIZATION_FAILED)

    with pytest.raises(
        exceptions.DeliveryNotAuthorizedError, match=r"2 of 2 message\(s\).*grant it WRITE on topic 'traces'"
    ):
        sender.raise_for_failures()


def test_messages_that_timed_out_stay_a_retried_delivery_error():
    sender = sender_with_failures(KafkaError._MSG_TIMED_OUT, KafkaError._MSG_TIMED_OUT)

    with pytest.raises(exceptions.DeliveryError) as failure:
        sender.raise_for_failures()

    assert type(failure.value) is exceptions.DeliveryError

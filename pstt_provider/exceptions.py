"""
Every error a PSTT task raises on purpose, sorted by what a retry can do about it.

Airflow retries a failed task ``retries`` times, ``retry_delay`` apart. That helps when the cause goes away by itself
(a broker restarting, a database failing over) and only delays the failure when it does not: the same query on
the same data with the same configuration fails the same way every time, after the user has waited through
every retry. So the classes come in two kinds:

- ``NonRetryableError`` subclasses also subclass ``airflow.sdk.exceptions.AirflowFailException``: the Task SDK
  fails the task at once, without using up its retries. Something has to change first (the query, the data,
  the job spec, the topic, a permission); the message says what.
- every other ``PsttError`` is transient: Airflow retries it as configured.

docs/operators.md has the table of which error is which and why. Each class also keeps the built-in base it
had before this module existed (``ValueError``, ``ConnectionError``, ...), so ``except`` clauses written against
those still catch it.
"""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowFailException

from pstt_provider.ordered_read import OrderedReadError as _ParsingOrderedReadError
from pstt_provider.query_file import QueryFileError as _ParsingQueryFileError
from pstt_provider.query_file import QueryParameterError as _ParsingQueryParameterError

__all__ = [
    "BrokerUnreachableError",
    "DeliveryError",
    "DeliveryNotAuthorizedError",
    "JobStateError",
    "JobStateMismatchError",
    "KafkaAuthenticationError",
    "KafkaConfigurationError",
    "MessageKeyError",
    "MessageTooLargeError",
    "NonRetryableError",
    "NotEnoughReplicasError",
    "OrderedReadError",
    "PsttError",
    "QueryFileError",
    "QueryParameterError",
    "RowEncodingError",
    "RunMarkerError",
    "SchemaCompatibilityError",
    "SchemaRegistryRejectedError",
    "SchemaRegistryUnavailableError",
    "SourceConnectionTypeError",
    "SourceQueryError",
    "SourceQueryRejectedError",
    "TopicAuthorizationError",
    "TopicCreationError",
    "TopicNotFoundError",
    "TopicUnavailableError",
    "TransactionTimeoutError",
    "UnsupportedColumnTypeError",
]


class PsttError(Exception):
    """Base of the errors a PSTT task raises on purpose; those that are not ``NonRetryableError`` are retried."""


class NonRetryableError(PsttError, AirflowFailException):
    """A retry would fail the same way: the task fails at once, whatever its ``retries``."""


# ------------------------------------------------------------------ Kafka connection and topic


class BrokerUnreachableError(PsttError, ConnectionError):
    """Transient: no broker of the Kafka connection answered a metadata request in time."""


class KafkaAuthenticationError(NonRetryableError, PermissionError):
    """The broker answered but refused the connection's credentials (SASL) or certificate (TLS)."""


class KafkaConfigurationError(NonRetryableError, ValueError):
    """librdkafka refused the Kafka connection's configuration (an unknown property, a value out of range)."""


class TopicUnavailableError(PsttError, RuntimeError):
    """
    Transient: the topic exists (or is being created) but did not get a leader for every partition in time,
    or its creation timed out. The fatal topic errors below subclass it, so one ``except`` still catches all.
    """


class TopicNotFoundError(NonRetryableError, TopicUnavailableError):
    """The topic does not exist and nothing will create it: the broker does not auto-create and no topic_config."""


class TopicAuthorizationError(NonRetryableError, TopicUnavailableError):
    """The connection's principal may not write to (or create) the topic: a permission has to be granted."""


class TopicCreationError(NonRetryableError, TopicUnavailableError):
    """The broker refused to create the topic with the given topic_config (bad setting, replication, policy)."""


# ------------------------------------------------------------------ delivery


class DeliveryError(PsttError, RuntimeError):
    """Transient: messages were not acknowledged by the broker; the message has the counts and the first reasons."""


class NotEnoughReplicasError(DeliveryError):
    """
    Transient: messages were not acknowledged because the topic has fewer in-sync replicas than its
    ``min.insync.replicas`` (brokers are down), so the cluster refuses ``acks=all`` writes; the retry delivers once
    the brokers are back.
    """


class MessageTooLargeError(NonRetryableError, DeliveryError):
    """A row is larger than the producer or the topic accepts and no dead-letter topic is set."""


class DeliveryNotAuthorizedError(NonRetryableError, DeliveryError):
    """
    The broker refused messages because the connection's principal may not write the topic (it may describe it,
    so the check before the run passed): an ACL has to be granted.
    """


class TransactionTimeoutError(NonRetryableError, RuntimeError):
    """exactly_once: the extraction would outlive the Kafka transaction; a retry would run just as long."""


class RunMarkerError(PsttError, RuntimeError):
    """Transient: the exactly_once run-marker topic cannot be created or read in time."""


class JobStateError(PsttError, RuntimeError):
    """Transient: the state topic holding the jobs' positions cannot be created, read or written in time."""


class JobStateMismatchError(NonRetryableError, ValueError):
    """
    The stored position does not fit the job: it is for other columns than the job now orders by, or of a type
    its column no longer holds; ``pstt state set`` or ``pstt state reset`` has to move it first.
    """


# ------------------------------------------------------------------ query, parameters, rows


class QueryFileError(NonRetryableError, _ParsingQueryFileError):
    """
    A query file that cannot be read or parsed, as a running task raises it.

    Parsing raises ``pstt_provider.query_file.QueryFileError``, which stays free of Airflow so that ``pstt
    validate`` starts without importing it; the operator re-raises it as this subclass (same name, same message,
    still caught by ``except query_file.QueryFileError``).
    """


class QueryParameterError(NonRetryableError, _ParsingQueryParameterError):
    """A query parameter is unknown, missing, or the query is given twice or not at all."""


class OrderedReadError(NonRetryableError, _ParsingOrderedReadError):
    """An incremental or ordered read that cannot run: a column name that is not a plain name, a lag on numbers."""


def at_task_time(err: _ParsingQueryFileError | _ParsingOrderedReadError) -> NonRetryableError:
    """A parsing or binding error as a running task raises it: the fatal subclass of the same name and message."""
    if isinstance(err, NonRetryableError):
        return err
    if isinstance(err, _ParsingOrderedReadError):
        return OrderedReadError(err.field, err.reason).with_traceback(err.__traceback__)
    task_class = QueryParameterError if isinstance(err, _ParsingQueryParameterError) else QueryFileError
    return task_class(*err.args).with_traceback(err.__traceback__)


class MessageKeyError(NonRetryableError, ValueError):
    """The message key column is missing from the result or duplicated, or a NULL key under the 'fail' policy."""


class RowEncodingError(NonRetryableError, TypeError):
    """A column value of a type the message format has no representation for."""


class SourceConnectionTypeError(NonRetryableError, TypeError):
    """The source connection's hook is not a common.sql ``DbApiHook``: the connection is not a SQL database's."""


class SourceQueryError(PsttError, RuntimeError):
    """
    Transient: the source database failed while running or streaming the query (connection lost, the driver's
    ``OperationalError``/``InterfaceError``, or an error the driver does not classify); names the query file.
    """


class SourceQueryRejectedError(NonRetryableError, SourceQueryError):
    """
    The database rejected the query itself (the driver's ``ProgrammingError``, ``DataError``, ``IntegrityError``
    or ``NotSupportedError``: bad SQL, a missing column, a value it cannot convert), or it returned no rows at all.
    """


# ------------------------------------------------------------------ Schema Registry value formats


class SchemaRegistryUnavailableError(PsttError, ConnectionError):
    """
    Transient: the Schema Registry of an ``avro`` or ``json_schema`` run did not answer (connection refused, a
    timeout, a 5xx answer) while its schema was looked up, checked or registered; nothing was produced yet.
    """


class SchemaRegistryRejectedError(NonRetryableError, RuntimeError):
    """
    The Schema Registry answered but refused the request for a reason a retry keeps (credentials, a permission, a
    schema it cannot parse), or the registry connection's settings are unusable.
    """


class SchemaCompatibilityError(NonRetryableError, ValueError):
    """
    The value schema derived from the query's columns is not compatible with the latest version of ``<topic>-value``
    under that subject's compatibility level; the message names the columns that changed. Nothing was produced.
    """


class UnsupportedColumnTypeError(NonRetryableError, TypeError):
    """
    A result column the ``avro`` or ``json_schema`` format has no exact type for (or, for Avro, a column name that is
    not a valid Avro name); the message names the column and its type and how to cast or alias it in the query.
    """

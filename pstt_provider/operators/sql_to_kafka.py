"""
SqlToKafkaOperator: one query, every row one Kafka message, an exact delivery account.

Failure behaviour (each case has a test):

- key column absent from the result: fails before anything is produced, naming the column and the columns
  present. The key is matched exactly, else case-insensitively when that is unambiguous (Oracle returns
  upper-case names).
- NULL key: ``null_key="fail"`` (default) fails with the row number; ``"null"`` sends the message with a
  null key; ``"skip"`` drops the row and counts it in ``messages_skipped``.
- any message not acknowledged: the task fails with the counts and the first errors, never succeeds. After
  any failure the rows produced before it are still flushed (at_least_once), and the result and the error
  state the counts as they stand after that flush: ``rows`` and ``messages_sent`` are what a consumer reads.
- a row too large for the topic (the producer's limits are fitted to the topic's ``max.message.bytes``
  unless set explicitly): fails naming the row's key and size, unless ``dead_letter_topic`` is set; then
  the row goes there with the error in its headers (``pstt-error``, ``pstt-source-topic``,
  ``pstt-value-bytes``) and is counted in ``messages_dead_lettered``. Dead letters go through a separate
  plain producer (at-least-once, outside any exactly_once transaction) fitted to the dead-letter topic's own
  ``max.message.bytes``, above librdkafka's 1,000,000-byte default when that topic allows more.
- topic absent: created with ``topic_config`` when given (the dead-letter topic too); else, when the broker
  auto-creates topics, the run waits for the new topic's leaders; else it fails at once naming both remedies.
- broker unreachable: a metadata request at start fails within ``metadata_timeout_s`` (30 s) before the
  query runs; if the broker goes away mid-run every pending message fails after ``message.timeout.ms``
  (120 s by default), the run stops reading at the first failed delivery report, and the final flush gives
  up ``flush_grace_s`` (30 s) after that, so a run never hangs and the bound does not grow with the rows left.
- SQL error: fails with the query file name and the database's message.
- a query that writes (DDL, DML, a data-modifying CTE, a function that writes): the source runs read-only
  (``pstt_provider.streaming.READ_ONLY_STATEMENTS``), so the database refuses it before anything changes and the
  task fails naming the query file.

``delivery="exactly_once"`` wraps the run in a Kafka transaction whose ``transactional.id`` is stable per
dag_id/task_id/run_id/map_index (see ``pstt_provider.transactions``): a retry fences the previous attempt,
and a run that already committed publishes nothing again unless ``force=True``.

Errors a retry cannot fix (key column, parameters, query file, encoding, a row too large, permissions, a topic
nothing will create, the transaction timeout, SQL the database rejects as wrong) subclass
``AirflowFailException`` and fail the task at once; transient ones are retried (``pstt_provider.exceptions``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from operator import itemgetter
from pathlib import Path
from typing import Any, ClassVar, Literal

from airflow.sdk import BaseHook, BaseOperator
from confluent_kafka import KafkaException, Producer

from pstt_provider import query_file
from pstt_provider.delivery import BulkSender, DeliveryTracker, ProgressLog
from pstt_provider.exceptions import DeliveryError, MessageKeyError, NonRetryableError, QueryParameterError
from pstt_provider.exceptions import QueryFileError as TaskQueryFileError
from pstt_provider.hooks.kafka import DEFAULT_METADATA_TIMEOUT_S, SAFE_PRODUCER_DEFAULTS, PsttKafkaHook
from pstt_provider.query_file import QueryFile, parse_query_file, parse_query_text
from pstt_provider.serialization import RowEncoder, build_metadata, key_text
from pstt_provider.streaming import paramstyle_of, stream_query
from pstt_provider.summary import MAX_ERRORS, XCOM_KEY, DeliverySummary
from pstt_provider.transactions import (
    DEFAULT_MARKER_TOPIC,
    DEFAULT_TRANSACTION_TIMEOUT_MS,
    TransactionClock,
    ensure_marker_topic,
    find_marker,
    produce_marker,
    transactional_id,
)

Delivery = Literal["at_least_once", "exactly_once"]
NullKeyPolicy = Literal["fail", "null", "skip"]
DELIVERY_MODES: tuple[str, ...] = ("at_least_once", "exactly_once")
NULL_KEY_POLICIES: tuple[str, ...] = ("fail", "null", "skip")
DEFAULT_BATCH_SIZE = 5000
FAILURE_FLUSH_S = 10.0
_TEXT_KEYS = {str}
TOPIC_CONFIG_KEYS = frozenset({"partitions", "replication_factor", "config"})


@dataclass
class _RunState:
    """What the run has done so far: the failure path reports it as faithfully as the success path."""

    rows: int = 0
    skipped: int = 0
    sender: BulkSender | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    already_published: dict[str, Any] | None = None


class SqlToKafkaOperator(BaseOperator):
    """
    Runs ``sql`` (or the query file ``sql_file``) on the DB connection ``conn_id`` and publishes each row
    to ``topic`` on the Kafka connection ``kafka_config_id``, keyed by the column ``message_key_field``.

    Works with any common.sql ``DbApiHook``: PostgreSQL streams through a server-side cursor, Oracle
    through tuned ``arraysize``/``prefetchrows``, anything else through ``fetchmany(batch_size)``.
    Query parameters are always bind variables in the driver's paramstyle.

    Returns (and pushes under the XCom key ``pstt_delivery``, also on failure) the try's
    :class:`~pstt_provider.summary.DeliverySummary` as a dict: rows, messages sent/failed/skipped/
    dead-lettered/aborted, bytes, latency, duration, state, parameters and first errors. The same summary
    is left in an Airflow Variable for the metrics, which outlives the XCom Airflow clears on a retry.

    :param topic: destination topic (templated).
    :param message_key_field: result column whose value, as UTF-8 text, is the message key.
    :param conn_id: the source database's Airflow connection.
    :param sql: the statement, with the query-file parameter syntax (templated); give ``sql`` or ``sql_file``.
    :param sql_file: path of a query file.
    :param parameters: values of the query's parameters by name (templated); the file's defaults fill the rest.
    :param batch_size: rows fetched per round trip.
    :param include_metadata: ``{"data": row, "metadata": {...}}`` as the value; False: the row object alone.
    :param kafka_config_id: the Airflow Kafka connection (extra = librdkafka config).
    :param delivery: ``at_least_once`` or ``exactly_once`` (one Kafka transaction per attempt).
    :param producer_config: librdkafka settings over the connection's, for this task.
    :param null_key: a NULL key: ``fail`` the task, send it as a ``null`` key, or ``skip`` the row.
    :param dead_letter_topic: where rows too large for ``topic`` go; without it such a row fails the task.
    :param force: exactly_once only: publish again a run that already committed.
    :param run_marker_topic: exactly_once only: the compacted topic recording committed runs.
    :param metadata_timeout_s: how long the broker may take to answer (and a new topic to get its leaders).
    :param flush_grace_s: extra wait for acknowledgements beyond ``message.timeout.ms`` at the end.
    :param progress_interval_s: seconds between progress lines (rows so far, rows/s) in the task log.
    :param prefetch_rows: Oracle: rows fetched with the execute.
    :param topic_config: how to create ``topic`` (and ``dead_letter_topic``) when absent:
        ``{"partitions": int | None, "replication_factor": int | None, "config": {name: value}}``, None for the
        broker's default; the job spec's ``kafka_config.topic_config``. Without it an absent topic is waited for
        when the broker auto-creates topics, and fails the task at once when it does not.
    """

    template_fields: Sequence[str] = ("sql", "parameters", "topic")
    template_ext: Sequence[str] = ()
    ui_color = "#e8f1fb"
    default_conn_id: ClassVar[str | None] = None

    def __init__(
        self,
        *,
        topic: str,
        message_key_field: str,
        conn_id: str | None = None,
        sql: str | None = None,
        sql_file: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        include_metadata: bool = True,
        kafka_config_id: str = "kafka_default",
        delivery: Delivery = "at_least_once",
        producer_config: Mapping[str, Any] | None = None,
        null_key: NullKeyPolicy = "fail",
        dead_letter_topic: str | None = None,
        force: bool = False,
        run_marker_topic: str = DEFAULT_MARKER_TOPIC,
        metadata_timeout_s: float = DEFAULT_METADATA_TIMEOUT_S,
        flush_grace_s: float = 30.0,
        progress_interval_s: float = 10.0,
        prefetch_rows: int | None = None,
        topic_config: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        conn_id = conn_id or self.default_conn_id
        if not conn_id:
            raise ValueError(f"{self.task_id}: conn_id (the source database connection) is required")
        if (sql is None) == (sql_file is None):
            raise QueryParameterError(f"{self.task_id}: give exactly one of sql or sql_file")
        if delivery not in DELIVERY_MODES:
            raise ValueError(f"{self.task_id}: delivery must be one of {', '.join(DELIVERY_MODES)}, not {delivery!r}")
        if null_key not in NULL_KEY_POLICIES:
            raise ValueError(
                f"{self.task_id}: null_key must be one of {', '.join(NULL_KEY_POLICIES)}, not {null_key!r}"
            )
        if batch_size < 1:
            raise ValueError(f"{self.task_id}: batch_size must be at least 1, not {batch_size}")
        if topic_config is not None and (unknown := sorted(set(topic_config) - TOPIC_CONFIG_KEYS)):
            raise ValueError(
                f"{self.task_id}: topic_config knows {', '.join(sorted(TOPIC_CONFIG_KEYS))}, not {', '.join(unknown)}"
            )
        self.conn_id = conn_id
        self.topic = topic
        self.message_key_field = message_key_field
        self.sql = sql
        self.sql_file = sql_file
        self.parameters = dict(parameters or {})
        self.batch_size = batch_size
        self.include_metadata = include_metadata
        self.kafka_config_id = kafka_config_id
        self.delivery = delivery
        self.producer_config = dict(producer_config or {})
        self.null_key = null_key
        self.dead_letter_topic = dead_letter_topic
        self.force = force
        self.run_marker_topic = run_marker_topic
        self.metadata_timeout_s = metadata_timeout_s
        self.flush_grace_s = flush_grace_s
        self.progress_interval_s = progress_interval_s
        self.prefetch_rows = prefetch_rows
        self.topic_config = dict(topic_config) if topic_config is not None else None

    # ----------------------------------------------------------------- query

    @property
    def query_name(self) -> str:
        return Path(self.sql_file).name if self.sql_file else "<inline sql>"

    def _query(self) -> QueryFile:
        if self.sql_file:
            return parse_query_file(self.sql_file)
        assert self.sql is not None
        return parse_query_text(self.sql, source=self.query_name)

    def _bind_values(self, query: QueryFile) -> dict[str, Any]:
        """
        Query-file defaults, overridden by ``parameters`` (names matched case-insensitively).

        An optional parameter (``--Opzionale``) left empty binds NULL, as SQL*Plus users expect of a blank
        optional filter; a required one, or a reference no ``define`` line declares, left empty fails the run.
        """
        by_upper = {name.upper(): name for name in query.params}
        for name in query.references:
            by_upper.setdefault(name.upper(), name)
        values = {name: param.default for name, param in query.params.items() if param.default is not None}
        unknown = [name for name in self.parameters if name.upper() not in by_upper]
        if unknown:
            raise QueryParameterError(
                f"{query.source}: parameter(s) {', '.join(unknown)} not used by the query "
                f"(it knows: {', '.join(by_upper.values()) or 'none'})"
            )
        for name, value in self.parameters.items():
            values[by_upper[name.upper()]] = value
        optional = {name for name, param in query.params.items() if not param.required}
        for name in optional:
            if values.get(name) in (None, ""):
                values[name] = None
        missing = [
            name
            for name in dict.fromkeys([*query.references, *(n for n, p in query.params.items() if p.required)])
            if name not in optional and values.get(name) in (None, "")
        ]
        if missing:
            raise QueryParameterError(f"{query.source}: no value for required parameter(s) {', '.join(missing)}")
        return values

    # ------------------------------------------------------------- execution

    def execute(self, context: Mapping[str, Any]) -> dict[str, Any]:
        started_at = dt.datetime.now(dt.UTC)
        state = _RunState()
        kafka = PsttKafkaHook(self.kafka_config_id)
        try:
            try:
                self._publish(context, state, started_at, kafka)
            except query_file.QueryFileError as err:
                if isinstance(err, NonRetryableError):
                    raise
                # Parsing stays free of Airflow (pstt validate); at task time the same error must not be retried.
                raise TaskQueryFileError(*err.args).with_traceback(err.__traceback__) from None
            finally:
                kafka.librdkafka_log.flush()
        except BaseException as err:
            self._report(context, self._summary(context, state, started_at, f"{type(err).__name__}: {err}"))
            raise
        summary = self._summary(context, state, started_at, None)
        result = self._report(context, summary)
        self.log.info(
            "Published %d of %d rows to %s in %.1f s (%d skipped, %d dead-lettered), latency p99 %.1f ms",
            summary.messages_sent,
            summary.rows,
            self.topic,
            summary.duration_s,
            summary.messages_skipped,
            summary.messages_dead_lettered,
            result["latency_ms"]["p99"],
        )
        return result

    def _summary(
        self, context: Mapping[str, Any], state: _RunState, started_at: dt.datetime, error: str | None
    ) -> DeliverySummary:
        ti = context["ti"]
        tracker = state.sender.tracker if state.sender is not None else DeliveryTracker()
        sent, aborted = tracker.acked, 0
        if self.delivery == "exactly_once" and error is not None:
            # The transaction was aborted: what the broker acknowledged is invisible to read_committed consumers.
            sent, aborted = 0, tracker.acked
        errors = list(tracker.errors)
        if error and error not in errors:
            errors.insert(0, error)
        dag = context.get("dag")
        return DeliverySummary(
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            task_id=ti.task_id,
            map_index=getattr(ti, "map_index", -1),
            try_number=ti.try_number,
            topic=self.topic,
            delivery=self.delivery,
            state="failed" if error is not None else "success",
            started_at=started_at,
            finished_at=dt.datetime.now(dt.UTC),
            rows=tracker.rows + state.skipped,
            messages_sent=sent,
            messages_failed=tracker.failed + tracker.dead_letter_failed,
            messages_skipped=state.skipped,
            messages_dead_lettered=tracker.dead_lettered,
            messages_aborted=aborted,
            bytes=tracker.bytes,
            latency=tracker.latency,
            errors=tuple(errors[:MAX_ERRORS]),
            display_name=getattr(dag, "dag_display_name", None) or ti.dag_id,
            parameters=dict(state.parameters),
            already_published=state.already_published,
        )

    def _report(self, context: Mapping[str, Any], summary: DeliverySummary) -> dict[str, Any]:
        """
        The try's summary as its XCom (Airflow's result, read by the e-mail) and as an Airflow Variable, the
        durable copy: Airflow clears a task's XComs when its next try starts, a Variable it keeps until the
        metrics writer has moved it into the pstt table.
        """
        result = summary.to_dict()
        context["ti"].xcom_push(key=XCOM_KEY, value=result)
        try:
            from airflow.sdk import Variable

            Variable.set(summary.variable_key, summary.to_json(), description=f"pstt try of {summary.dag_id}")
        except Exception as err:  # outside a task runner (tests calling execute) there is no API to write to
            self.log.warning("Could not keep this try's delivery summary for the metrics (%s)", err)
        return result

    def _publish(
        self, context: Mapping[str, Any], state: _RunState, started_at: dt.datetime, kafka: PsttKafkaHook
    ) -> None:
        ti = context["ti"]
        query = self._query()
        values = self._bind_values(query)
        state.parameters = values
        self.log.info(
            "Running %s with %s", query.source, ", ".join(f"{k}={v!r}" for k, v in values.items()) or "no parameters"
        )
        exactly_once = self.delivery == "exactly_once"
        txn_id = transactional_id(ti.dag_id, ti.task_id, ti.run_id, getattr(ti, "map_index", -1))
        overrides = self._producer_overrides(kafka, txn_id if exactly_once else None)
        admin = kafka.get_admin_client()
        kafka.check_reachable(admin, self.topic, self.metadata_timeout_s, topic_config=self.topic_config)
        flush_timeout_s = float(kafka.producer_config(overrides)["message.timeout.ms"]) / 1000 + self.flush_grace_s
        sender = kafka.bulk_sender(
            self.topic,
            kafka.fit_to_topic(admin, self.topic, overrides, self.metadata_timeout_s),
            dead_letter_topic=self.dead_letter_topic,
            dead_letter_producer=self._dead_letter_producer(kafka, admin),
        )
        producer = sender.producer

        clock: TransactionClock | None = None
        marker_partitions = 0
        if exactly_once:
            connection_config = kafka.client_config()
            producer.init_transactions(self.metadata_timeout_s)
            marker_partitions = ensure_marker_topic(connection_config, self.run_marker_topic, self.metadata_timeout_s)
            marker = find_marker(
                connection_config, self.run_marker_topic, marker_partitions, txn_id, self.metadata_timeout_s
            )
            if marker is not None and not self.force:
                self.log.warning(
                    "Run %s already published %s rows to %s at %s (exactly_once marker in %s); publishing nothing. "
                    "Set force=True to publish again.",
                    ti.run_id,
                    marker.get("rows"),
                    marker.get("topic"),
                    marker.get("committed_at"),
                    self.run_marker_topic,
                )
                state.already_published = marker
                return
            producer.begin_transaction()
            clock = TransactionClock(int(overrides["transaction.timeout.ms"]))

        state.sender = sender
        try:
            self._stream_rows(query, values, ti, started_at, sender, state, clock)
            sender.finish(flush_timeout_s)
            sender.raise_for_failures()
            if clock is not None:
                clock.check(state.rows)
                marker = {
                    "dag_id": ti.dag_id,
                    "task_id": ti.task_id,
                    "run_id": ti.run_id,
                    "map_index": getattr(ti, "map_index", -1),
                    "try_number": ti.try_number,
                    "topic": self.topic,
                    "rows": state.rows,
                    "messages": sender.tracker.acked,
                    "committed_at": dt.datetime.now(dt.UTC).isoformat(),
                }
                produce_marker(producer, self.run_marker_topic, marker_partitions, txn_id, marker)
                producer.commit_transaction(flush_timeout_s)
        except BaseException as err:
            if exactly_once:
                self._abort(producer)
                raise
            # What was produced before the failure is still delivered; wait a little so the reported counts
            # say how much of it reached the broker, and state a delivery error with those counts.
            sender.finish(FAILURE_FLUSH_S)
            if isinstance(err, DeliveryError) and str(restated := sender.restated(err)) != str(err):
                raise restated from err
            raise

    def _producer_overrides(self, kafka: PsttKafkaHook, txn_id: str | None) -> dict[str, Any]:
        """The operator's producer_config plus, for exactly_once, the transaction settings."""
        overrides = dict(self.producer_config)
        if txn_id is None:
            return overrides
        overrides.setdefault("transactional.id", txn_id)
        overrides.setdefault("transaction.timeout.ms", DEFAULT_TRANSACTION_TIMEOUT_MS)
        if "message.timeout.ms" not in kafka.explicit_config(self.producer_config):
            # librdkafka refuses a message timeout longer than the transaction it belongs to.
            overrides["message.timeout.ms"] = min(
                int(SAFE_PRODUCER_DEFAULTS["message.timeout.ms"]), int(overrides["transaction.timeout.ms"])
            )
        return overrides

    def _dead_letter_producer(self, kafka: PsttKafkaHook, admin: Any) -> Callable[[], Producer] | None:
        """
        A factory for the plain (never transactional) producer of dead letters, fitted to their topic: its
        limit may be raised above the default, since that topic is there for rows the main one cannot take.
        """
        if not self.dead_letter_topic:
            return None
        kafka.check_reachable(admin, self.dead_letter_topic, self.metadata_timeout_s, topic_config=self.topic_config)
        plain = {k: v for k, v in self.producer_config.items() if not k.startswith("transaction")}
        config = kafka.fit_to_topic(admin, self.dead_letter_topic, plain, self.metadata_timeout_s, allow_larger=True)
        return partial(kafka.get_producer, config)

    def _abort(self, producer: Producer) -> None:
        try:
            producer.abort_transaction(self.metadata_timeout_s)
        except KafkaException as err:
            # The next attempt's init_transactions fences and aborts it anyway; the original error matters more.
            self.log.warning("Aborting the Kafka transaction failed (%s); the retry will fence it", err)

    def _stream_rows(
        self,
        query: QueryFile,
        values: Mapping[str, Any],
        ti: Any,
        started_at: dt.datetime,
        sender: BulkSender,
        state: _RunState,
        clock: TransactionClock | None,
    ) -> None:
        db_hook = BaseHook.get_connection(self.conn_id).get_hook()
        connection = db_hook.get_conn()
        statement = query.statement(paramstyle_of(connection))
        binds = statement.bind(values)
        with stream_query(
            connection,
            statement.sql,
            binds,
            batch_size=self.batch_size,
            source=query.source,
            prefetch_rows=self.prefetch_rows,
        ) as result:
            key_index = self._key_index(result.columns)
            metadata = None
            if self.include_metadata:
                metadata = build_metadata(
                    dag_id=ti.dag_id,
                    run_id=ti.run_id,
                    task_id=ti.task_id,
                    query=self.query_name,
                    extracted_at=started_at,
                )
            encoder = RowEncoder(
                result.columns, metadata, number_text=result.number_text, float_columns=result.float_columns
            )
            key_of = itemgetter(key_index)
            progress = ProgressLog(self.log, self.progress_interval_s)
            rows = 0
            for batch in result.batches():
                keys = list(map(key_of, batch))
                kinds = set(map(type, keys))
                if type(None) in kinds:
                    keys, values = self._with_null_keys(keys, batch, rows + 1, encoder, query.source, state)
                else:
                    if kinds != _TEXT_KEYS:
                        keys = [key if type(key) is str else key_text(key) for key in keys]
                    values = encoder.encode_batch(batch, rows + 1)
                sender.send_batch(keys, values)
                rows += len(batch)
                state.rows = rows
                progress.maybe_log(rows)
                if clock is not None:
                    clock.check(rows)

    def _with_null_keys(
        self,
        keys: list[Any],
        batch: Sequence[Sequence[Any]],
        first_row_number: int,
        encoder: RowEncoder,
        source: str,
        state: _RunState,
    ) -> tuple[list[str | None], list[bytes]]:
        """A batch holding NULL keys, row by row under the ``null_key`` policy."""
        kept_keys: list[str | None] = []
        values: list[bytes] = []
        for number, (key, row) in enumerate(zip(keys, batch, strict=True), first_row_number):
            if key is None:
                if self.null_key == "skip":
                    state.skipped += 1
                    continue
                if self.null_key == "fail":
                    raise MessageKeyError(
                        f"{source}: row {number} has a NULL {self.message_key_field}; set null_key "
                        "(job spec: kafka_config.null_key) to 'null' to send it without a key or 'skip' to drop it"
                    )
            elif type(key) is not str:
                key = key_text(key)
            kept_keys.append(key)
            values.extend(encoder.encode_batch([row], number))
        return kept_keys, values

    def _key_index(self, columns: tuple[str, ...]) -> int:
        duplicates = sorted({c for c in columns if columns.count(c) > 1})
        if duplicates:
            raise MessageKeyError(
                f"the query returns duplicate column name(s) {', '.join(duplicates)}; give them distinct aliases"
            )
        if self.message_key_field in columns:
            return columns.index(self.message_key_field)
        folded = [i for i, c in enumerate(columns) if c.lower() == self.message_key_field.lower()]
        if len(folded) == 1:
            return folded[0]
        raise MessageKeyError(
            f"message key column {self.message_key_field!r} is not in the query result; "
            f"columns present: {', '.join(columns)}"
        )

"""
SqlToKafkaOperator: one query, every row one Kafka message, an exact delivery account.

The operator holds the arguments, the order of a run and its result; each step is done by the module it names,
which also documents its failures (docs/operators.md lists them all):

1. the query file and its parameters (``pstt_provider.query_file``: ``QueryFile.bind_values``);
2. before the query runs, fail fast: a broker that answers (``PsttKafkaHook.probe``), topics that can be written,
   created or waited for (``pstt_provider.hooks.topics``), producers fitted to their ``max.message.bytes``;
3. ``exactly_once``: one Kafka transaction per attempt with a run marker (``transactions.ExactlyOnceSession``): a
   retry fences the previous attempt, a run that already committed publishes nothing again unless ``force=True``;
4. ``incremental`` or ``checkpoint_rows``: the job's position from its state topic (``pstt_provider.job_state``),
   the query read in order after it (``pstt_provider.ordered_read``) and committed again as rows are delivered
   (``pstt_provider.checkpoints.PositionKeeper``);
5. the rows, read-only and streamed the source's way (``pstt_provider.dialects``, ``pstt_provider.streaming``),
   become messages (``pstt_provider.publisher.RowPublisher``: key column, NULL keys, encoding, progress) sent
   and accounted for by ``pstt_provider.delivery.BulkSender`` (acknowledgements, dead letters, the final flush);
6. the try's ``DeliverySummary``, as XCom and Airflow Variable, also when the try fails. After an at_least_once
   failure what was produced is still flushed first, so the counts and the error say what a consumer reads.
   On success its counts (and an incremental job's new position) go on the task's outlet Asset events
   (``pstt_provider.assets``).

Errors a retry cannot fix subclass ``AirflowFailException`` and fail the task at once; transient ones are retried
(``pstt_provider.exceptions``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, ClassVar, Literal

from airflow.sdk import BaseHook, BaseOperator

from pstt_provider import assets, ordered_read, query_file
from pstt_provider.checkpoints import PositionKeeper
from pstt_provider.delivery import BulkSender, DeliveryTracker, ProgressLog
from pstt_provider.dialects import dialect_for
from pstt_provider.exceptions import (
    DeliveryError,
    MessageKeyError,
    NotEnoughReplicasError,
    QueryParameterError,
    at_task_time,
)
from pstt_provider.hooks.kafka import DEFAULT_METADATA_TIMEOUT_S, SAFE_PRODUCER_DEFAULTS, PsttKafkaHook
from pstt_provider.job_state import DEFAULT_STATE_TOPIC, StateTopic, state_key
from pstt_provider.ordered_read import Incremental, ReadPlan, columns_query, ordering
from pstt_provider.publisher import NULL_KEY_POLICIES, NullKeyPolicy, RowPublisher
from pstt_provider.query_file import QueryFile
from pstt_provider.serialization import METADATA_MODES, MetadataMode, build_metadata, metadata_headers
from pstt_provider.splitting import SplitRange
from pstt_provider.streaming import ResultStream, open_result, read_only_session, result_columns
from pstt_provider.summary import MAX_ERRORS, XCOM_KEY, DeliverySummary
from pstt_provider.transactions import (
    DEFAULT_MARKER_TOPIC,
    ExactlyOnceSession,
    broker_transaction_max_ms,
    fit_transaction_timeout,
    transaction_overrides,
    transactional_id,
)
from pstt_provider.value_formats import VALUE_FORMATS, ValueFormatName, value_format

__all__ = ["MessageKeyError", "QueryParameterError", "SqlToKafkaOperator"]

Delivery = Literal["at_least_once", "exactly_once"]
DELIVERY_MODES: tuple[str, ...] = ("at_least_once", "exactly_once")
TOPIC_CONFIG_KEYS = frozenset({"partitions", "replication_factor", "config"})


class SqlToKafkaOperator(BaseOperator):
    """
    Runs ``sql`` (or the query file ``sql_file``) on the DB connection ``conn_id`` and publishes each row
    to ``topic`` on the Kafka connection ``kafka_config_id``, keyed by the column ``message_key_field``.

    Works with any common.sql ``DbApiHook``, read the way its dialect says (``pstt_provider.dialects``):
    PostgreSQL through a server-side cursor, Oracle through tuned ``arraysize``/``prefetchrows``, anything else
    through ``fetchmany``. Query parameters are always bind variables in the driver's paramstyle.

    Returns (and pushes under the XCom key ``pstt_delivery``, also on failure) the try's
    :class:`~pstt_provider.summary.DeliverySummary` as a dict: rows, messages sent/failed/skipped/
    dead-lettered/aborted, bytes, latency, duration, state, parameters and first errors. The same summary
    is left in an Airflow Variable for the metrics, which outlives the XCom Airflow clears on a retry.

    :param topic: destination topic (templated).
    :param message_key_field: result column whose value, as UTF-8 text, is the message key; matched exactly, else
        case-insensitively when unambiguous.
    :param conn_id: the source database's Airflow connection (required unless the class has a default, as
        ``OracleToKafkaOperator`` does).
    :param sql: the statement, with the query-file parameter syntax (templated); give ``sql`` or ``sql_file``.
    :param sql_file: path of a query file.
    :param parameters: values of the query's parameters by name (templated); the file's defaults fill the rest; an
        optional (``--Opzionale``) parameter left empty binds NULL, a required one left empty fails the task.
    :param batch_size: rows fetched per round trip (``fetchmany``, Oracle ``arraysize``, PostgreSQL server-side
        cursor); None: the database's own fetch size (5,000 rows, Oracle 10,000), which is what runs fastest.
    :param metadata: where the run's metadata (dag_id, run_id, task_id, query, extracted_at, ...) goes:
        ``envelope``, the value is ``{"data": row, "metadata": {...}}``; ``headers``, the value is the row object and
        each field a UTF-8 header ``pstt-<field>`` (``pstt-run-id``), on dead letters too; ``none``, the row alone.
    :param include_metadata: the older spelling of ``metadata``: True is ``envelope``, False ``none``; None (the
        default) leaves ``metadata`` to say. Given with a ``metadata`` other than the default, the two must agree.
    :param value_format: how a row becomes the message value: ``json`` (the object of its columns), ``avro`` or
        ``json_schema`` (Confluent wire format: the schema derived from the result's columns, registered under
        ``<topic>-value`` in ``schema_registry`` once per run, before anything is sent).
    :param schema_registry: the Airflow ``http`` connection of the Schema Registry (host = its URL, login/password
        for basic auth); required by ``avro`` and ``json_schema``, unused by ``json``.
    :param kafka_config_id: the Airflow Kafka connection (extra = librdkafka config).
    :param delivery: ``at_least_once`` or ``exactly_once`` (one Kafka transaction per attempt).
    :param producer_config: librdkafka settings over the connection's, for this task.
    :param null_key: a NULL key: ``fail`` the task, send it as a ``null`` key, or ``skip`` the row (counted).
    :param dead_letter_topic: where rows too large for ``topic`` go, with the error in their headers; without it
        such a row fails the task.
    :param force: exactly_once only: publish again a run that already committed.
    :param run_marker_topic: exactly_once only: the compacted topic recording committed runs.
    :param metadata_timeout_s: how long the broker may take to answer (and a new topic to get its leaders) before
        the query runs; an unreachable broker fails the task then.
    :param flush_grace_s: extra wait for acknowledgements beyond ``message.timeout.ms`` at the end.
    :param progress_interval_s: seconds between progress lines (rows so far, rows/s) in the task log.
    :param prefetch_rows: Oracle: rows fetched with the execute (default the fetch size + 1).
    :param incremental: ``{"column", "tiebreaker", "initial", "lag_seconds"}`` (or an
        :class:`~pstt_provider.ordered_read.Incremental`): each run reads only the rows after the job's stored
        position, ordered by ``column`` then ``tiebreaker`` (a unique column, when ``column`` is not unique), the
        first run from ``initial`` (inclusive; None: every row); ``lag_seconds`` (date and timestamp columns) leaves
        rows newer than the database's now minus the lag to a later run. The position is kept in ``state_topic``:
        under exactly_once committed in the same transaction as the rows, under at_least_once written once they
        are acknowledged. docs/reliability.md has what each mode gives.
    :param checkpoint_rows: commit the rows and the position every this many rows (exactly_once: end the
        transaction and begin the next), so a retry resumes after the last checkpoint and no transaction has to
        outlive ``transaction.max.timeout.ms``. Needs ``incremental`` or ``order_by``.
    :param order_by: the columns (a unique key) a full-run job is read in, so ``checkpoint_rows`` can resume it.
    :param state_topic: the compacted topic holding the jobs' positions, on ``kafka_config_id``.
    :param split_range: a parallel run's part (a :class:`~pstt_provider.splitting.SplitRange`, or the split task's
        XCom the task is mapped over): only the rows in that range of the split column are read. Not yet with
        ``incremental``.
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
        batch_size: int | None = None,
        metadata: MetadataMode = "envelope",
        include_metadata: bool | None = None,
        value_format: ValueFormatName = "json",
        schema_registry: str | None = None,
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
        incremental: Incremental | Mapping[str, Any] | None = None,
        checkpoint_rows: int | None = None,
        order_by: Sequence[str] | None = None,
        state_topic: str = DEFAULT_STATE_TOPIC,
        split_range: SplitRange | Mapping[str, Any] | None = None,
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
        self.metadata = _metadata_mode(self.task_id, metadata, include_metadata)
        if value_format not in VALUE_FORMATS:
            raise ValueError(
                f"{self.task_id}: value_format must be one of {', '.join(VALUE_FORMATS)}, not {value_format!r}"
            )
        if value_format != "json" and schema_registry is None:
            raise ValueError(f"{self.task_id}: value_format {value_format} needs schema_registry (a connection id)")
        self.value_format = value_format
        self.schema_registry = schema_registry
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"{self.task_id}: batch_size must be at least 1, not {batch_size}")
        if topic_config is not None and (unknown := sorted(set(topic_config) - TOPIC_CONFIG_KEYS)):
            raise ValueError(
                f"{self.task_id}: topic_config knows {', '.join(sorted(TOPIC_CONFIG_KEYS))}, not {', '.join(unknown)}"
            )
        self.split_range = SplitRange.of(split_range)
        try:
            self.incremental, self.order_by = ordering(
                incremental, order_by, checkpoint_rows, parallel=self.split_range is not None
            )
        except ordered_read.OrderedReadError as err:
            raise ordered_read.OrderedReadError(err.field, f"{err.reason} (task {self.task_id})") from None
        self.checkpoint_rows = checkpoint_rows
        self.state_topic = state_topic
        self.conn_id = conn_id
        self.topic = topic
        self.message_key_field = message_key_field
        self.sql = sql
        self.sql_file = sql_file
        self.parameters = dict(parameters or {})
        self.batch_size = batch_size
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
        self._reported: DeliverySummary | None = None

    @property
    def query_name(self) -> str:
        return Path(self.sql_file).name if self.sql_file else query_file.INLINE_SQL

    def execute(self, context: Mapping[str, Any]) -> dict[str, Any]:
        started_at = dt.datetime.now(dt.UTC)
        ti = context["ti"]
        kafka = PsttKafkaHook(self.kafka_config_id)
        parameters: dict[str, Any] = {}
        publisher: RowPublisher | None = None
        session: ExactlyOnceSession | None = None
        keeper: PositionKeeper | None = None
        try:
            try:
                query = query_file.load_query(self.sql, self.sql_file)
                parameters = query.bind_values(self.parameters)
                self.log.info(
                    "Running %s with %s",
                    query.source,
                    ", ".join(f"{k}={v!r}" for k, v in parameters.items()) or "no parameters",
                )
                metadata = build_metadata(
                    dag_id=ti.dag_id,
                    run_id=ti.run_id,
                    task_id=ti.task_id,
                    query=self.query_name,
                    extracted_at=started_at,
                )
                headers = metadata_headers(metadata) if self.metadata == "headers" else []
                publisher, session = self._prepare(kafka, ti, headers)
                keeper = self._keeper(kafka, publisher, session, ti)
                try:
                    envelope = metadata if self.metadata == "envelope" else None
                    self._publish(query, parameters, publisher, session, keeper, envelope)
                except DeliveryError as err:
                    explained = self._explained(kafka, err)
                    if explained is err:
                        raise
                    raise explained from err
            except (query_file.QueryFileError, ordered_read.OrderedReadError) as err:
                # Parsing stays free of Airflow (pstt validate); at task time the same error must not be retried.
                raise at_task_time(err) from None
            finally:
                kafka.librdkafka_log.flush()
        except BaseException as err:
            error = f"{type(err).__name__}: {err}"
            self._report(context, self._summary(context, started_at, parameters, publisher, session, keeper, error))
            raise
        summary = self._summary(context, started_at, parameters, publisher, session, keeper, None)
        result = self._report(context, summary)
        assets.announce(
            context.get("outlet_events"), self.outlets, assets.event_extra(summary, self.incremental is not None)
        )
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

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """
        For Airflow's OpenLineage provider, after a try succeeds or fails: the tables the query reads, the topic
        with what the try delivered to it, the query as the job's SQL facet (``pstt_provider.lineage``).
        """
        from pstt_provider.lineage import export_lineage

        return export_lineage(
            conn_id=self.conn_id,
            sql=self.sql,
            sql_file=self.sql_file,
            kafka_conn_id=self.kafka_config_id,
            topic=self.topic,
            summary=self._reported,
        )

    def _prepare(
        self, kafka: PsttKafkaHook, ti: Any, headers: Sequence[tuple[str, bytes]]
    ) -> tuple[RowPublisher, ExactlyOnceSession | None]:
        """
        Everything the rows need before the query runs, failing fast: a broker that answers, topics that can be
        written, producers fitted to them (``headers`` on every message), and for exactly_once the session of this
        attempt.
        """
        overrides = dict(self.producer_config)
        exactly_once = self.delivery == "exactly_once"
        if exactly_once:
            txn_id = transactional_id(ti.dag_id, ti.task_id, ti.run_id, getattr(ti, "map_index", -1))
            overrides = transaction_overrides(
                overrides,
                txn_id,
                message_timeout_ms=int(SAFE_PRODUCER_DEFAULTS["message.timeout.ms"]),
                message_timeout_explicit="message.timeout.ms" in kafka.explicit_config(overrides),
            )
        kafka.probe(self.metadata_timeout_s).raise_for_problem()
        if exactly_once:
            overrides = fit_transaction_timeout(
                overrides,
                "transaction.timeout.ms" in kafka.explicit_config(self.producer_config),
                broker_transaction_max_ms(kafka.get_admin_client(), self.metadata_timeout_s),
            )
        topics = kafka.topics()
        topics.ensure_writable(self.topic, self.metadata_timeout_s, topic_config=self.topic_config)
        config = kafka.producer_config(topics.fit(self.topic, overrides, self.metadata_timeout_s))
        dead_letter_config = None
        if self.dead_letter_topic:
            # Dead letters go through a plain producer (never transactional) fitted to their own topic, whose limit
            # may be raised above the default: that topic is there for rows the main one cannot take.
            topics.ensure_writable(self.dead_letter_topic, self.metadata_timeout_s, topic_config=self.topic_config)
            plain = {k: v for k, v in self.producer_config.items() if not k.startswith("transaction")}
            fitted = topics.fit(self.dead_letter_topic, plain, self.metadata_timeout_s, allow_larger=True)
            dead_letter_config = kafka.producer_config(fitted)
        sender = BulkSender(
            config,
            self.topic,
            dead_letter_topic=self.dead_letter_topic,
            dead_letter_config=dead_letter_config,
            headers=headers,
        )
        publisher = RowPublisher(
            sender=sender,
            key_field=self.message_key_field,
            null_key=self.null_key,
            progress=ProgressLog(self.log, self.progress_interval_s),
            flush_timeout_s=float(config["message.timeout.ms"]) / 1000 + self.flush_grace_s,
            value_format=value_format(self.value_format, schema_registry=self.schema_registry, topic=self.topic),
        )
        if not exactly_once:
            return publisher, None
        session = ExactlyOnceSession(
            kafka,
            sender.producer,
            txn_id=txn_id,
            run={
                "dag_id": ti.dag_id,
                "task_id": ti.task_id,
                "run_id": ti.run_id,
                "map_index": getattr(ti, "map_index", -1),
                "try_number": ti.try_number,
                "topic": self.topic,
            },
            marker_topic=self.run_marker_topic,
            transaction_timeout_ms=int(overrides["transaction.timeout.ms"]),
            timeout_s=self.metadata_timeout_s,
            force=self.force,
        )
        return publisher, session

    def _keeper(
        self, kafka: PsttKafkaHook, publisher: RowPublisher, session: ExactlyOnceSession | None, ti: Any
    ) -> PositionKeeper | None:
        """The job's position, for an incremental job or one with checkpoints; None: every run reads every row."""
        if self.incremental is None and self.checkpoint_rows is None:
            return None
        return PositionKeeper(
            state=StateTopic(kafka, self.state_topic, timeout_s=self.metadata_timeout_s),
            key=state_key(ti.dag_id, ti.task_id, getattr(ti, "map_index", -1)),
            columns=self.incremental.columns if self.incremental is not None else self.order_by,
            run_id=ti.run_id,
            publisher=publisher,
            session=session,
            every=self.checkpoint_rows,
            incremental=self.incremental,
        )

    def _plan(self, keeper: PositionKeeper | None) -> ReadPlan | None:
        """How this try reads; None: the query exactly as written."""
        plan = keeper.load() if keeper is not None else ReadPlan(self.order_by)
        if self.split_range is not None:
            self.log.info("Reading %s", self.split_range)
            plan = dataclasses.replace(plan, split=self.split_range)
        return plan if plan.columns or plan.split is not None else None

    def _publish(
        self,
        query: QueryFile,
        parameters: Mapping[str, Any],
        publisher: RowPublisher,
        session: ExactlyOnceSession | None,
        keeper: PositionKeeper | None,
        envelope: Mapping[str, Any] | None,
    ) -> None:
        """The rows as messages, each wrapped with ``envelope`` as its metadata unless that is None."""
        with session if session is not None else nullcontext():
            if session is not None and not session.publishing:
                return  # the run already committed (the session said so in the log)
            plan = self._plan(keeper)
            try:
                with self._rows(query, parameters, plan) as result:
                    if keeper is not None:
                        keeper.attach(result)
                    publisher.publish(result, envelope, on_batch=_after_batch(keeper, session))
                publisher.finish()
                if keeper is not None:
                    keeper.finish()
                elif session is not None:
                    session.commit(publisher.rows, publisher.sender.tracker.acked, publisher.flush_timeout_s)
            except BaseException as err:
                if session is not None:
                    raise  # the session aborts the transaction: nothing of this attempt is visible
                settled = publisher.settle_after(err)
                if settled is err:
                    raise
                raise settled from err

    def _explained(self, kafka: PsttKafkaHook, err: DeliveryError) -> DeliveryError:
        """
        ``err`` with its cause when the cluster shows one: messages that timed out because brokers are down leave
        the partitions with too few in-sync replicas, and the error says so, naming the brokers still reachable.
        """
        if type(err) is not DeliveryError:
            return err  # the too-large and not-authorized errors say their cause already
        shortfall = kafka.topics().replication_shortfall(self.topic)
        return err if shortfall is None else NotEnoughReplicasError(f"{shortfall}; {err}")

    @contextmanager
    def _rows(self, query: QueryFile, parameters: Mapping[str, Any], plan: ReadPlan | None) -> Iterator[ResultStream]:
        db_hook = BaseHook.get_connection(self.conn_id).get_hook()
        dialect = dialect_for(db_hook, self.conn_id)
        connection = db_hook.get_conn()
        paramstyle = dialect.paramstyle(connection)
        with read_only_session(dialect, connection, query.source):
            if plan is not None:
                described = columns_query(query).statement(paramstyle)
                names = result_columns(connection, described.sql, described.bind(parameters), query.source)
                query, window = plan.apply(query, dialect, names)
                parameters = {**parameters, **window}
            statement = query.statement(paramstyle)
            with open_result(
                dialect,
                connection,
                statement.sql,
                statement.bind(parameters),
                source=query.source,
                fetch_size=self.batch_size,
                prefetch_rows=self.prefetch_rows,
            ) as result:
                yield result

    def _summary(
        self,
        context: Mapping[str, Any],
        started_at: dt.datetime,
        parameters: Mapping[str, Any],
        publisher: RowPublisher | None,
        session: ExactlyOnceSession | None,
        keeper: PositionKeeper | None,
        error: str | None,
    ) -> DeliverySummary:
        ti = context["ti"]
        tracker = publisher.sender.tracker if publisher is not None else DeliveryTracker()
        skipped = publisher.skipped if publisher is not None else 0
        sent, aborted = tracker.acked, 0
        if session is not None and error is not None:
            # The open transaction was aborted: what the broker acknowledged in it is invisible to read_committed
            # consumers; what checkpoints committed before it stays.
            sent, aborted = session.committed_messages, tracker.acked - session.committed_messages
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
            rows=tracker.rows + skipped,
            messages_sent=sent,
            messages_failed=tracker.failed + tracker.dead_letter_failed,
            messages_skipped=skipped,
            messages_dead_lettered=tracker.dead_lettered,
            messages_aborted=aborted,
            bytes=tracker.bytes,
            latency=tracker.latency,
            errors=tuple(errors[:MAX_ERRORS]),
            display_name=getattr(dag, "dag_display_name", None) or ti.dag_id,
            parameters=dict(parameters),
            already_published=session.already_published if session is not None else None,
            position_before=keeper.shown_before if keeper is not None else None,
            position_after=keeper.shown_after if keeper is not None else None,
            checkpoints=keeper.checkpoints if keeper is not None else 0,
        )

    def _report(self, context: Mapping[str, Any], summary: DeliverySummary) -> dict[str, Any]:
        """
        The try's summary as its XCom (Airflow's result, read by the e-mail) and as an Airflow Variable, the
        durable copy: Airflow clears a task's XComs when its next try starts, a Variable it keeps until the
        metrics writer has moved it into the pstt table.
        """
        self._reported = summary
        result = summary.to_dict()
        context["ti"].xcom_push(key=XCOM_KEY, value=result)
        try:
            from airflow.sdk import Variable

            Variable.set(summary.variable_key, summary.to_json(), description=f"pstt try of {summary.dag_id}")
        except Exception as err:  # outside a task runner (tests calling execute) there is no API to write to
            self.log.warning("Could not keep this try's delivery summary for the metrics (%s)", err)
        return result


def _metadata_mode(task_id: str, metadata: MetadataMode, include_metadata: bool | None) -> MetadataMode:
    """``metadata``, or what the older ``include_metadata`` says when ``metadata`` is left at its default."""
    if metadata not in METADATA_MODES:
        raise ValueError(f"{task_id}: metadata must be one of {', '.join(METADATA_MODES)}, not {metadata!r}")
    if include_metadata is None:
        return metadata
    implied: MetadataMode = "envelope" if include_metadata else "none"
    if metadata not in ("envelope", implied):
        raise ValueError(
            f"{task_id}: include_metadata={include_metadata} means metadata={implied!r}, but metadata={metadata!r} "
            "was given; pass metadata alone"
        )
    return implied


def _after_batch(
    keeper: PositionKeeper | None, session: ExactlyOnceSession | None
) -> Callable[[int, Sequence[Any]], None] | None:
    """What runs after each batch: the position's checkpoints, else the transaction's clock, else nothing."""
    if keeper is not None:
        return keeper.after_batch
    if session is None:
        return None
    check = session.check
    return lambda rows, _last_row: check(rows)

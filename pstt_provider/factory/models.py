"""
The job spec: PSTT Tool's scheduling JSON, accepted unchanged, plus a few optional Airflow-side fields.

These models are the single source of truth for the spec: ``pstt schema`` prints their JSON Schema and
scripts/gen_docs.py generates docs/job-spec.md's field table from it. Every model forbids unknown fields so
that a typo is an error with a suggestion instead of a silently ignored setting; a field that was retired
(:attr:`_Strict.retired_fields`) is refused with what replaced it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from croniter import CroniterBadCronError, CroniterBadDateError, croniter
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator, model_validator

from pstt_provider.factory import producer_settings
from pstt_provider.factory.fields import (
    Address,
    AssetUri,
    ConnId,
    DefineName,
    Identifier,
    LongText,
    OrderColumn,
    ParameterValue,
    QueryName,
    Sender,
    Text,
    TimeZone,
    Topic,
)
from pstt_provider.factory.problems import rule_error
from pstt_provider.ordered_read import OrderedReadError, ordering
from pstt_provider.serialization import METADATA_MODES, MetadataMode
from pstt_provider.splitting import MAX_PARTITIONS
from pstt_provider.value_formats import ValueFormatName

CRON_PRESETS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
}
CRON_FIELDS = 5
CRON_HORIZON_YEARS = 8
"""A cron that never fires within this many years (leap days fire every 4) is refused as impossible."""
MAX_DELAY_S = 7 * 86_400
"""Longest retry_delay and timeout: a week. Airflow itself fails on durations past ``timedelta``'s range."""
_DAG_ID = re.compile(r"^[A-Za-z0-9_.-]{1,250}$")


class _Strict(BaseModel):
    """
    Unknown fields are errors, and values are never coerced: ``true`` is not 1, ``"100"`` is not a number,
    ``"yes"`` is not a boolean, so a YAML or JSON slip is a spec problem instead of a silent surprise.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    retired_fields: ClassVar[Mapping[str, str]] = {}
    """Field name -> why it is gone and what to do: such a field is a problem saying so, not an "unknown field"."""


_TOPIC_SETTING = re.compile(r"^[a-z][a-z0-9.]{0,99}$")


class TopicConfig(_Strict):
    """How to create the topic (and the dead-letter topic) when it does not exist yet."""

    partitions: int | None = Field(None, ge=1, le=100_000, description="partitions; default: the broker's")
    replication_factor: int | None = Field(
        None, ge=1, le=100, description="replicas of each partition; default: the broker's"
    )
    config: dict[str, str | int] = Field(
        default_factory=dict, description="topic settings, e.g. retention.ms, cleanup.policy, max.message.bytes"
    )

    @field_validator("config")
    @classmethod
    def _setting_names(cls, value: dict[str, str | int]) -> dict[str, str | int]:
        bad = [name for name in value if not _TOPIC_SETTING.match(name)]
        if bad:
            raise ValueError(f"not a topic setting name: {', '.join(map(repr, bad))}")
        return value


class KafkaConfig(_Strict):
    """Where the rows go. ``connection_name`` "default" means the Airflow connection ``kafka_default``."""

    enabled: bool = Field(
        True, description="false: like the job's `enabled: false` (PSTT Tool: Kafka export switched off)"
    )
    topic: Topic = Field(description="destination topic")
    message_key_field: Identifier = Field(description="result column whose value becomes the message key")
    batch_size: int = Field(
        100,
        gt=0,
        le=1_000_000,
        description="accepted so that PSTT Tool's files load unchanged, and not used: the rows fetched per round trip "
        "follow the database (the connection's type); tune the producer with producer_config "
        "(batch.num.messages, linger.ms)",
    )
    metadata: MetadataMode = Field(
        "envelope",
        description="where the run's metadata (dag_id, run_id, task_id, query, extracted_at, ...) goes: envelope wraps "
        "each row as {data, metadata}; headers sends the row alone with each field as a pstt-<field> header "
        "(pstt-run-id); none sends the row alone",
    )
    include_metadata: bool | None = Field(
        None, description="PSTT Tool's spelling of metadata: true = envelope, false = none; must agree with metadata"
    )
    value_format: ValueFormatName = Field(
        "json",
        description="the message value: json (the row as a JSON object), avro or json_schema (Confluent wire format, "
        "the schema derived from the query's columns and registered under <topic>-value in schema_registry)",
    )
    schema_registry: ConnId | None = Field(
        None,
        description="Airflow connection (type http, host = the registry's URL) of the Schema Registry; required by "
        "value_format avro and json_schema, unused by json",
    )
    connection_name: ConnId = Field("default", description='Airflow Kafka connection id; "default" means kafka_default')
    delivery: Literal["at_least_once", "exactly_once"] = Field(
        "at_least_once", description="exactly_once uses Kafka transactions (no duplicates for read_committed readers)"
    )
    null_key: Literal["fail", "null", "skip"] = Field(
        "fail", description="what a NULL key does: fail the task, send with a null key, or skip the row"
    )
    topic_config: TopicConfig | None = Field(
        None, description="create the topic (and the dead-letter topic) with these settings when absent"
    )
    dead_letter_topic: Topic | None = Field(
        None, description="topic for rows too large for `topic` (sent there with the error in their headers)"
    )
    producer_config: dict[str, str | int | bool] | None = Field(
        None,
        description="librdkafka tuning properties (batching, compression, acks, retries, timeouts, sizes) for this "
        "job; addressing and security come from the connection only (see the allowed list)",
    )

    @model_validator(mode="before")
    @classmethod
    def _one_metadata(cls, data: Any) -> Any:
        """``include_metadata`` given decides ``metadata``; both given must say the same."""
        if not isinstance(data, dict) or type(included := data.get("include_metadata")) is not bool:
            return data  # not a mapping, or no (valid) include_metadata: the fields' own checks speak
        implied = "envelope" if included else "none"
        given = data.get("metadata", implied)
        if given in METADATA_MODES and given != implied:
            raise rule_error(
                "metadata",
                f"include_metadata {str(included).lower()} means metadata {implied!r}, but metadata is {given!r}; "
                "keep one of the two fields",
            )
        return {**data, "metadata": given}

    @model_validator(mode="after")
    def _registry_for_schema_formats(self) -> KafkaConfig:
        if self.value_format != "json" and self.schema_registry is None:
            raise rule_error(
                "schema_registry",
                f"value_format {self.value_format} needs the Airflow connection of a Schema Registry here",
            )
        return self

    @field_validator("message_key_field")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must name a result column")
        return value

    @field_validator("producer_config")
    @classmethod
    def _tuning_only(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else producer_settings.check(value)

    @property
    def kafka_conn_id(self) -> str:
        return "kafka_default" if self.connection_name == "default" else self.connection_name


class IncrementalConfig(_Strict):
    """Each run reads only the rows after the job's stored position (docs/reliability.md, incremental runs)."""

    column: OrderColumn = Field(description="result column whose values only grow: a timestamp, a date or a number")
    tiebreaker: OrderColumn | None = Field(
        None,
        description="a unique result column that orders rows sharing a `column` value; needed unless `column` "
        "is unique itself",
    )
    initial: Annotated[
        int | float | str | dt.datetime | dt.date | None, WithJsonSchema({"type": ["string", "number", "null"]})
    ] = Field(
        None,
        description="where the first run starts (inclusive), e.g. 2026-01-01T00:00:00 or 1000; default: the first row",
    )
    lag_seconds: float | None = Field(
        None,
        ge=0,
        le=MAX_DELAY_S,
        description="date/timestamp columns: leave rows newer than the database's now "
        "minus this many seconds to a later run, so rows committed late are not skipped; default: no bound",
    )


class ScheduleConfig(_Strict):
    """What else starts a run besides ``scheduling_mode``/``cron``: updates of other jobs' topics (Airflow Assets)."""

    assets: list[AssetUri] = Field(
        min_length=1,
        max_length=100,
        description="run when any of these Airflow Assets is updated, e.g. another job's topic "
        "kafka://<its first bootstrap server>/<topic>; with a cron the job also runs on the cron",
    )

    @field_validator("assets")
    @classmethod
    def _once_each(cls, value: list[str]) -> list[str]:
        repeated = sorted({uri for uri in value if value.count(uri) > 1})
        if repeated:
            raise ValueError(f"listed more than once: {', '.join(repeated)}")
        return value


class ParallelConfig(_Strict):
    """Split each run into ranges of one column, each read and published by a mapped task of its own."""

    split_by: OrderColumn = Field(description="result column of numbers, dates or timestamps the ranges divide")
    partitions: int = Field(ge=2, le=MAX_PARTITIONS, description="how many ranges (mapped tasks) at most")


class EmailNotification(_Strict):
    """E-mail through the SMTP provider's notifier; recipients get one message per finished run."""

    enabled: bool = Field(False, description="send e-mails at all")
    on_success: bool = Field(False, description="e-mail when a run succeeds")
    on_failure: bool = Field(True, description="e-mail when a run fails (after its last retry)")
    recipients: list[Address] = Field(default_factory=list, max_length=100, description="addresses")
    from_email: Sender | None = Field(None, description="sender; default: the SMTP connection's from_email")
    smtp_connection: ConnId | None = Field(None, description="Airflow SMTP connection id; default: smtp_default")

    @model_validator(mode="after")
    def _someone_to_tell(self) -> EmailNotification:
        if self.enabled and (self.on_success or self.on_failure) and not self.recipients:
            raise rule_error("recipients", "e-mail is enabled but there are no recipients")
        return self

    def addresses(self, event: Literal["success", "failure"]) -> list[str]:
        wanted = self.on_success if event == "success" else self.on_failure
        return list(self.recipients) if self.enabled and wanted else []


class JobSpec(_Strict):
    """One scheduled export: PSTT Tool's job JSON (``name`` ... ``email_notification``) plus optional additions."""

    retired_fields: ClassVar[Mapping[str, str]] = {
        "connection_type": "no longer used: factory DAGs always use SqlToKafkaOperator, and the database's behaviour "
        "(fetch size, Oracle tuning) now follows the type of the Airflow connection `connection`; delete the field",
    }

    name: Text = Field(min_length=1, description="job name, shown as the DAG's display name")
    description: LongText = Field("", description="free text, shown as the DAG's description")
    query: QueryName = Field(description="query file under $PSTT_QUERIES_DIR, e.g. ID--Description.sql")
    connection: ConnId = Field(description="Airflow connection id of the source database")
    scheduling_mode: Literal["cron", "manual"] = Field(
        "cron", description="cron: run on `cron`; manual: no time schedule, only when triggered (or by `schedule`)"
    )
    cron: str | None = Field(
        None, max_length=200, description="5-field cron expression or @daily-style preset, in `timezone`"
    )
    schedule: ScheduleConfig | None = Field(
        None, description="run when upstream Airflow Assets update (beside the cron, or alone)"
    )
    enabled: bool = Field(
        True, description="false: the DAG is created paused and never scheduled; true: created unpaused"
    )
    timeout: int | None = Field(None, gt=0, le=MAX_DELAY_S, description="seconds before a run attempt is killed")
    max_retries: int = Field(0, ge=0, le=100, description="retries after a failed attempt")
    retry_delay: int = Field(300, ge=0, le=MAX_DELAY_S, description="seconds between attempts")
    parameters: dict[DefineName, ParameterValue] = Field(
        default_factory=dict, description="query parameter values; strings may use {date}, {date-N}, ... templates"
    )
    export_format: str = Field("kafka", description='only "kafka" is supported')
    kafka_config: KafkaConfig = Field(description="the Kafka export")
    email_notification: EmailNotification = Field(
        default_factory=EmailNotification, description="e-mail after a run (default: none)"
    )
    timezone: TimeZone | None = Field(None, description="IANA name for the cron and the date templates")
    dag_id: str | None = Field(None, description="default: pstt_ + the spec file's path below the jobs folder")
    tags: list[Annotated[Text, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=50, description="extra DAG tags (pstt is always added)"
    )
    owner: Text = Field("pstt", min_length=1, description="DAG owner shown in the UI")
    catchup: bool = Field(False, description="create runs for missed cron slots since the first schedule")
    incremental: IncrementalConfig | None = Field(
        None, description="read only the rows after the job's stored position, kept in Kafka with the rows"
    )
    checkpoint_rows: int | None = Field(
        None,
        ge=1,
        le=1_000_000_000,
        description="commit the rows and the position every this many rows, so a "
        "retry resumes there; needs incremental or order_by",
    )
    parallel: ParallelConfig | None = Field(
        None,
        description="split each run into ranges of split_by read in parallel by mapped tasks (not yet with "
        "incremental)",
    )
    order_by: list[OrderColumn] | None = Field(
        None,
        min_length=1,
        max_length=16,
        description="a unique key of the result that a full-run job with checkpoint_rows is read in",
    )

    @field_validator("export_format")
    @classmethod
    def _kafka_only(cls, value: str) -> str:
        if value != "kafka":
            raise ValueError(f"export format {value[:40]!r} is not supported yet: pstt-provider only exports to kafka")
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return check_cron(value.strip())

    @field_validator("parameters")
    @classmethod
    def _one_spelling(cls, value: dict[str, str]) -> dict[str, str]:
        spellings: dict[str, list[str]] = {}
        for name in value:
            spellings.setdefault(name.upper(), []).append(name)
        clashes = [names for names in spellings.values() if len(names) > 1]
        if clashes:
            listed = "; ".join(" and ".join(names) for names in clashes)
            raise ValueError(f"parameter names are case-insensitive, so these are the same parameter: {listed}")
        return value

    @field_validator("dag_id")
    @classmethod
    def _dag_id(cls, value: str | None) -> str | None:
        if value is not None and not _DAG_ID.match(value):
            raise ValueError(f"{value[:80]!r} is not a DAG id (1-250 of letters, digits, '_', '.', '-')")
        return value

    @model_validator(mode="after")
    def _resumable_order(self) -> JobSpec:
        incremental = self.incremental.model_dump() if self.incremental is not None else None
        try:
            ordering(incremental, self.order_by, self.checkpoint_rows, parallel=self.parallel is not None)
        except OrderedReadError as err:
            raise rule_error(err.field, err.reason) from None
        return self

    @model_validator(mode="after")
    def _cron_when_scheduled(self) -> JobSpec:
        if self.scheduling_mode == "cron" and self.cron is None and self.schedule is None:
            raise rule_error("cron", 'scheduling_mode is "cron" but cron is empty (use "manual" for trigger-only jobs)')
        return self

    @model_validator(mode="after")
    def _not_on_its_own_topic(self) -> JobSpec:
        """A job run by updates of its own topic would start again after each run, without end."""
        own = (
            [uri for uri in self.schedule.assets if _kafka_topic(uri) == self.kafka_config.topic]
            if self.schedule
            else []
        )
        if own:
            raise rule_error(
                "schedule.assets",
                f"{own[0]} is this job's own topic: each run would trigger the next; name upstream assets only",
            )
        return self


def _kafka_topic(uri: str) -> str | None:
    """The topic of a ``kafka://server/topic`` asset URI, None for another scheme."""
    scheme, _, rest = uri.partition("://")
    return rest.partition("/")[2] if scheme == "kafka" else None


def check_cron(expression: str) -> str:
    """``expression`` when it is a preset or five fields that fire within :data:`CRON_HORIZON_YEARS` years."""
    if expression.startswith("@"):
        if expression not in CRON_PRESETS:
            raise ValueError(f"unknown cron preset {expression!r} (known: {', '.join(CRON_PRESETS)})")
        return expression
    fields = expression.split()
    if len(fields) != CRON_FIELDS:
        raise ValueError(
            f"invalid cron expression {expression!r}: it has {len(fields)} fields, a cron has 5 "
            "(minute hour day-of-month month day-of-week; no seconds or years)"
        )
    start = dt.datetime(2024, 1, 1)
    try:
        first = croniter(expression, start).get_next(dt.datetime)
    except CroniterBadDateError:
        raise ValueError(f"cron expression {expression!r} never fires (no such date, e.g. 30 February)") from None
    except (CroniterBadCronError, ValueError, KeyError) as err:
        raise ValueError(f"invalid cron expression {expression!r}: {err}") from None
    if first.year - start.year > CRON_HORIZON_YEARS:
        raise ValueError(f"cron expression {expression!r} never fires (no such date, e.g. 30 February)")
    return expression


class KafkaDefaults(_Strict):
    connection_name: ConnId | None = None
    batch_size: int | None = Field(None, gt=0, le=1_000_000)
    metadata: MetadataMode | None = None
    include_metadata: bool | None = None
    value_format: ValueFormatName | None = None
    schema_registry: ConnId | None = None
    delivery: Literal["at_least_once", "exactly_once"] | None = None
    null_key: Literal["fail", "null", "skip"] | None = None


class EmailDefaults(_Strict):
    enabled: bool | None = None
    on_success: bool | None = None
    on_failure: bool | None = None
    recipients: list[Address] | None = Field(None, max_length=100)
    from_email: Sender | None = None
    smtp_connection: ConnId | None = None


class FolderDefaults(_Strict):
    """
    ``_defaults.json`` / ``_defaults.yaml`` in a jobs folder: values every spec in that folder and below
    starts from. Nested folders override outer ones; a spec's own values win; lists are replaced, not merged.
    """

    timezone: TimeZone | None = None
    connection: ConnId | None = None
    max_retries: int | None = Field(None, ge=0, le=100)
    retry_delay: int | None = Field(None, ge=0, le=MAX_DELAY_S)
    timeout: int | None = Field(None, gt=0, le=MAX_DELAY_S)
    tags: list[Annotated[Text, Field(min_length=1, max_length=100)]] | None = Field(None, max_length=50)
    owner: Text | None = None
    kafka_config: KafkaDefaults | None = None
    email_notification: EmailDefaults | None = None


def job_schema() -> dict[str, Any]:
    """The JSON Schema of a job spec (``pstt schema``)."""
    schema = JobSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "PSTT job spec"
    return schema

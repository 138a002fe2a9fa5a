"""
The job spec: PSTT Tool's scheduling JSON, accepted unchanged, plus a few optional Airflow-side fields.

These models are the single source of truth for the spec: ``pstt schema`` prints their JSON Schema and the
docs' field table is generated from it (:func:`field_table`). Every model forbids unknown fields so that a
typo is an error with a suggestion instead of a silently ignored setting.
"""

from __future__ import annotations

import re
import zoneinfo
from typing import Annotated, Any, Literal

from croniter import CroniterBadCronError, CroniterBadDateError, croniter
from pydantic import BaseModel, ConfigDict, Field, field_validator

CRON_PRESETS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
}
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_DAG_ID = re.compile(r"^[A-Za-z0-9_.-]{1,250}$")
_EMAIL = re.compile(r"^[^@\s,;]+@[^@\s,;]+$")

ParameterValue = Annotated[str | int | float, Field(union_mode="left_to_right")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KafkaConfig(_Strict):
    """Where the rows go. ``connection_name`` "default" means the Airflow connection ``kafka_default``."""

    enabled: bool = Field(
        True, description="false keeps the DAG but never schedules it (PSTT Tool: Kafka export switched off)"
    )
    topic: str = Field(description="destination topic")
    message_key_field: str = Field(description="result column whose value becomes the message key")
    batch_size: int = Field(100, gt=0, le=1_000_000, description="rows fetched and produced per batch")
    include_metadata: bool = Field(True, description="wrap each row as {data, metadata}; false sends the row alone")
    connection_name: str = Field(
        "default",
        min_length=1,
        description='Airflow Kafka connection id; "default" means kafka_default',
    )
    delivery: Literal["at_least_once", "exactly_once"] = Field(
        "at_least_once", description="exactly_once uses Kafka transactions (no duplicates for read_committed readers)"
    )
    null_key: Literal["fail", "null", "skip"] = Field(
        "fail", description="what a NULL key does: fail the task, send with a null key, or skip the row"
    )
    dead_letter_topic: str | None = Field(None, description="topic for rows that cannot be serialized")
    producer_config: dict[str, str | int | float | bool] | None = Field(
        None, description="librdkafka settings that override the connection's for this job"
    )

    @field_validator("topic", "dead_letter_topic")
    @classmethod
    def _topic_name(cls, value: str | None) -> str | None:
        if value is not None and not _TOPIC.match(value):
            raise ValueError(f"{value!r} is not a Kafka topic name (1-249 of letters, digits, '.', '_', '-')")
        return value

    @field_validator("message_key_field")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must name a result column")
        return value

    @property
    def kafka_conn_id(self) -> str:
        return "kafka_default" if self.connection_name == "default" else self.connection_name


class EmailNotification(_Strict):
    """E-mail through the SMTP provider's notifier; recipients get one message per finished run."""

    enabled: bool = Field(False, description="send e-mails at all")
    on_success: bool = Field(False, description="e-mail when a run succeeds")
    on_failure: bool = Field(True, description="e-mail when a run fails (after its last retry)")
    recipients: list[str] = Field(default_factory=list, description="addresses")
    from_email: str | None = Field(None, description="sender; default: the SMTP connection's from_email")
    smtp_connection: str | None = Field(None, description="Airflow SMTP connection id; default: smtp_default")

    @field_validator("recipients")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        bad = [address for address in value if not _EMAIL.match(address)]
        if bad:
            raise ValueError(f"not an e-mail address: {', '.join(map(repr, bad))}")
        return value

    def addresses(self, event: Literal["success", "failure"]) -> list[str]:
        wanted = self.on_success if event == "success" else self.on_failure
        return list(self.recipients) if self.enabled and wanted else []


class JobSpec(_Strict):
    """One scheduled export: PSTT Tool's job JSON (``name`` ... ``email_notification``) plus optional additions."""

    name: str = Field(min_length=1, description="job name, shown as the DAG's display name")
    description: str = Field("", description="free text, shown as the DAG's description")
    query: str = Field(min_length=1, description="query file under $PSTT_QUERIES_DIR, e.g. ID--Description.sql")
    connection: str = Field(min_length=1, description="Airflow connection id of the source database")
    scheduling_mode: Literal["cron", "manual"] = Field(
        "cron", description="cron: run on `cron`; manual: only when triggered"
    )
    cron: str | None = Field(None, description="5-field cron expression or @daily-style preset, in `timezone`")
    enabled: bool = Field(True, description="false keeps the DAG (manual triggers work) but never schedules it")
    timeout: int | None = Field(None, gt=0, description="seconds before a run attempt is killed")
    max_retries: int = Field(0, ge=0, le=100, description="retries after a failed attempt")
    retry_delay: int = Field(300, ge=0, description="seconds between attempts")
    parameters: dict[str, ParameterValue] = Field(
        default_factory=dict, description="query parameter values; strings may use {date}, {date-N}, ... templates"
    )
    export_format: str = Field("kafka", description='only "kafka" is supported')
    kafka_config: KafkaConfig = Field(description="the Kafka export")
    email_notification: EmailNotification = Field(
        default_factory=EmailNotification, description="e-mail after a run (default: none)"
    )
    timezone: str | None = Field(None, description="IANA name for the cron and the date templates")
    dag_id: str | None = Field(None, description="default: pstt_ + the spec file's path below the jobs folder")
    connection_type: Literal["oracle", "generic"] | None = Field(
        None,
        description="oracle picks OracleToKafkaOperator; default: read from an AIRFLOW_CONN_* variable, else generic",
    )
    tags: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, description="extra DAG tags (pstt is always added)"
    )
    owner: str = Field("pstt", min_length=1, description="DAG owner shown in the UI")
    catchup: bool = Field(False, description="create runs for missed cron slots since the first schedule")

    @field_validator("export_format")
    @classmethod
    def _kafka_only(cls, value: str) -> str:
        if value != "kafka":
            raise ValueError(f"export format {value!r} is not supported yet: pstt-provider only exports to kafka")
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        expression = CRON_PRESETS.get(value.strip(), value.strip())
        try:
            croniter(expression)
        except (CroniterBadCronError, CroniterBadDateError, ValueError) as err:
            raise ValueError(f"invalid cron expression {value!r}: {err}") from None
        return value.strip()

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name like Europe/Rome)") from None
        return value

    @field_validator("dag_id")
    @classmethod
    def _dag_id(cls, value: str | None) -> str | None:
        if value is not None and not _DAG_ID.match(value):
            raise ValueError(f"{value!r} is not a DAG id (letters, digits, '_', '.', '-')")
        return value


class KafkaDefaults(_Strict):
    connection_name: str | None = None
    batch_size: int | None = Field(None, gt=0)
    include_metadata: bool | None = None
    delivery: Literal["at_least_once", "exactly_once"] | None = None
    null_key: Literal["fail", "null", "skip"] | None = None


class EmailDefaults(_Strict):
    enabled: bool | None = None
    on_success: bool | None = None
    on_failure: bool | None = None
    recipients: list[str] | None = None
    from_email: str | None = None
    smtp_connection: str | None = None


class FolderDefaults(_Strict):
    """
    ``_defaults.json`` / ``_defaults.yaml`` in a jobs folder: values every spec in that folder and below
    starts from. Nested folders override outer ones; a spec's own values win; lists are replaced, not merged.
    """

    timezone: str | None = None
    connection: str | None = None
    max_retries: int | None = Field(None, ge=0, le=100)
    retry_delay: int | None = Field(None, ge=0)
    timeout: int | None = Field(None, gt=0)
    tags: list[str] | None = None
    owner: str | None = None
    kafka_config: KafkaDefaults | None = None
    email_notification: EmailDefaults | None = None


def job_schema() -> dict[str, Any]:
    """The JSON Schema of a job spec (``pstt schema``)."""
    schema = JobSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "PSTT job spec"
    return schema


def field_table() -> list[tuple[str, str, bool, str, str]]:
    """(field path, type, required, default, description) for every spec field, for generated docs."""
    rows: list[tuple[str, str, bool, str, str]] = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            annotation = field.annotation
            nested = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
            required = field.is_required()
            default = "" if required or field.default_factory else repr(field.default)
            kind = nested.__name__ if nested else _type_name(annotation)
            rows.append((prefix + name, kind, required, default, field.description or ""))
            if nested:
                walk(nested, f"{prefix}{name}.")

    walk(JobSpec, "")
    return rows


def _type_name(annotation: Any) -> str:
    text = repr(annotation).replace("typing.", "")
    return re.sub(r"<class '([^']+)'>", r"\1", text)

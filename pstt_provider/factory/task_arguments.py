"""
Which spec field becomes which argument of a factory DAG's one task, a ``SqlToKafkaOperator``.

:data:`TASK_ARGUMENTS` is the one list: the builder passes exactly these keywords, ``pstt render`` reads each
back from the task it built (under the same name, or the key the CLI contract gives it), and docs/job-spec.md's
table of them is generated from it. A spec option that reaches the operator is added here, once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pstt_provider.factory.notifications import Event, notifiers

if TYPE_CHECKING:
    from pstt_provider.factory.validation import JobConfig

TASK_ID = "export_to_kafka"
SPLIT_TASK_ID = "split_ranges"
"""A parallel job's first task: it plans the ranges ``TASK_ID`` is mapped over."""
ANNOUNCE_TASK_ID = "announce_topic"
"""A parallel job's last task: once every range is in, the topic's Asset event with the run's totals."""


def _same(value: Any) -> Any:
    return value


def _seconds(value: dt.timedelta | None) -> float | None:
    return value.total_seconds() if value is not None else None


def _incremental(value: Any) -> dict[str, Any] | None:
    """The task's ``Incremental`` as the spec wrote it; dates and times as ISO text."""
    if value is None:
        return None
    shown = dataclasses.asdict(value)
    if isinstance(shown["initial"], dt.date):
        shown["initial"] = shown["initial"].isoformat()
    return shown


def _recipients(callbacks: Any) -> list[str]:
    addresses: list[str] = []
    for callback in callbacks or []:
        to = getattr(callback, "to", None)
        addresses.extend([to] if isinstance(to, str) else list(to or []))
    return addresses


@dataclass(frozen=True)
class TaskArgument:
    """
    ``name``: the operator's keyword (and the task attribute holding it); ``spec_field``: where its value
    comes from, for the docs; ``shown_as``: its key in ``pstt render --json`` (dotted: nested) when not
    ``name``; ``show``: the attribute as JSON.
    """

    name: str
    spec_field: str
    value: Callable[[JobConfig], Any]
    shown_as: str = ""
    show: Callable[[Any], Any] = _same

    @property
    def key(self) -> str:
        return self.shown_as or self.name


def _kafka(name: str) -> TaskArgument:
    """An argument named like its ``kafka_config`` field, passed as it is."""
    return TaskArgument(name, f"kafka_config.{name}", lambda config: getattr(config.spec.kafka_config, name))


def _email(event: Event) -> TaskArgument:
    return TaskArgument(
        f"on_{event}_callback",
        "email_notification",
        lambda config: notifiers(config.spec.email_notification, event, config.timezone),
        shown_as=f"notifications.on_{event}",
        show=_recipients,
    )


TASK_ARGUMENTS: tuple[TaskArgument, ...] = (
    TaskArgument("conn_id", "connection", lambda config: config.spec.connection, shown_as="db_conn_id"),
    TaskArgument("sql_file", "query", lambda config: str(config.query_file), shown_as="query_file"),
    TaskArgument("parameters", "parameters", lambda config: dict(config.parameters), show=dict),
    _kafka("topic"),
    _kafka("message_key_field"),
    _kafka("metadata"),
    _kafka("value_format"),
    _kafka("schema_registry"),
    TaskArgument(
        "kafka_config_id",
        "kafka_config.connection_name",
        lambda config: config.spec.kafka_config.kafka_conn_id,
        shown_as="kafka_conn_id",
    ),
    _kafka("delivery"),
    _kafka("producer_config"),
    _kafka("null_key"),
    _kafka("dead_letter_topic"),
    TaskArgument(
        "topic_config",
        "kafka_config.topic_config",
        lambda config: topic.model_dump() if (topic := config.spec.kafka_config.topic_config) else None,
    ),
    TaskArgument(
        "incremental",
        "incremental",
        lambda config: spec.model_dump() if (spec := config.spec.incremental) else None,
        show=_incremental,
    ),
    TaskArgument("checkpoint_rows", "checkpoint_rows", lambda config: config.spec.checkpoint_rows),
    TaskArgument(
        "order_by",
        "order_by",
        lambda config: list(config.spec.order_by) if config.spec.order_by else None,
        show=lambda columns: list(columns) or None,
    ),
    TaskArgument("retries", "max_retries", lambda config: config.spec.max_retries),
    TaskArgument(
        "retry_delay",
        "retry_delay",
        lambda config: dt.timedelta(seconds=config.spec.retry_delay),
        shown_as="retry_delay_seconds",
        show=_seconds,
    ),
    TaskArgument(
        "execution_timeout",
        "timeout",
        lambda config: dt.timedelta(seconds=config.spec.timeout) if config.spec.timeout else None,
        shown_as="execution_timeout_seconds",
        show=_seconds,
    ),
    _email("failure"),
    _email("success"),
)


def task_arguments(config: JobConfig) -> dict[str, Any]:
    """The keywords of the export task for one valid spec (``task_id`` aside)."""
    return {argument.name: argument.value(config) for argument in TASK_ARGUMENTS}


def shown_arguments(task: Any) -> dict[str, Any]:
    """The task's arguments as ``pstt render --json`` reports them, read back from the built task."""
    shown: dict[str, Any] = {}
    for argument in TASK_ARGUMENTS:
        *parents, leaf = argument.key.split(".")
        target = shown
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = argument.show(_argument(task, argument.name))
    return shown


def _argument(task: Any, name: str) -> Any:
    """A built task's argument; a mapped task keeps what it was given in ``partial_kwargs``, as given."""
    partial = getattr(task, "partial_kwargs", None)
    if partial is not None and name in partial:
        return partial[name]
    return getattr(task, name, None)

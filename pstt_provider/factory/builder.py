"""
Stage 3: :class:`JobConfig` -> an Airflow DAG with one ``SqlToKafkaOperator`` task, whatever the database:
the database-specific behaviour (fetch size, Oracle tuning) follows the connection's type inside the
operator. :func:`build_dags` is what dags/ calls.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, AssetAny, AssetOrTimeSchedule, CronTriggerTimetable, Param

from pstt_provider import assets
from pstt_provider.factory import templates
from pstt_provider.factory.parameters import ParamConfig
from pstt_provider.factory.problems import Problem
from pstt_provider.factory.task_arguments import ANNOUNCE_TASK_ID, SPLIT_TASK_ID, TASK_ID, task_arguments
from pstt_provider.factory.validation import InvalidSpecsError, JobConfig, validator_for
from pstt_provider.operators.announce import AnnounceOperator
from pstt_provider.operators.split_ranges import SplitRangesOperator
from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator

START_DATE = dt.date(2024, 1, 1)


KafkaServer = Callable[[str], str | None]
"""A Kafka connection id -> its first bootstrap server, the host of the topic's Asset URI (None: no Asset)."""


def build_dags(anchor: Path) -> tuple[dict[str, DAG], list[Problem]]:
    """Every valid spec's DAG by dag_id, plus the problems of the invalid ones (for logging)."""
    configs, problems = validator_for(anchor).validate_folder()
    dags: dict[str, DAG] = {}
    servers: dict[str, str | None] = {}

    def server(conn_id: str) -> str | None:  # one read per connection and parse, however many jobs use it
        if conn_id not in servers:
            servers[conn_id] = assets.connection_server(conn_id)
        return servers[conn_id]

    for config in configs:
        try:
            dags[config.dag_id] = build_dag(config, server)
        except Exception as err:  # one spec Airflow rejects must not take the other DAGs down with it
            problems.append(Problem(config.display, "-", f"Airflow rejected the DAG: {type(err).__name__}: {err}"))
    return dags, problems


def check_folder(anchor: Path) -> None:
    """
    Raise :class:`InvalidSpecsError` naming every spec that does not become a DAG, for the validation DAG
    file: invalid specs, and valid ones Airflow still rejects (so those are import errors too, not log lines).
    """
    problems = build_dags(anchor)[1]
    if problems:
        raise InvalidSpecsError(problems)


def build_dag(config: JobConfig, kafka_server: KafkaServer = assets.connection_server) -> DAG:
    """
    The DAG for one valid spec. ``auto_register=False``: only the DAGs the DAG file puts in its globals
    count, so a spec whose build fails halfway never leaves a task-less DAG behind.

    Its topic is the outlet Asset of the task that finishes a run (the export, or for a parallel job the task after
    all its parts, so that consumers start once every part is in).
    """
    spec = config.spec
    timezone = pendulum.timezone(config.timezone)
    server = kafka_server(spec.kafka_config.kafka_conn_id)
    outlets = [Asset(assets.topic_uri(server, spec.kafka_config.topic))] if server else []
    tags = {"pstt", *spec.tags}
    if not config.scheduled:
        tags.add("pstt:manual" if spec.scheduling_mode == "manual" else "pstt:disabled")
    with DAG(
        dag_id=config.dag_id,
        dag_display_name=spec.name,
        description=spec.description or None,
        doc_md=_doc(config),
        schedule=_schedule(config, timezone),
        start_date=pendulum.datetime(START_DATE.year, START_DATE.month, START_DATE.day, tz=timezone),
        catchup=spec.catchup,
        # One switch: an enabled spec's DAG runs without anyone touching the toggle; a disabled one is paused.
        is_paused_upon_creation=not (spec.enabled and spec.kafka_config.enabled),
        max_active_runs=1,
        tags=sorted(tags),
        user_defined_macros={templates.RUN_TIME_MACRO: templates.run_time, templates.PARAM_MACRO: templates.param},
        default_args={"owner": spec.owner},
        auto_register=False,
    ) as dag:
        _attach_params(dag, config)
        arguments = task_arguments(config)
        if spec.parallel is None:
            SqlToKafkaOperator(task_id=TASK_ID, outlets=outlets, **arguments)
        else:
            ranges = SplitRangesOperator(
                task_id=SPLIT_TASK_ID,
                conn_id=arguments["conn_id"],
                sql_file=arguments["sql_file"],
                parameters=arguments["parameters"],
                split_by=spec.parallel.split_by,
                partitions=spec.parallel.partitions,
                retries=arguments["retries"],
                retry_delay=arguments["retry_delay"],
            )
            parts = SqlToKafkaOperator.partial(
                task_id=TASK_ID, map_index_template="{{ task.split_range }}", **arguments
            ).expand(split_range=ranges.output)
            AnnounceOperator(task_id=ANNOUNCE_TASK_ID, summaries=parts.output, outlets=outlets)
    return dag


def _schedule(config: JobConfig, timezone: Any) -> Any:
    """The cron, the upstream Assets (any of them updated starts a run), both (either starts one), or None."""
    cron = CronTriggerTimetable(config.schedule, timezone=timezone) if config.schedule else None
    if not config.assets:
        return cron
    upstream = AssetAny(*map(Asset, config.assets))
    return upstream if cron is None else AssetOrTimeSchedule(timetable=cron, assets=upstream)


def _attach_params(dag: DAG, config: JobConfig) -> None:
    """
    Params go in after the DAG is made, before its task: passing them to ``DAG(params=...)`` makes Airflow
    check every Param's JSON Schema against the metaschema, about 4 ms per Param, most of a spec's parse
    time. Validation already guarantees what that check would: every scheduled DAG's defaults are valid
    (a required define has a non-empty default or the spec is rejected); tests check ``params.validate()``.
    """
    for param in config.params:
        dag.params[param.name] = _param(param, config)


def _param(param: ParamConfig, config: JobConfig) -> Param:
    description = param.description or param.name
    if param.templated:
        description += f"; {param.spec_value} is evaluated per run in {config.timezone}, type a value to override"
    if param.required:
        return Param(param.default, type="string", minLength=1, title=param.name, description=description)
    return Param(param.default, type=["null", "string"], title=param.name, description=description)


def _doc(config: JobConfig) -> str:
    spec = config.spec
    lines = [
        f"**{spec.name}**",
        "",
        spec.description,
        "",
        f"- spec: `{config.display}`",
        f"- query: `{spec.query}` on connection `{spec.connection}`",
        f"- topic: `{spec.kafka_config.topic}` (key `{spec.kafka_config.message_key_field}`, "
        f"Kafka connection `{spec.kafka_config.kafka_conn_id}`)",
        f"- schedule: `{config.schedule or 'none'}` ({config.timezone})",
    ]
    if config.assets:
        lines.append(f"- runs when any of these assets is updated: {', '.join(f'`{uri}`' for uri in config.assets)}")
    if not (spec.enabled and spec.kafka_config.enabled):
        lines.append("- **disabled** in the spec: created paused and never scheduled; unpause it to run it by hand")
    return "\n".join(lines)

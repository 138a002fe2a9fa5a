"""
What ``pstt render`` reports: read back from the DAG object the builder makes, not from the spec, so
the output is what Airflow will schedule. Parameters are rendered with the DAG's own Jinja environment
for a given logical date, exactly as a run at that moment would render them.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pendulum

from pstt_provider.factory.builder import build_dag
from pstt_provider.factory.validation import JobConfig


def describe(config: JobConfig, logical_date: str | None = None) -> dict[str, Any]:
    dag = build_dag(config)
    task = dag.get_task(dag.task_ids[0])
    moment = _moment(logical_date, config.timezone)
    defaults = {name: param.value for name, param in dag.params.items()}
    environment = dag.get_template_env()
    context = {"params": defaults, "logical_date": moment, "dag_run": SimpleNamespace(run_after=moment)}
    rendered = {name: environment.from_string(template).render(context) for name, template in task.parameters.items()}
    return {
        "dag_id": dag.dag_id,
        "name": config.spec.name,
        "spec_file": config.display,
        "schedule": getattr(dag.timetable, "expression", None),
        "scheduling_mode": config.spec.scheduling_mode,
        "scheduled": config.scheduled,
        "timezone": config.timezone,
        "retries": task.retries,
        "retry_delay_seconds": task.retry_delay.total_seconds(),
        "execution_timeout_seconds": task.execution_timeout.total_seconds() if task.execution_timeout else None,
        "params": {
            param.name: {
                "default": dag.params[param.name],
                "required": param.required,
                "description": dag.params.get_param(param.name).description,
                "spec_value": param.spec_value,
            }
            for param in config.params
        },
        "parameters": dict(task.parameters),
        "logical_date": moment.isoformat(),
        "rendered_parameters": rendered,
        "task_ids": list(dag.task_ids),
        "operator": type(task).__name__,
        "query_file": str(config.query_file),
        "topic": task.topic,
        "message_key_field": task.message_key_field,
        "kafka_conn_id": task.kafka_config_id,
        "db_conn_id": task.conn_id,
        "batch_size": task.batch_size,
        "include_metadata": task.include_metadata,
        "delivery": task.delivery,
        "tags": sorted(dag.tags),
        "notifications": {
            "on_failure": _recipients(task.on_failure_callback),
            "on_success": _recipients(task.on_success_callback),
        },
    }


def _moment(logical_date: str | None, timezone: str) -> pendulum.DateTime:
    if logical_date is None:
        return pendulum.now(timezone)
    parsed = pendulum.parse(logical_date, tz=timezone)
    if not isinstance(parsed, pendulum.DateTime):
        raise ValueError(f"--logical-date {logical_date!r} is not a date and time")
    return parsed.in_timezone(timezone)


def _recipients(callbacks: Any) -> list[str]:
    addresses: list[str] = []
    for callback in callbacks or []:
        to = getattr(callback, "to", None)
        addresses.extend([to] if isinstance(to, str) else list(to or []))
    return addresses

"""
What ``pstt render`` reports: read back from the DAG object the builder makes, not from the spec, so
the output is what Airflow will schedule; the task's arguments are every one the builder passes
(:data:`~pstt_provider.factory.task_arguments.TASK_ARGUMENTS`). Parameters are rendered with the DAG's own
Jinja environment for a given logical date, exactly as a run at that moment would render them.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import Any

import pendulum

from pstt_provider import assets
from pstt_provider.factory.builder import build_dag
from pstt_provider.factory.task_arguments import TASK_ID, shown_arguments
from pstt_provider.factory.validation import JobConfig


def describe(config: JobConfig, logical_date: str | None = None) -> dict[str, Any]:
    dag = build_dag(config, functools.partial(assets.connection_server, quiet=True))
    task = dag.get_task(TASK_ID)  # the export task build_dag makes (mapped for a parallel job)
    shown = shown_arguments(task)
    moment = _moment(logical_date, config.timezone)
    defaults = {name: param.value for name, param in dag.params.items()}
    environment = dag.get_template_env()
    context = {"params": defaults, "logical_date": moment, "dag_run": SimpleNamespace(run_after=moment)}
    rendered = {
        name: environment.from_string(template).render(context) for name, template in shown["parameters"].items()
    }
    parallel = config.spec.parallel
    return {
        "dag_id": dag.dag_id,
        "name": config.spec.name,
        "spec_file": config.display,
        "schedule": _cron(dag.timetable),
        "assets": [asset.uri for asset in _upstream(dag.timetable)],
        "outlets": [outlet.uri for task in dag.tasks for outlet in task.outlets],
        "scheduling_mode": config.spec.scheduling_mode,
        "scheduled": config.scheduled,
        "timezone": config.timezone,
        "params": {
            param.name: {
                "default": dag.params[param.name],
                "required": param.required,
                "description": dag.params.get_param(param.name).description,
                "spec_value": param.spec_value,
            }
            for param in config.params
        },
        "logical_date": moment.isoformat(),
        "rendered_parameters": rendered,
        "task_ids": list(dag.task_ids),
        "operator": getattr(task, "operator_class", type(task)).__name__,
        "parallel": parallel.model_dump() if parallel is not None else None,
        "tags": sorted(dag.tags),
        **shown,
    }


def _cron(timetable: Any) -> str | None:
    """The cron a timetable runs on, also when it runs on upstream assets too (``AssetOrTimeSchedule``)."""
    return getattr(timetable, "expression", None) or getattr(getattr(timetable, "timetable", None), "expression", None)


def _upstream(timetable: Any) -> tuple[Any, ...]:
    """The assets whose updates start a run (``AssetAny``'s members), none for a cron or manual DAG."""
    condition = getattr(timetable, "asset_condition", None)
    return tuple(getattr(condition, "objects", ()))


def _moment(logical_date: str | None, timezone: str) -> pendulum.DateTime:
    if logical_date is None:
        return pendulum.now(timezone)
    parsed = pendulum.parse(logical_date, tz=timezone)
    if not isinstance(parsed, pendulum.DateTime):
        raise ValueError(f"--logical-date {logical_date!r} is not a date and time")
    return parsed.in_timezone(timezone)

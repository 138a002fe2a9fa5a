"""
``pstt validate``, ``pstt render`` and ``pstt schema``.

Paths are resolved like the DAG file resolves them, with the current directory as the repo root:
specs from ``$PSTT_JOBS_DIR`` (default ``dags/jobs``), query files from ``$PSTT_QUERIES_DIR`` (default
``queries``). ``validate`` only reads files; ``render`` also builds the real DAG object (importing Airflow,
a few seconds) and describes it, so what it prints is what the scheduler gets.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pstt_provider.factory import loader
from pstt_provider.factory.problems import Problem, SpecError
from pstt_provider.factory.validation import Validator, validator_for
from pstt_provider.job_state import DEFAULT_STATE_TOPIC as STATE_TOPIC


def validate(args: argparse.Namespace) -> int:
    """One ``file: field: reason`` line per problem on stdout; exit 1 if there is any, else 0."""
    cwd = Path.cwd()
    # The default zone changes no verdict, and not asking Airflow for it saves importing Airflow.
    validator = validator_for(cwd, display_base=cwd, timezone="UTC")
    targets = [Path(path) for path in args.paths] or [validator.root]
    problems: list[Problem] = []
    files: list[Path] = []
    for target in targets:
        if not target.exists():
            problems.append(Problem(str(target), "-", "no such file or directory"))
            continue
        found = loader.find_specs(target)
        if not found:
            problems.append(Problem(str(target), "-", "no job spec (*.json, *.yaml, *.yml) found"))
        files.extend(found)
    checked = for_root(validator, files)
    problems.extend(checked.validate_all(files)[1])
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len({p.file for p in problems})} invalid of {len(files)} job spec file(s)", file=sys.stderr)
        return 1
    print(f"{len(files)} job spec file(s) valid")
    return 0


def render(args: argparse.Namespace) -> int:
    """
    The DAG the spec becomes (text or ``--json``), or its problems and exit 1; with ``--json`` the problems are a
    JSON document too, so a script reading stdout gets JSON either way.
    """
    cwd = Path.cwd()
    spec_path = Path(args.spec)
    validator = validator_for(cwd, display_base=cwd)
    validator = for_root(validator, [spec_path])
    try:
        config = validator.validate(spec_path)
    except SpecError as err:
        if args.json:
            print(json.dumps(problems_document(err.problems), indent=2, ensure_ascii=False))
        else:
            for problem in err.problems:
                print(problem)
        return 1
    from pstt_provider.factory.description import describe

    description = describe(config, getattr(args, "logical_date", None))
    if args.json:
        print(json.dumps(description, indent=2, ensure_ascii=False))
    else:
        _print_text(description)
    return 0


def problems_document(problems: list[Problem]) -> dict[str, Any]:
    """``{"valid": false, "problems": [{"file", "field", "reason"}]}``: what ``render --json`` prints for a bad spec."""
    return {
        "valid": False,
        "problems": [{"file": p.file, "field": p.field, "reason": p.reason} for p in problems],
    }


def schema(args: argparse.Namespace) -> int:
    """The JSON Schema of a job spec, for editors and CI."""
    from pstt_provider.factory.models import job_schema

    print(json.dumps(job_schema(), indent=2, ensure_ascii=False))
    return 0


def for_root(validator: Validator, files: list[Path]) -> Validator:
    """The repo's validator when every file is under its jobs folder, else one rooted at the files' folder."""
    root = validator.root.resolve()
    if all(path.resolve().is_relative_to(root) for path in files):
        return validator
    common = Path(*_common_parts([path.resolve().parent for path in files])) if files else root
    return Validator(
        common,
        validator.queries,
        default_timezone=validator.default_timezone,
        display_base=validator.display_base,
    )


def _common_parts(folders: list[Path]) -> tuple[str, ...]:
    parts = folders[0].parts
    for folder in folders[1:]:
        shared = 0
        for mine, theirs in zip(parts, folder.parts, strict=False):
            if mine != theirs:
                break
            shared += 1
        parts = parts[:shared]
    return parts


def _position_text(view: SimpleNamespace) -> str:
    """How the task's runs read: every row each run, or after the stored position, and when it commits."""
    checkpoints = f", committed every {view.checkpoint_rows} rows" if view.checkpoint_rows else ""
    incremental = view.incremental
    if incremental is None:
        order = (
            f" in order of {', '.join(view.order_by)} (a retry resumes after its checkpoint)" if view.order_by else ""
        )
        return f"none: every run reads every row{order}{checkpoints}"
    columns = ", ".join(filter(None, (incremental["column"], incremental["tiebreaker"])))
    start = incremental["initial"] if incremental["initial"] is not None else "the first row"
    lag = incremental["lag_seconds"]
    bound = f"up to the database's now - {lag:g} s" if lag is not None else "with no upper bound"
    return (
        f"incremental: the rows after the stored ({columns}), {bound}, the first run from {start}{checkpoints}; "
        f"kept in Kafka topic {STATE_TOPIC} (pstt state show|set|reset)"
    )


def _schedule_text(view: SimpleNamespace) -> str:
    """The cron, the upstream assets, both, or neither."""
    upstream = f"when any of {', '.join(view.assets)} is updated" if view.assets else ""
    if view.schedule and upstream:
        return f"{view.schedule}, and {upstream}"
    return view.schedule or upstream or "none (manual triggers only)"


_METADATA_TEXT = {
    "envelope": 'envelope (value {"data": row, "metadata": {...}})',
    "headers": "headers (value the row alone, metadata as pstt-* headers)",
    "none": "none (value the row alone)",
}


def _print_text(description: dict[str, Any]) -> None:
    view = SimpleNamespace(**description)
    notifications = view.notifications
    print(f"DAG {view.dag_id} ({view.name}) from {view.spec_file}")
    print(f"  schedule:   {_schedule_text(view)} [{view.timezone}]")
    mapped = (
        f", mapped over up to {view.parallel['partitions']} ranges of {view.parallel['split_by']}"
        if view.parallel
        else ""
    )
    print(f"  task:       {', '.join(view.task_ids)} ({view.operator}{mapped})")
    print(f"  source:     {view.query_file} on connection {view.db_conn_id}")
    print(f"  target:     topic {view.topic}, key {view.message_key_field}, Kafka connection {view.kafka_conn_id}")
    asset = (
        ", ".join(view.outlets)
        if view.outlets
        else f"none (connection {view.kafka_conn_id} not readable here: the DAG processor reads it)"
    )
    print(f"  asset:      {asset}")
    print(
        f"  delivery:   {view.delivery}, NULL keys: {view.null_key}, too-large rows to: "
        f"{view.dead_letter_topic or 'none (the task fails)'}, producer overrides: {view.producer_config or 'none'}"
    )
    print(f"  metadata:   {_METADATA_TEXT[view.metadata]}")
    registry = f", schema registry connection {view.schema_registry}" if view.value_format != "json" else ""
    print(f"  value:      {view.value_format}{registry}")
    print(f"  position:   {_position_text(view)}")
    print(
        f"  retries:    {view.retries} every {view.retry_delay_seconds:g} s, "
        f"timeout {f'{view.execution_timeout_seconds:g} s' if view.execution_timeout_seconds else 'none'}"
    )
    failure = ", ".join(notifications["on_failure"]) or "nobody"
    success = ", ".join(notifications["on_success"]) or "nobody"
    print(f"  e-mail:     on failure {failure}; on success {success}")
    print(f"  parameters at {view.logical_date}:")
    for name, value in view.rendered_parameters.items():
        param = view.params[name]
        flag = "required" if param["required"] else "optional"
        print(f"    {name} = {value!r} ({flag}; spec {param['spec_value']!r}; {param['description']})")

"""
Stage 2: raw spec -> :class:`JobConfig`, everything the DAG builder needs, or every problem found.

Checks the spec against the models, the query file it names, its parameters against the query's
``define`` lines and its templates. Touches no database, broker or Airflow metadata: only files and
``AIRFLOW_CONN_*`` variables, so it is safe (and fast) at DAG parse time.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ValidationError

from pstt_provider.factory import loader, templates
from pstt_provider.factory.models import FolderDefaults, JobSpec
from pstt_provider.factory.problems import Problem, SpecError
from pstt_provider.query_file import QueryFile, QueryFileError, parse_query_file

OperatorName = Literal["SqlToKafkaOperator", "OracleToKafkaOperator"]
TASK_ID = "export_to_kafka"
MAX_DAG_ID_LENGTH = 250
Report = Callable[[str, str], None]


@dataclass(frozen=True)
class ParamConfig:
    """A query ``define`` as a DAG Param: ``default`` is what the trigger form shows (the spec's value if any)."""

    name: str
    default: str | None
    required: bool
    description: str
    spec_value: str | None
    templated: bool


@dataclass(frozen=True)
class JobConfig:
    """A valid spec resolved: folder defaults merged, query parsed, ``parameters`` = define name -> Jinja."""

    spec_file: Path
    display: str
    dag_id: str
    spec: JobSpec
    timezone: str
    query_file: Path
    params: tuple[ParamConfig, ...]
    parameters: Mapping[str, str]
    operator: OperatorName
    scheduled: bool

    @property
    def schedule(self) -> str | None:
        return self.spec.cron if self.scheduled else None


class InvalidSpecsError(ValueError):
    """Raised by the validation-only DAG file so that every invalid spec shows in Airflow's import errors."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        files = len({problem.file for problem in problems})
        lines = "\n".join(map(str, problems))
        super().__init__(f"{files} invalid PSTT job spec file(s), not built as DAGs:\n{lines}")


def default_timezone() -> str:
    """Airflow's ``[core] default_timezone`` as an IANA name (the job's timezone when its spec has none)."""
    from airflow.sdk.configuration import conf

    name = conf.get("core", "default_timezone", fallback="utc")
    if name == "system":
        import pendulum

        return pendulum.local_timezone().name
    return "UTC" if name.lower() == "utc" else name


def validator_for(anchor: Path, display_base: Path | None = None, timezone: str | None = None) -> Validator:
    """
    The validator for a repo: specs from $PSTT_JOBS_DIR or dags/jobs, queries from $PSTT_QUERIES_DIR or
    queries; jobs without ``timezone`` use ``timezone``, by default Airflow's (which imports Airflow).
    """
    return Validator(
        loader.jobs_dir(anchor),
        loader.queries_dir(anchor),
        default_timezone=timezone or default_timezone(),
        display_base=display_base or anchor,
    )


class Validator:
    """Validates the specs of one jobs folder; caches folder defaults and query files across specs."""

    def __init__(self, root: Path, queries: Path, *, default_timezone: str, display_base: Path | None = None) -> None:
        self.root = root
        self.queries = queries
        self.default_timezone = default_timezone
        self.display_base = (display_base or Path.cwd()).resolve()
        self._root = root.resolve()
        self._queries_root = queries.resolve()
        self._defaults: dict[Path, dict[str, Any] | SpecError] = {}
        self._defaults_files: dict[Path, list[Path]] = {}
        self._queries: dict[str, tuple[Path, QueryFile | QueryFileError]] = {}

    def display(self, path: Path) -> str:
        absolute = path if path.is_absolute() else path.resolve()
        try:
            return str(absolute.relative_to(self.display_base))
        except ValueError:
            return str(absolute)

    def validate_folder(self) -> tuple[list[JobConfig], list[Problem]]:
        """Every spec below the jobs folder; a missing folder is a problem, not an empty list of DAGs."""
        if not self.root.is_dir():
            return [], [Problem(str(self.root), "-", "jobs folder not found (check PSTT_JOBS_DIR)")]
        return self.validate_all(loader.find_specs(self.root))

    def validate_all(self, paths: Iterable[Path]) -> tuple[list[JobConfig], list[Problem]]:
        """Valid configs and the problems of the rest; duplicate DAG ids are problems of the later files."""
        configs: list[JobConfig] = []
        problems: list[Problem] = []
        owners: dict[str, str] = {}
        for path in paths:
            try:
                config = self.validate(path)
            except SpecError as err:
                problems.extend(problem for problem in err.problems if problem not in problems)
                continue
            except Exception as err:  # one spec must never hide the others, whatever it holds
                problems.append(Problem(self.display(path), "-", f"cannot be validated: {type(err).__name__}: {err}"))
                continue
            if config.dag_id in owners:
                problems.append(
                    Problem(config.display, "dag_id", f"{config.dag_id!r} is already used by {owners[config.dag_id]}")
                )
                continue
            owners[config.dag_id] = config.display
            configs.append(config)
        return configs, problems

    def validate(self, path: Path) -> JobConfig:
        display = self.display(path)
        if path.is_dir():
            raise SpecError.single(
                display,
                "-",
                "a symbolic link to a folder: links are not followed, so no spec in it is loaded; "
                "move the specs into the jobs folder or point PSTT_JOBS_DIR at the real one",
            )
        path = path.resolve()
        display = self.display(path)
        raw = loader.load(path, display)
        merged: dict[str, Any] = {}
        if path.parent not in self._defaults_files:
            self._defaults_files[path.parent] = loader.defaults_files(path.parent, self._root)
        for defaults_file in self._defaults_files[path.parent]:
            defaults = self._folder_defaults(defaults_file)
            if isinstance(defaults, SpecError):
                raise SpecError(
                    [
                        *defaults.problems,
                        Problem(
                            display, "-", f"not built: the folder defaults {self.display(defaults_file)} are invalid"
                        ),
                    ]
                )
            merged = loader.merge(merged, defaults)
        merged = loader.merge(merged, raw)
        try:
            spec = JobSpec.model_validate(merged)
        except ValidationError as err:
            raise SpecError(_problems(display, err, JobSpec)) from None
        return self._config(path, display, spec)

    def _folder_defaults(self, path: Path) -> dict[str, Any] | SpecError:
        """The defaults file's values, or its problems: cached, so they are reported once, not once per spec."""
        if path not in self._defaults:
            display = self.display(path)
            try:
                model = FolderDefaults.model_validate(loader.load(path, display))
                self._defaults[path] = model.model_dump(exclude_none=True)
            except ValidationError as err:
                self._defaults[path] = SpecError(_problems(display, err, FolderDefaults))
            except SpecError as err:
                self._defaults[path] = err
        return self._defaults[path]

    def _config(self, path: Path, display: str, spec: JobSpec) -> JobConfig:
        problems: list[Problem] = []

        def problem(field: str, reason: str) -> None:
            problems.append(Problem(display, field, reason))

        scheduled = spec.scheduling_mode == "cron" and spec.enabled and spec.kafka_config.enabled
        if spec.scheduling_mode == "cron" and spec.cron is None:
            problem("cron", 'scheduling_mode is "cron" but cron is empty (use "manual" for trigger-only jobs)')
        email = spec.email_notification
        if email.enabled and (email.on_success or email.on_failure) and not email.recipients:
            problem("email_notification.recipients", "e-mail is enabled but there are no recipients")
        timezone = spec.timezone or self.default_timezone
        query_path, query = self._query(spec.query, problem)
        params: tuple[ParamConfig, ...] = ()
        parameters: dict[str, str] = {}
        if query is not None:
            params, parameters = _parameters(spec, query, timezone, scheduled, problem)
        dag_id = spec.dag_id or self._dag_id(path)
        if len(dag_id) > MAX_DAG_ID_LENGTH:
            problem(
                "dag_id",
                f"the DAG id made from the spec's path is {len(dag_id)} characters, Airflow allows "
                f"{MAX_DAG_ID_LENGTH}: set dag_id or use a shorter path",
            )
        if problems:
            raise SpecError(problems)
        assert query_path is not None
        return JobConfig(
            spec_file=path,
            display=display,
            dag_id=dag_id,
            spec=spec,
            timezone=timezone,
            query_file=query_path,
            params=params,
            parameters=parameters,
            operator="OracleToKafkaOperator" if _is_oracle(spec) else "SqlToKafkaOperator",
            scheduled=scheduled,
        )

    def _query(self, name: str, problem: Report) -> tuple[Path | None, QueryFile | None]:
        if name not in self._queries:
            path = (self._queries_root / name).resolve()
            if not path.is_relative_to(self._queries_root):
                problem("query", f"{name!r} points outside the queries folder {self.queries}")
                return None, None
            if not path.is_file():
                close = difflib.get_close_matches(name, _sql_files(self.queries), n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                problem("query", f"query file {name!r} not found in {self.queries}{hint}")
                return None, None
            try:
                self._queries[name] = (path, parse_query_file(path))
            except QueryFileError as err:
                self._queries[name] = (path, err)
        path, parsed = self._queries[name]
        if isinstance(parsed, QueryFileError):
            problem("query", str(parsed))
            return None, None
        references = parsed.undeclared_references
        if references:
            names = ", ".join(map(str, references))
            problem(
                "query",
                f"{name}: the SQL uses {names} but no define line declares {'it' if len(references) == 1 else 'them'}; "
                f"add one such as: define {references[0].name}='' --Opzionale: description",
            )
            return None, None
        return path, parsed

    def _dag_id(self, path: Path) -> str:
        try:
            relative = path.relative_to(self._root).with_suffix("")
        except ValueError:
            relative = Path(path.stem)
        return "pstt_" + re.sub(r"[^A-Za-z0-9_.-]", "_", ".".join(relative.parts))


def _parameters(
    spec: JobSpec, query: QueryFile, timezone: str, scheduled: bool, problem: Report
) -> tuple[tuple[ParamConfig, ...], dict[str, str]]:
    """Params for the trigger form and the Jinja the operator's ``parameters`` render from, per define."""
    defines = {name.upper(): param for name, param in query.params.items()}
    values: dict[str, str] = {}
    for name, value in spec.parameters.items():
        define = defines.get(name.upper())
        if define is None:
            close = difflib.get_close_matches(name.upper(), list(defines), n=1, cutoff=0.6)
            hint = f"; did you mean {defines[close[0]].name}?" if close else ""
            known = ", ".join(param.name for param in query.params.values()) or "none"
            problem(f"parameters.{name}", f"the query defines no parameter {name}{hint} (it defines: {known})")
            continue
        values[define.name] = str(value)
    params: list[ParamConfig] = []
    parameters: dict[str, str] = {}
    for define in query.params.values():
        spec_value = values.get(define.name)
        reference = f"{templates.PARAM_MACRO}({templates.literal(define.name)})"
        if spec_value is not None:
            if define.required and not spec_value.strip():
                problem(
                    f"parameters.{define.name}",
                    f"the query requires {define.name} ({define.description or 'no description'}): "
                    "an empty value would fail every run; give it a value or remove it",
                )
                continue
            try:
                translation = templates.translate(spec_value, timezone)
            except templates.TemplateError as err:
                problem(f"parameters.{define.name}", str(err))
                continue
            default: str | None = spec_value
            templated = translation.dynamic
            if translation.dynamic:
                expression = (
                    f"{reference} if {reference} != {templates.literal(spec_value)} else ({translation.expression})"
                )
            else:
                expression = reference
        else:
            templated = False
            default = define.default if define.default not in (None, "") or not define.required else None
            if define.required and default is None and scheduled:
                problem(
                    f"parameters.{define.name}",
                    f"the query requires {define.name} ({define.description or 'no description'}) "
                    "and has no default: give it a value",
                )
                continue
            expression = f"{reference} if {reference} is not none else ''"
        params.append(ParamConfig(define.name, default, define.required, define.description, spec_value, templated))
        parameters[define.name] = "{{ " + expression + " }}"
    return tuple(params), parameters


def _is_oracle(spec: JobSpec) -> bool:
    if spec.connection_type is not None:
        return spec.connection_type == "oracle"
    return connection_type_from_env(spec.connection) == "oracle"


def connection_type_from_env(conn_id: str) -> str | None:
    """The type of an ``AIRFLOW_CONN_*`` connection (JSON or URI form), or None; never raises, never queries."""
    raw = (os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}") or "").strip()
    if not raw:
        return None
    if raw.startswith("{"):
        try:
            value = json.loads(raw).get("conn_type")
        except (ValueError, AttributeError):
            return None
        return value if isinstance(value, str) else None
    scheme, separator, _ = raw.partition("://")
    return scheme.replace("-", "_") if separator else None


def _sql_files(folder: Path) -> list[str]:
    try:
        return [str(path.relative_to(folder)) for path in folder.rglob("*.sql")]
    except OSError:
        return []


def _problems(display: str, err: ValidationError, model: type[BaseModel]) -> list[Problem]:
    problems = []
    for error in err.errors():
        location = error["loc"]
        field = ".".join(str(part) for part in location) or "-"
        if error["type"] == "extra_forbidden":
            known = _fields_at(model, location[:-1])
            close = difflib.get_close_matches(str(location[-1]), known, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            reason = f"unknown field{hint}"
        elif error["type"] == "missing":
            reason = "required field is missing"
        else:
            reason = error["msg"].removeprefix("Value error, ")
        problems.append(Problem(display, field, reason))
    return problems


def _fields_at(model: type[BaseModel], location: tuple[int | str, ...]) -> list[str]:
    current: Any = model
    for part in location:
        field = current.model_fields.get(part) if isinstance(part, str) else None
        nested = [kind for kind in (field.annotation, *get_args(field.annotation)) if _is_model(kind)] if field else []
        if not nested:
            return []
        current = nested[0]
    return list(current.model_fields)


def _is_model(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, BaseModel)

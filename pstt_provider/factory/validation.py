"""
Stage 2: raw spec -> :class:`JobConfig`, everything the DAG builder needs, or every problem found.

Checks the spec against the models (field rules and cross-field rules alike), the query file it names,
its parameters against the query's ``define`` lines and its templates, and the DAG ids of a folder.
Touches no database, broker or Airflow metadata, only files, so it is safe (and fast) at DAG parse time.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pstt_provider.factory import loader
from pstt_provider.factory.models import FolderDefaults, JobSpec
from pstt_provider.factory.parameters import ParamConfig, compile_parameters
from pstt_provider.factory.problems import Problem, Report, SpecError, validation_problems
from pstt_provider.query_file import QueryFile, QueryFileError, parse_query_file

MAX_DAG_ID_LENGTH = 250


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
    scheduled: bool

    @property
    def schedule(self) -> str | None:
        """The cron the job runs on, None when it has none or is disabled."""
        return self.spec.cron if self.scheduled and self.spec.scheduling_mode == "cron" else None

    @property
    def assets(self) -> tuple[str, ...]:
        """The URIs of the upstream Assets whose updates start a run; none when the job is disabled."""
        return tuple(self.spec.schedule.assets) if self.scheduled and self.spec.schedule is not None else ()


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
        from pendulum.tz import get_local_timezone  # pendulum.local_timezone, which type checkers take for its module

        return get_local_timezone().name
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
            merged = _layered(merged, defaults)
        merged = _layered(merged, raw)
        try:
            spec = JobSpec.model_validate(merged)
        except ValidationError as err:
            raise SpecError(validation_problems(display, err, JobSpec)) from None
        return self._config(path, display, spec)

    def _folder_defaults(self, path: Path) -> dict[str, Any] | SpecError:
        """The defaults file's values, or its problems: cached, so they are reported once, not once per spec."""
        if path not in self._defaults:
            display = self.display(path)
            try:
                model = FolderDefaults.model_validate(loader.load(path, display))
                self._defaults[path] = model.model_dump(exclude_none=True)
            except ValidationError as err:
                self._defaults[path] = SpecError(validation_problems(display, err, FolderDefaults))
            except SpecError as err:
                self._defaults[path] = err
        return self._defaults[path]

    def _config(self, path: Path, display: str, spec: JobSpec) -> JobConfig:
        problems: list[Problem] = []

        def problem(field: str, reason: str) -> None:
            problems.append(Problem(display, field, reason))

        automatic = (spec.scheduling_mode == "cron" and spec.cron is not None) or spec.schedule is not None
        scheduled = automatic and spec.enabled and spec.kafka_config.enabled
        timezone = spec.timezone or self.default_timezone
        query_path, query = self._query(spec.query, problem)
        params: tuple[ParamConfig, ...] = ()
        parameters: dict[str, str] = {}
        if query is not None:
            params, parameters = compile_parameters(spec, query, timezone, scheduled, problem)
        dag_id = spec.dag_id or self._dag_id(path)
        if len(dag_id) > MAX_DAG_ID_LENGTH:
            problem(
                "dag_id",
                f"the DAG id made from the spec's path is {len(dag_id)} characters, Airflow allows "
                f"{MAX_DAG_ID_LENGTH}: set dag_id or use a shorter path",
            )
        if problems or query_path is None:  # without a query path, _query has reported why
            raise SpecError(problems)
        return JobConfig(
            spec_file=path,
            display=display,
            dag_id=dag_id,
            spec=spec,
            timezone=timezone,
            query_file=query_path,
            params=params,
            parameters=parameters,
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


def _sql_files(folder: Path) -> list[str]:
    try:
        return [str(path.relative_to(folder)) for path in folder.rglob("*.sql")]
    except OSError:
        return []


_METADATA_SPELLINGS = ("metadata", "include_metadata")


def _layered(base: dict[str, Any], layer: dict[str, Any]) -> dict[str, Any]:
    """
    ``layer`` over ``base``; a layer that says where the metadata goes, in either spelling, replaces both beneath
    it: a spec's ``metadata: headers`` wins over its folder's ``include_metadata: true`` instead of contradicting it.
    """
    kafka = layer.get("kafka_config")
    below = base.get("kafka_config")
    if isinstance(kafka, dict) and isinstance(below, dict) and any(name in kafka for name in _METADATA_SPELLINGS):
        base = {**base, "kafka_config": {k: v for k, v in below.items() if k not in _METADATA_SPELLINGS}}
    return loader.merge(base, layer)

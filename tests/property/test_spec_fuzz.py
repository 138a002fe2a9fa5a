"""
Mutated job specs never break the DAG files: each spec becomes a DAG or a reported problem naming its file.

Starting from the seed's own job JSON, hypothesis drops, renames and retypes fields, and writes bad crons,
time zones, DAG ids, topics and parameter templates. For every mutant both DAG files run as Airflow runs
them: ``pstt_jobs.py`` must never raise, and ``pstt_jobs_validation.py`` must either import cleanly (then
the spec is a DAG) or raise ``InvalidSpecsError`` naming the spec file (then it is not).
"""

from __future__ import annotations

import copy
import json
import runpy
import shutil
import zoneinfo
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pstt_provider.factory.validation import InvalidSpecsError

ROOT = Path(__file__).resolve().parents[2]
SEED_SPEC = json.loads((ROOT / "tests/fixtures/specs/seed/export_cdg_tracce.json").read_text(encoding="utf-8"))
SEED_QUERY = ROOT / "tests/fixtures/queries/CDG-KAFKA-001--SelezioneTracceGiornaliere.sql"
SPEC_NAME = "fuzzed_job.json"
NESTED = ("kafka_config", "email_notification")

ANY_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64) | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6,
)
CRONS = st.one_of(
    st.sampled_from(
        ["61 * * * *", "* * *", "0 2 * * * * *", "@reboot", "@never", "0 2 30 2 *", "*/0 * * * *", "", " ", "L W"]
    ),
    st.lists(
        st.sampled_from(["*", "0", "59", "60", "*/5", "1-3", "a", "?", "L", "#", "-1"]), min_size=1, max_size=7
    ).map(" ".join),
)
TIMEZONES = st.one_of(
    st.sampled_from(sorted(zoneinfo.available_timezones())),
    st.sampled_from(["Europe/Nowhere", "UTC+1", "../etc/passwd", "", "local", "Factory", "posixrules", "EST5EDT"]),
    st.text(max_size=15),
)
TEMPLATES = st.one_of(
    st.sampled_from(["{date-1}", "{date+9999999}", "{date-x}", "{foo}", "{", "}", "{{date}}", "{date}{", "{DATE}"]),
    st.lists(
        st.sampled_from(["{date}", "{date-3}", "{year}", "{month}", "-", "{timestamp}", "{datetime}", "{", "x"]),
        max_size=4,
    ).map("".join),
    st.text(max_size=12),
)


def field_paths(spec: dict[str, Any]) -> list[tuple[str, ...]]:
    paths = [(name,) for name in spec]
    for parent in NESTED:
        if isinstance(spec.get(parent), dict):
            paths += [(parent, name) for name in spec[parent]]
    return paths


@st.composite
def mutations(draw: st.DrawFn, spec: dict[str, Any]) -> tuple[str, tuple[str, ...], Any]:
    """One edit: (kind, field path, new value or new name)."""
    kind = draw(st.sampled_from(["drop", "rename", "retype", "cron", "timezone", "template", "dag_id", "topic"]))
    if kind in ("drop", "rename", "retype"):
        path = draw(st.sampled_from(field_paths(spec)))
        if kind == "rename":
            return kind, path, draw(st.sampled_from([path[-1] + "s", path[-1].upper(), path[-1][:-1], "unknown"]))
        return kind, path, draw(ANY_VALUE) if kind == "retype" else None
    if kind == "cron":
        return kind, ("cron",), draw(CRONS)
    if kind == "timezone":
        return kind, ("timezone",), draw(TIMEZONES)
    if kind == "template":
        name = draw(st.sampled_from(["DATA", "DATA", "data", "OTHER"]))
        return kind, ("parameters", name), draw(TEMPLATES)
    if kind == "dag_id":
        return kind, ("dag_id",), draw(st.text(max_size=30) | st.sampled_from(["ok_id", "a" * 251, "bad id", "é"]))
    return kind, ("kafka_config", "topic"), draw(st.text(max_size=30) | st.sampled_from(["", "a" * 300, "..", "t!"]))


@st.composite
def mutated_specs(draw: st.DrawFn) -> dict[str, Any]:
    spec = copy.deepcopy(SEED_SPEC)
    for _ in range(draw(st.integers(1, 3))):
        kind, path, value = draw(mutations(spec))
        parent = spec
        for part in path[:-1]:
            parent = parent.get(part) if isinstance(parent.get(part), dict) else None
            if parent is None:
                break
        if parent is None:
            continue
        if kind == "drop":
            parent.pop(path[-1], None)
        elif kind == "rename":
            if path[-1] in parent:
                parent[value] = parent.pop(path[-1])
        else:
            parent[path[-1]] = value
    return spec


@pytest.fixture(scope="module")
def jobs_tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A jobs folder and a queries folder with the seed's query, wired in through PSTT_JOBS_DIR/QUERIES_DIR."""
    base = tmp_path_factory.mktemp("fuzz")
    (base / "jobs").mkdir()
    (base / "queries").mkdir()
    shutil.copy(SEED_QUERY, base / "queries" / SEED_QUERY.name)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PSTT_JOBS_DIR", str(base / "jobs"))
        patch.setenv("PSTT_QUERIES_DIR", str(base / "queries"))
        yield base / "jobs"


def load_dag_files(jobs: Path, spec_text: str) -> tuple[list[Any], InvalidSpecsError | None]:
    """Runs both DAG files over a jobs folder holding only this spec: the DAGs built, and the validation error."""
    for old in jobs.iterdir():
        old.unlink()
    (jobs / SPEC_NAME).write_text(spec_text, encoding="utf-8")
    from airflow.sdk import DAG

    built = runpy.run_path(str(ROOT / "dags" / "pstt_jobs.py"))
    dags = [value for value in built.values() if isinstance(value, DAG)]
    try:
        runpy.run_path(str(ROOT / "dags" / "pstt_jobs_validation.py"))
    except InvalidSpecsError as err:
        return dags, err
    return dags, None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=mutated_specs())
def test_a_mutated_spec_becomes_a_dag_or_a_reported_problem_naming_its_file(jobs_tree, spec):
    dags, invalid = load_dag_files(jobs_tree, json.dumps(spec, ensure_ascii=False))
    event("valid: a DAG" if invalid is None else "invalid: reported")

    if invalid is None:
        assert len(dags) == 1, f"valid per the validation DAG file but pstt_jobs.py built {len(dags)} DAGs"
    else:
        assert dags == [], f"reported invalid but built anyway: {invalid}"
        assert invalid.problems
        assert all(problem.file.endswith(SPEC_NAME) for problem in invalid.problems)
        assert all(problem.reason for problem in invalid.problems)
        assert SPEC_NAME in str(invalid)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_a_spec_file_that_is_not_json_is_a_reported_problem(jobs_tree, text):
    dags, invalid = load_dag_files(jobs_tree, text)

    assert dags == []
    assert invalid is not None
    assert invalid.problems
    assert all(problem.file.endswith(SPEC_NAME) for problem in invalid.problems)


def test_the_unmutated_seed_spec_becomes_one_dag(jobs_tree):
    dags, invalid = load_dag_files(jobs_tree, json.dumps(SEED_SPEC))

    assert invalid is None
    assert [dag.dag_id for dag in dags] == ["pstt_fuzzed_job"]

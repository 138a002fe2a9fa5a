"""
No spec string reaches a secret: hostile text in any string field is refused, or stays text wherever it lands.

Hypothesis writes Jinja aimed at a connection's password and a variable, CR/LF, NUL and very long strings
into every string field of the seed's job spec. Each spec is validated; a valid one is built into its DAG
and every templated field of the task and of its e-mail notifiers is rendered with Airflow's real ``conn``
and ``var`` accessors in the context, which do resolve the test connection's password. The password must
never appear in a rendered field, a problem message, a DAG attribute or a log line.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pendulum
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pstt_provider.factory.builder import build_dag
from pstt_provider.factory.problems import SpecError
from pstt_provider.factory.task_arguments import TASK_ID
from pstt_provider.factory.validation import Validator

ROOT = Path(__file__).resolve().parents[2]
SEED_SPEC = json.loads((ROOT / "tests/fixtures/specs/seed/export_cdg_tracce.json").read_text(encoding="utf-8"))
SEED_QUERY = ROOT / "tests/fixtures/queries/CDG-KAFKA-001--SelezioneTracceGiornaliere.sql"
PASSWORD = "TopSecretPassw0rd-7f3a"
VARIABLE = "VariableSecret-91bc"
STRING_FIELDS = (
    ("name",),
    ("description",),
    ("query",),
    ("connection",),
    ("cron",),
    ("timezone",),
    ("dag_id",),
    ("owner",),
    ("tags", 0),
    ("parameters", "DATA"),
    ("kafka_config", "topic"),
    ("kafka_config", "message_key_field"),
    ("kafka_config", "connection_name"),
    ("kafka_config", "dead_letter_topic"),
    ("email_notification", "recipients", 0),
    ("email_notification", "from_email"),
    ("email_notification", "smtp_connection"),
)
PAYLOADS = (
    "{{ conn.adv_secret.password }}",
    "{{conn.adv_secret.password}}@example.com",
    "leak {{ conn.adv_secret.password }} <a@example.com>",
    "{% print(conn.adv_secret.password) %}",
    "{{ var.value.adv_variable }}",
    "{{ var.value.get('adv_variable', 'x') }}",
    "{#-#}{{ conn['adv_secret'].password }}",
    "{date-1}{{ conn.adv_secret.password }}",
    "ops@example.com\r\nBcc: {{ conn.adv_secret.password }}@example.com",
    "a\x00b",
)
NEAR_MISSES = (
    "{ conn.adv_secret.password }",
    "{ {conn.adv_secret.password} }",
    "' ~ conn.adv_secret.password ~ '",
    "\\' ~ conn.adv_secret.password ~ \\'",
    "'] + [conn.adv_secret.password] + ['",
    "{date-1}' ~ conn.adv_secret.password ~ '",
    "{year}\\{month}' ~ var.value.adv_variable",
    "%} conn.adv_secret.password {%-",
    "{ %print(conn.adv_secret.password)% }",
)
HOSTILE = st.one_of(
    st.sampled_from(PAYLOADS),
    st.sampled_from(NEAR_MISSES),
    st.sampled_from(NEAR_MISSES),
    st.tuples(st.sampled_from(PAYLOADS + NEAR_MISSES), st.text(max_size=10), st.sampled_from(["", "\n", "\r\n"])).map(
        "".join
    ),
    st.sampled_from(PAYLOADS + NEAR_MISSES).map(lambda payload: payload * 200),
)
TEXT_FIELDS = (("name",), ("description",), ("owner",), ("tags", 0), ("parameters", "DATA"))
"""Fields where a near miss is valid, so that valid specs carrying one are rendered often."""


@st.composite
def hostile_specs(draw: st.DrawFn) -> dict[str, Any]:
    spec = copy.deepcopy(SEED_SPEC)
    spec["tags"] = ["nightly"]
    spec["kafka_config"]["dead_letter_topic"] = "pstt-traces-dlq"
    spec["email_notification"].update(from_email="PSTT <pstt@example.com>", smtp_connection="smtp_default")
    fields = st.sampled_from(TEXT_FIELDS) | st.sampled_from(STRING_FIELDS)
    for path in draw(st.lists(fields, min_size=1, max_size=3, unique=True)):
        parent: Any = spec
        for part in path[:-1]:
            parent = parent[part]
        parent[path[-1]] = draw(HOSTILE)
    return spec


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    base = tmp_path_factory.mktemp("hostile")
    (base / "jobs").mkdir()
    (base / "queries").mkdir()
    shutil.copy(SEED_QUERY, base / "queries" / SEED_QUERY.name)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW_CONN_ADV_SECRET", json.dumps({"conn_type": "generic", "password": PASSWORD}))
        patch.setenv("AIRFLOW_VAR_ADV_VARIABLE", VARIABLE)
        yield base / "jobs", base / "queries"


def run_context(dag: Any) -> dict[str, Any]:
    """What a task's templates see in a run, with Airflow's own accessors that do resolve the secrets."""
    from airflow.sdk.execution_time.context import ConnectionAccessor, VariableAccessor

    moment = pendulum.datetime(2026, 1, 20, 2, 0, tz="UTC")
    return {
        "params": {name: param.value for name, param in dag.params.items()},
        "logical_date": moment,
        "dag_run": SimpleNamespace(conf={}, run_after=moment),
        "conn": ConnectionAccessor(),
        "var": {"value": VariableAccessor(deserialize_json=False), "json": VariableAccessor(deserialize_json=True)},
        "dag": dag,
        "run_id": "scheduled__2026-01-20T02:00:00+00:00",
        "exception": "boom",
        "ti": SimpleNamespace(task_id=TASK_ID, try_number=1, log_url="http://x/log", xcom_pull=lambda **_: None),
    }


def rendered_strings(dag: Any) -> Iterator[str]:
    """Every templated field of the export task and of its notifiers, rendered as a run would render them."""
    task = dag.get_task(TASK_ID)
    context = run_context(dag)
    environment = dag.get_template_env()
    task.render_template_fields(context, jinja_env=environment)
    for field in task.template_fields:
        yield json.dumps(getattr(task, field), default=str)
    for notifier in [*task.on_failure_callback, *task.on_success_callback]:
        notifier.render_template_fields(context, jinja_env=environment)
        for field in notifier.template_fields:
            yield json.dumps(getattr(notifier, field, None), default=str)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=hostile_specs())
def test_hostile_strings_never_reach_a_secret(folders, spec, caplog):
    jobs, queries = folders
    path = jobs / "hostile.json"
    path.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        validator = Validator(jobs, queries, default_timezone="UTC", display_base=jobs.parent)
        try:
            config = validator.validate(path)
        except SpecError as err:
            event("refused")
            seen = [str(err)]
        else:
            event("valid: rendered")
            dag = build_dag(config)
            seen = [*rendered_strings(dag), dag.dag_display_name, dag.description or "", dag.doc_md or ""]
            seen += [str(dag.tags), str(dag.default_args), str(dt.timedelta())]
    seen += [record.getMessage() for record in caplog.records]
    for text in seen:
        assert PASSWORD not in text
        assert VARIABLE not in text


def test_the_context_does_resolve_the_secret_so_the_property_can_fail(folders):
    """Guards the property above: the same environment renders the secret when the template is Airflow's own."""
    config = Validator(*folders, default_timezone="UTC").validate(
        _write(folders[0], copy.deepcopy(SEED_SPEC)),
    )
    dag = build_dag(config)
    environment = dag.get_template_env()
    context = run_context(dag)
    assert environment.from_string("{{ conn.adv_secret.password }}").render(context) == PASSWORD
    assert environment.from_string("{{ var.value.adv_variable }}").render(context) == VARIABLE


def _write(jobs: Path, spec: dict[str, Any]) -> Path:
    path = jobs / "seed.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    return path

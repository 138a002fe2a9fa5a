"""
``pstt state show|set|reset SPEC`` as an operator runs it: a real process on an Airflow home of the test's own,
the real broker's state topic, and real runs of the spec's task against PostgreSQL that start where the command
put the position, checked by what a read_committed consumer holds.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from helpers import ROOT
from helpers.airflow_home import airflow_env, metadata_engine
from helpers.operator_context import RecordingTaskInstance, context_for
from helpers.pstt_api_server import free_port
from sqlalchemy import text

from pstt_provider.factory.task_arguments import TASK_ID, task_arguments
from pstt_provider.factory.validation import Validator
from pstt_provider.hooks.kafka import PsttKafkaHook
from pstt_provider.job_state import DEFAULT_STATE_TOPIC, StateTopic, state_key
from pstt_provider.keyed_topic import KeyedTopic
from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator

PSTT = str(ROOT / ".venv" / "bin" / "pstt")
QUERY = "STATE-001--Events.sql"
FIRST_STAMP = "2026-01-20T00:00:00+00:00"


def stamp(row: int) -> str:
    """The updated_at of row ``row`` (a minute per row), as the position shows it."""
    return f"2026-01-20T00:{row:02d}:00+00:00"


class Job:
    """One job spec of the test's own (its own dag_id: the state topic is shared), run and commanded."""

    def __init__(self, folder: Path, home: Path, table: str, topic: str, **changes: Any) -> None:
        self.folder = folder
        self.home = home
        self.dag_id = f"pstt_state_{uuid.uuid4().hex[:10]}"
        spec = {
            "name": "State CLI test",
            "query": QUERY,
            "connection": "pstt_test_pg",
            "scheduling_mode": "manual",
            "dag_id": self.dag_id,
            "kafka_config": {"topic": topic, "message_key_field": "code"},
            "incremental": {"column": "updated_at", "tiebreaker": "id"},
            **changes,
        }
        (folder / "queries").mkdir(exist_ok=True)
        (folder / "queries" / QUERY).write_text(f"SELECT id, code, updated_at FROM {table}\n")
        (folder / "jobs").mkdir(exist_ok=True)
        self.spec = folder / "jobs" / f"{self.dag_id}.json"
        self.spec.write_text(json.dumps(spec))

    @property
    def key(self) -> str:
        return state_key(self.dag_id, TASK_ID)

    def run(self) -> dict[str, Any]:
        """One run of the spec's task, built with the arguments the DAG factory gives it."""
        validator = Validator(self.folder / "jobs", self.folder / "queries", default_timezone="UTC")
        operator = SqlToKafkaOperator(task_id=TASK_ID, **task_arguments(validator.validate(self.spec)))
        ti = RecordingTaskInstance(dag_id=self.dag_id, task_id=TASK_ID)
        result = operator.execute(context_for(ti))
        result["run_id"] = ti.run_id
        return result

    def pstt(self, *args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
        """``pstt state ARGS`` from the job's folder, with the spec's path relative to it, as a user types it."""
        env = {
            **airflow_env(home or self.home),
            "PSTT_JOBS_DIR": str(self.folder / "jobs"),
            "PSTT_QUERIES_DIR": str(self.folder / "queries"),
        }
        spec = str(self.spec.relative_to(self.folder))
        return subprocess.run(
            [PSTT, "state", args[0], spec, *args[1:]],
            env=env,
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def shown(self) -> dict[str, Any]:
        result = self.pstt("show", "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def stored(self) -> Any:
        """The job's record as a run reads it: read_committed."""
        return StateTopic(PsttKafkaHook("kafka_default")).read(self.key)


@pytest.fixture
def events(new_pg_table, pg_conn) -> str:
    """Rows 1..10, codes E1..E10, a minute apart from 2026-01-20 00:01 UTC."""
    table = new_pg_table("pstt_state", "(id int PRIMARY KEY, code text NOT NULL, updated_at timestamptz NOT NULL)")
    pg_conn.execute(
        f"INSERT INTO {table} SELECT g, 'E' || g, timestamptz '{FIRST_STAMP}' + g * interval '1 minute' "
        "FROM generate_series(1, 10) g"
    )
    return table


@pytest.fixture
def new_job(
    airflow_home: Callable[[Path], Path], tmp_path: Path, events: str, topic: str, kafka_bootstrap: str
) -> Callable[..., Job]:
    home = airflow_home(tmp_path / "airflow")
    return lambda **changes: Job(tmp_path, home, events, topic, **changes)


def codes(records) -> list[str]:
    return [record.key.decode() for record in records]


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def write_raw_record(kafka_bootstrap: str, key: str, value: bytes) -> None:
    """Bytes under the job's key, where the job's record goes: as another producer might have left them."""
    topic = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(DEFAULT_STATE_TOPIC, timeout=30)
    partitions = len(topic.topics[DEFAULT_STATE_TOPIC].partitions)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "acks": "all"})
    producer.produce(DEFAULT_STATE_TOPIC, key=key, value=value, partition=KeyedTopic.partition(key, partitions))
    assert producer.flush(30) == 0


def add_dag_run(home: Path, dag_id: str, run_id: str, state: str) -> None:
    with metadata_engine(home).begin() as connection:
        connection.execute(
            text(
                "INSERT INTO dag_run (dag_id, run_id, run_type, state, run_after) "
                "VALUES (:dag_id, :run_id, 'manual', :state, CURRENT_TIMESTAMP)"
            ),
            {"dag_id": dag_id, "run_id": run_id, "state": state},
        )


def test_show_with_nothing_stored_says_where_the_next_run_starts(new_job):
    job = new_job(incremental={"column": "updated_at", "tiebreaker": "id", "initial": stamp(5)})

    result = job.pstt("show")

    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"{job.key} in topic pstt-state (Kafka connection kafka_default): nothing stored; "
        f"the next run starts from incremental.initial ({stamp(5)}, inclusive)\n"
    )
    assert job.shown() == {
        "dag_id": job.dag_id,
        "task_id": "export_to_kafka",
        "key": job.key,
        "state_topic": "pstt-state",
        "kafka_conn_id": "kafka_default",
        "columns": ["updated_at", "id"],
        "stored": None,
    }


def test_show_prints_what_the_topic_holds_after_a_run(new_job):
    job = new_job()
    run = job.run()

    shown = job.shown()["stored"]
    text_lines = job.pstt("show").stdout.splitlines()

    assert shown.pop("updated_at")
    assert shown == {
        "position": {"updated_at": stamp(10), "id": 10},
        "run_id": run["run_id"],
        "complete": True,
        "rows": 10,
        "written_by": "run",
    }
    assert text_lines[1:5] == [
        f"  position:   updated_at = {stamp(10)}, id = 10",
        f"  run_id:     {run['run_id']}",
        "  complete:   True",
        "  rows:       10",
    ]


@pytest.mark.parametrize("delivery", ["at_least_once", "exactly_once"])
def test_set_then_a_run_redelivers_the_rows_after_the_given_position(new_job, topic, consume, delivery):
    job = new_job(kafka_config={"topic": topic, "message_key_field": "code", "delivery": delivery})
    job.run()

    result = job.pstt("set", "--to", f"{stamp(4)},4")
    again = job.run()

    assert result.returncode == 0, result.stderr
    assert f"position set to updated_at = {stamp(4)}, id = 4" in result.stdout
    assert again["position_before"] == {"updated_at": stamp(4), "id": 4}
    assert codes(consume(topic, expected=16)) == [f"E{n}" for n in range(1, 11)] + [f"E{n}" for n in range(5, 11)]


def test_exactly_once_writes_are_committed_for_read_committed_readers(new_job, topic):
    job = new_job(kafka_config={"topic": topic, "message_key_field": "code", "delivery": "exactly_once"})

    assert job.pstt("set", "--to", "2026-01-20T00:07:00+00:00,7").returncode == 0
    stored = job.stored()
    assert stored is not None
    assert (stored.columns, stored.position[1], stored.run_id, stored.complete, stored.rows, stored.written_by) == (
        ("updated_at", "id"),
        7,
        None,
        True,
        0,
        "pstt state set",
    )
    assert job.shown()["stored"]["position"] == {"updated_at": stamp(7), "id": 7}

    assert job.pstt("reset").returncode == 0
    assert job.stored() is None


def test_reset_then_a_run_redelivers_from_initial(new_job, topic, consume):
    job = new_job(incremental={"column": "id", "initial": 3})
    first = job.run()

    result = job.pstt("reset")
    second = job.run()

    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"{job.key} in topic pstt-state (Kafka connection kafka_default): position cleared (was: id = 10); "
        "the next run starts from incremental.initial (3, inclusive)\n"
    )
    assert (first["rows"], second["rows"], second["position_before"]) == (8, 8, None)
    assert codes(consume(topic, expected=16)) == [f"E{n}" for n in range(3, 11)] * 2


def test_set_and_reset_refuse_while_a_run_of_the_dag_is_active(new_job):
    job = new_job()
    job.run()
    add_dag_run(job.home, job.dag_id, "manual__running", "running")
    add_dag_run(job.home, job.dag_id, "manual__queued", "queued")
    add_dag_run(job.home, job.dag_id, "manual__done", "success")
    add_dag_run(job.home, "pstt_another_dag", "manual__other", "running")

    refused_set = job.pstt("set", "--to", f"{stamp(2)},2")
    refused_reset = job.pstt("reset", "--force")

    for refused in (refused_set, refused_reset):
        assert refused.returncode == 2
        line = one_line(refused.stderr)
        assert f"refused: {job.dag_id} has 2 active run(s): manual__queued (queued), manual__running (running)" in line
        assert "manual__done" not in line
        assert "manual__other" not in line
    assert job.shown()["stored"]["position"] == {"updated_at": stamp(10), "id": 10}

    with metadata_engine(job.home).begin() as connection:
        connection.execute(text("UPDATE dag_run SET state = 'failed' WHERE dag_id = :d"), {"d": job.dag_id})
    assert job.pstt("set", "--to", f"{stamp(2)},2").returncode == 0
    assert job.shown()["stored"]["position"] == {"updated_at": stamp(2), "id": 2}


def test_without_a_metadata_database_writes_refuse_unless_forced(new_job, tmp_path):
    job = new_job()
    nowhere = tmp_path / "no-airflow-here"
    nowhere.mkdir()

    refused = job.pstt("set", "--to", f"{stamp(6)},6", home=nowhere)
    forced = job.pstt("set", "--to", f"{stamp(6)},6", "--force", home=nowhere)

    assert refused.returncode == 2
    line = one_line(refused.stderr)
    assert f"cannot check for active runs of {job.dag_id}: no Airflow metadata database at {nowhere}" in line
    assert line.endswith("or pass --force if you made sure none is active")
    assert forced.returncode == 0, forced.stderr
    assert one_line(forced.stderr).startswith(
        f"warning: --force: not checked for active runs of {job.dag_id}: no Airflow metadata database at {nowhere}"
    )
    assert job.shown()["stored"]["position"] == {"updated_at": stamp(6), "id": 6}


def test_a_job_without_a_position_is_said_in_one_line_by_each_command(new_job):
    job = new_job(incremental=None)

    for args in (("show",), ("set", "--to", "1"), ("reset",)):
        result = job.pstt(*args)
        assert result.returncode == 2
        assert one_line(result.stderr) == (
            f"pstt state {args[0]}: jobs/{job.spec.name} keeps no position: it has neither incremental nor "
            "checkpoint_rows, so every run reads every row"
        )


def test_values_are_typed_like_the_stored_position_and_counted_against_the_order_columns(new_job):
    job = new_job()
    job.run()

    without_offset = job.pstt("set", "--to", "2026-01-20T00:03:00,3")
    one_value = job.pstt("set", "--to", stamp(3))

    assert without_offset.returncode == one_value.returncode == 2
    assert one_line(without_offset.stderr) == (
        "pstt state set: --to: updated_at: '2026-01-20T00:03:00' is not a valid timestamptz: "
        "the column's timestamps are with a time zone offset"
    )
    assert "has 1 value(s), the job orders by 2 (updated_at, id)" in one_line(one_value.stderr)
    assert job.shown()["stored"]["position"] == {"updated_at": stamp(10), "id": 10}


def test_an_unreachable_broker_is_one_line(new_job, topic, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_PSTT_STATE_NOWHERE",
        json.dumps({"conn_type": "kafka", "extra": {"bootstrap.servers": f"127.0.0.1:{free_port()}"}}),
    )
    job = new_job(kafka_config={"topic": topic, "message_key_field": "code", "connection_name": "pstt_state_nowhere"})

    result = job.pstt("show", "--timeout", "2")

    assert result.returncode == 2
    assert one_line(result.stderr).startswith("pstt state show: no broker answered within 2 s")


@pytest.mark.parametrize("record", [b"not json", b'{"columns": 5, "position": []}'])
def test_an_unreadable_record_is_one_line(new_job, kafka_bootstrap, record):
    job = new_job()
    assert job.stored() is None  # the state topic exists
    write_raw_record(kafka_bootstrap, job.key, record)

    for args in (("show",), ("show", "--json"), ("set", "--to", f"{stamp(1)},1")):
        failed = job.pstt(*args)
        assert failed.returncode == 2
        line = one_line(failed.stderr)
        assert line.startswith(f"pstt state {args[0]}: the state record of {job.key!r}")
        assert "cannot be read" in line
        assert line.endswith("pstt state reset clears it")


def test_reset_clears_an_unreadable_record(new_job, kafka_bootstrap):
    job = new_job()
    assert job.stored() is None
    write_raw_record(kafka_bootstrap, job.key, b'{"columns": 5, "position": []}')

    cleared = job.pstt("reset")

    assert cleared.returncode == 0, cleared.stderr
    assert "position cleared (was: unreadable (the state record of" in cleared.stdout
    assert job.shown()["stored"] is None

"""
checkpoint_rows under exactly_once when the task process dies without a word: SIGKILL runs no ``except``, no
``finally`` and no abort, so the dead try leaves its open transaction on the broker and its query in PostgreSQL.

The first try runs in an OS process of its own (this module, run as a script, is that try) over a table of
``ROWS`` numbered rows read in id order through a slowed query that a ``Gate`` holds at row ``HELD_AT``: by then
two checkpoints have committed ``COMMITTED`` rows and the third transaction holds the rows up to ``PRODUCED``, so
the kill lands in the middle of a chunk however fast or slow the machine is. The retry of the same run (same
dag_id/task_id/run_id, try 2) fences the dead try's transaction, reads only the rows after its last checkpoint,
and a read_committed reader ends up with every key exactly once.

    .venv/bin/python tests/integration/test_checkpoints_sigkill.py '{"sql": ..., "topic": ..., ...}'
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from helpers import ROOT, child_env
from helpers.broker_faults import Gate, numbered_keys, numbered_table, slowed_query
from helpers.kafka import consume_all
from helpers.operator_context import RecordingTaskInstance, context_for, retry_of

from pstt_provider.dialects.postgres import DIALECT
from pstt_provider.hooks.kafka import PsttKafkaHook
from pstt_provider.job_state import StateTopic, state_key
from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator
from pstt_provider.ordered_read import ReadPlan
from pstt_provider.query_file import parse_query_text

pytestmark = pytest.mark.slow  # the first try is a process of its own, which tests/conftest.py cannot see

ROWS = 20_000
CHECKPOINT_ROWS = 5_000
BATCH_SIZE = 500
"""Divides CHECKPOINT_ROWS, so the checkpoints fall on rows 5,000, 10,000, ... exactly."""
HELD_AT = 12_500
"""The gate's row: the fetch of rows 12,001..12,500 waits there, after the batch ending at row 12,000 was sent."""
COMMITTED = 10_000
"""Rows the two checkpoints before the gate committed: where the retry resumes."""
PRODUCED = 12_000
"""Rows the first try had produced when it was killed: the last 2,000 in its open, never committed transaction."""
ORDERINGS: dict[str, dict[str, Any]] = {
    "incremental": {"incremental": {"column": "id"}},
    "order_by": {"order_by": ["id"]},
}
TASK_ID = "publish"


def export(sql: str, topic: str, ordering: str) -> SqlToKafkaOperator:
    """The job both tries run: exactly_once, a checkpoint every CHECKPOINT_ROWS rows, read in id order."""
    return SqlToKafkaOperator(
        task_id=TASK_ID,
        conn_id="pstt_test_pg",
        sql=sql,
        topic=topic,
        message_key_field="code",
        delivery="exactly_once",
        batch_size=BATCH_SIZE,
        include_metadata=False,
        checkpoint_rows=CHECKPOINT_ROWS,
        **ORDERINGS[ordering],
    )


def first_try(arguments: dict[str, str]) -> None:
    """What the child process runs: try 1 of the run, as a task runner would call it."""
    ti = RecordingTaskInstance(dag_id=arguments["dag_id"], task_id=TASK_ID, run_id=arguments["run_id"], try_number=1)
    export(arguments["sql"], arguments["topic"], arguments["ordering"]).execute(context_for(ti))


@contextmanager
def first_try_process(log: Path, **arguments: str) -> Iterator[subprocess.Popen]:
    """This module run as the first try; killed on the way out if the test did not get to kill it."""
    with log.open("w") as output:
        child = subprocess.Popen(
            [sys.executable, __file__, json.dumps(arguments)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=child_env(os.environ),
            cwd=ROOT,
            start_new_session=True,
        )
    try:
        yield child
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=60)


@pytest.fixture
def dag_id() -> str:
    """A job of the test's own: positions are kept per dag_id/task_id in the shared state topic."""
    return f"pstt_sigkill_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def source_table(postgres: dict) -> Iterator[str]:
    """
    ROWS numbered rows with a primary key on id: the ordered read (ORDER BY id around the query) then streams
    through the index, so the slowed query's pauses and its gate are met row by row, not by a sort up front.
    """
    with numbered_table(postgres, "pstt_sigkill", ROWS) as name:
        with psycopg.connect(**postgres, autocommit=True) as conn:
            conn.execute(f"ALTER TABLE {name} ADD PRIMARY KEY (id)")
            conn.execute(f"ANALYZE {name}")
        yield name


def assert_streams_in_id_order(postgres: dict, sql: str) -> None:
    """The plan of the operator's ordered read, as its cursor runs it: a Sort would meet the gate before any row."""
    ordered, _binds = ReadPlan(("id",)).apply(parse_query_text(sql), DIALECT, ("id", "code"))
    with psycopg.connect(**postgres, autocommit=True) as conn:
        explain = f"EXPLAIN DECLARE probe CURSOR FOR {ordered.statement('pyformat').sql}"
        plan = [line for (line,) in conn.execute(explain, {}).fetchall()]  # with binds: %% reads as %
    assert not any("Sort" in line for line in plan), "the ordered read does not stream:\n" + "\n".join(plan)


@pytest.mark.parametrize("ordering", sorted(ORDERINGS))
def test_a_try_killed_mid_chunk_is_resumed_after_its_last_checkpoint_and_every_key_arrives_once(
    ordering, source_table, postgres, topic, dag_id, tmp_path
):
    gate = Gate(postgres, at_row=HELD_AT)
    sql = slowed_query(source_table, "id, code", gate)
    assert_streams_in_id_order(postgres, sql)
    state = StateTopic(PsttKafkaHook("kafka_default"))
    key = state_key(dag_id, TASK_ID)
    first = RecordingTaskInstance(dag_id=dag_id, task_id=TASK_ID)
    log = tmp_path / "first-try.log"
    try:
        with first_try_process(
            log, sql=sql, topic=topic, dag_id=dag_id, run_id=first.run_id, ordering=ordering
        ) as child:
            in_flight = consume_all(topic, isolation="read_uncommitted", expected=PRODUCED, timeout_s=180)
            assert child.poll() is None, f"the first try ended by itself:\n{log.read_text()[-4000:]}"
            visible = consume_all(topic)
            checkpoint = state.read(key)
            os.kill(child.pid, signal.SIGKILL)
            assert child.wait(timeout=60) == -signal.SIGKILL
    finally:
        gate.open()  # the dead try's query still waits at the gate: let it run into its closed socket and end

    assert len(in_flight) == PRODUCED, f"the gate did not hold the first try:\n{log.read_text()[-4000:]}"
    assert len(visible) == COMMITTED
    assert checkpoint is not None
    assert (checkpoint.position, checkpoint.rows, checkpoint.complete, checkpoint.run_id) == (
        (COMMITTED,),
        COMMITTED,
        False,
        first.run_id,
    )

    retry = export(sql, topic, ordering).execute(context_for(retry_of(first)))

    assert retry["state"] == "success"
    assert retry["rows"] == ROWS - COMMITTED
    assert retry["messages_sent"] == ROWS - COMMITTED
    assert retry["position_before"] == {"id": COMMITTED}
    assert retry["position_after"] == {"id": ROWS}
    delivered = consume_all(topic, expected=ROWS, timeout_s=120)
    counts = Counter(record.key for record in delivered)
    assert set(counts) == numbered_keys(ROWS)
    assert max(counts.values()) == 1
    # The dead try's last chunk is still in the log, aborted by the retry's fencing: read_committed skips it.
    assert len(consume_all(topic, isolation="read_uncommitted", expected=ROWS)) == ROWS + PRODUCED - COMMITTED
    final = state.read(key)
    assert final is not None
    assert (final.position, final.rows, final.complete) == ((ROWS,), ROWS, True)


if __name__ == "__main__":
    first_try(json.loads(sys.argv[1]))

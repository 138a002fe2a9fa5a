"""
What the task log tells an operator on day one: the parameter values the run used, first, and on long runs a
progress line with the rows so far and the rate; never a connection's secret.
"""

from __future__ import annotations

import json
import logging
import re
import uuid

from helpers.kafka import new_topic
from helpers.operator_context import RecordingTaskInstance, context_for

from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator

ROWS = 20_000
SECRET = f"kafka-secret-{uuid.uuid4().hex}"
QUERY = (
    "define STATO='OK' --Obbligatorio: stato della traccia\n"
    "define LAST='10' --Opzionale: ultima riga\n"
    "SELECT g AS id, '&STATO' AS stato FROM generate_series(1, :LAST) g\n"
    "WHERE g % 2000 <> 0 OR pg_sleep(0.05)::text = ''"
)
"""Slowed a little (50 ms every 2,000 rows) so a run of 20,000 rows lasts long enough for progress lines."""


OPERATOR_LINE = re.compile(r"^\S+ \[(\w+) *\] (.*) \[airflow\.task\.operators\.[^\]]+\] loc=", re.MULTILINE)


def operator_lines(stdout: str) -> list[str]:
    """
    The operator's own INFO lines, as the Task SDK's log writes them (``time [level] text [logger]``). Outside a
    task runner (here) BaseOperator warns first that execute is called directly; that warning is left out.
    """
    return [text for level, text in OPERATOR_LINE.findall(stdout) if level == "info"]


def test_the_first_log_lines_name_the_parameter_values_and_progress_lines_give_rows_and_rate(
    postgres, kafka_bootstrap, consume, monkeypatch, caplog, capfd
):
    caplog.set_level(logging.INFO)
    conn_id = f"pstt_ops_log_{uuid.uuid4().hex[:8]}"
    extra = {"bootstrap.servers": kafka_bootstrap, "sasl.username": "ops", "sasl.password": SECRET}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "kafka", "extra": extra}))
    topic = new_topic(kafka_bootstrap)
    ti = RecordingTaskInstance()

    result = SqlToKafkaOperator(
        task_id="publish",
        conn_id="pstt_test_pg",
        sql=QUERY,
        parameters={"LAST": str(ROWS), "STATO": "IN CONSEGNA"},
        topic=topic,
        message_key_field="id",
        kafka_config_id=conn_id,
        batch_size=1000,
        progress_interval_s=0.1,
    ).execute(context_for(ti))

    assert (result["state"], result["messages_sent"]) == ("success", ROWS)
    records = consume(topic, expected=ROWS)
    assert {json.loads(r.value)["data"]["stato"] for r in records} == {"IN CONSEGNA"}
    output = capfd.readouterr()
    lines = operator_lines(output.out)
    assert lines[0] == "Running <inline sql> with STATO='IN CONSEGNA', LAST='20000'"
    progress = [
        m for line in lines if (m := re.fullmatch(r"Progress: (\d+) rows, (\d+) rows/s, [\d.]+ s elapsed", line))
    ]
    assert len(progress) >= 2, lines
    counts = [int(m.group(1)) for m in progress]
    assert counts == sorted(counts)
    assert 0 < counts[0] < ROWS
    assert all(int(m.group(2)) > 0 for m in progress)
    assert lines[-1].startswith(f"Published {ROWS} of {ROWS} rows to {topic}")
    for text in (caplog.text, output.out, output.err, json.dumps(ti.xcoms, default=str)):
        assert SECRET not in text

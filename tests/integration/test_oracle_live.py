"""
The Oracle path against a real Oracle database: runs only when PSTT_ORACLE_DSN is set.

    PSTT_ORACLE_DSN=pstt/pstt@localhost:1521/FREEPDB1 .venv/bin/python -m pytest tests/integration/test_oracle_live.py
(docker compose up -d oracle starts Oracle Database Free with that account.)
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import uuid
from decimal import Decimal

import pytest
from helpers.operator_context import RecordingTaskInstance, context_for

from pstt_provider.operators.oracle_to_kafka import OracleToKafkaOperator
from pstt_provider.streaming import SourceQueryError

DSN = os.environ.get("PSTT_ORACLE_DSN", "")
pytestmark = [
    pytest.mark.oracle,
    pytest.mark.skipif(
        not DSN, reason="PSTT_ORACLE_DSN is not set (user/password@host:port/service); no Oracle server to test"
    ),
]
CONN_ID = "pstt_live_oracle"
BIG = Decimal("1234567890123456789012345678.0123456789")
LONG_TEXT = "città «ü» 東京 " * 1000


def _parse_dsn(dsn: str) -> dict:
    match = re.fullmatch(
        r"(?P<user>[^/]+)/(?P<password>[^@]+)@(?P<host>[^:/]+)(?::(?P<port>\d+))?/(?P<service>.+)", dsn
    )
    if not match:
        raise ValueError("PSTT_ORACLE_DSN must look like user/password@host:port/service")
    return match.groupdict()


@pytest.fixture(scope="module")
def oracle(kafka_bootstrap) -> dict:
    parts = _parse_dsn(DSN)
    os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps(
        {
            "conn_type": "oracle",
            "host": parts["host"],
            "port": int(parts["port"] or 1521),
            "login": parts["user"],
            "password": parts["password"],
            "extra": {"service_name": parts["service"]},
        }
    )
    return parts


@pytest.fixture
def shipments(oracle):
    import oracledb

    connection = oracledb.connect(
        user=oracle["user"],
        password=oracle["password"],
        dsn=f"{oracle['host']}:{oracle['port'] or 1521}/{oracle['service']}",
    )
    table = f"PSTT_LIVE_{uuid.uuid4().hex[:8].upper()}"
    cursor = connection.cursor()
    cursor.execute(
        f"""CREATE TABLE {table} (
            TRKCODE VARCHAR2(40), TRKDATE DATE, AMOUNT NUMBER(38,10), RATIO NUMBER, QTY NUMBER(10),
            SEEN TIMESTAMP WITH TIME ZONE, NOTE CLOB, PHOTO BLOB, CITY VARCHAR2(100)
        )"""
    )
    rows = [
        (
            f"T{n:05d}",
            dt.datetime(2026, 1, 20) + dt.timedelta(days=n % 3),
            BIG if n == 1 else Decimal(n) / 7,
            Decimal("0.1") * n,
            n,
            dt.datetime(2026, 1, 20, 10, 30, tzinfo=dt.UTC),
            LONG_TEXT if n == 2 else None,
            bytes([n % 256]) * 5000 if n == 3 else None,
            "Città di Castello",
        )
        for n in range(1, 1001)
    ]
    cursor.setinputsizes(None, None, None, None, None, None, oracledb.DB_TYPE_CLOB, oracledb.DB_TYPE_BLOB, None)
    cursor.executemany(f"INSERT INTO {table} VALUES (:1, :2, :3, :4, :5, :6, :7, :8, :9)", rows)
    connection.commit()
    yield table
    cursor.execute(f"DROP TABLE {table} PURGE")
    connection.close()


def test_oracle_rows_arrive_exact_with_lobs_inline_through_a_query_file(shipments, tmp_path, topic, consume):
    query = tmp_path / "ORA-001--Tracce.sql"
    query.write_text(
        "define DATA='2026-01-20' --Obbligatorio: data\n"
        f"SELECT * FROM {shipments} WHERE TRKDATE >= TO_DATE('&DATA', 'YYYY-MM-DD') AND CITY = :CITY\n/\n"
    )
    operator = OracleToKafkaOperator(
        task_id="publish",
        conn_id=CONN_ID,
        sql_file=str(query),
        parameters={"CITY": "Città di Castello"},
        topic=topic,
        message_key_field="trkcode",
        batch_size=250,
    )

    result = operator.execute(context_for(RecordingTaskInstance()))

    records = {r.key.decode(): json.loads(r.value, parse_float=Decimal)["data"] for r in consume(topic, expected=1000)}
    assert len(records) == result["messages_sent"] == 1000
    assert records["T00001"]["AMOUNT"] == BIG
    assert records["T00007"]["AMOUNT"] == Decimal(1)
    assert records["T00003"]["RATIO"] == Decimal("0.3")
    assert records["T00010"]["QTY"] == 10
    assert records["T00002"]["NOTE"] == LONG_TEXT
    assert base64.b64decode(records["T00003"]["PHOTO"]) == bytes([3]) * 5000
    assert records["T00001"]["TRKDATE"].startswith("2026-01-2")
    assert records["T00001"]["CITY"] == "Città di Castello"


def test_oracle_errors_name_the_query_file_and_the_ora_code(oracle, tmp_path, topic):
    query = tmp_path / "ORA-002--Broken.sql"
    query.write_text("SELECT * FROM NO_SUCH_TABLE_PSTT;\n")

    with pytest.raises(SourceQueryError, match=r"ORA-002--Broken\.sql.*ORA-00942"):
        OracleToKafkaOperator(
            task_id="publish", conn_id=CONN_ID, sql_file=str(query), topic=topic, message_key_field="X"
        ).execute(context_for(RecordingTaskInstance()))


def test_oracle_incremental_runs_read_after_the_stored_position_in_order(shipments, topic, consume):
    """The spelt-out row comparison, SYSTIMESTAMP for the lag and exact NUMBERs as the position, on Oracle."""
    dag_id = f"pstt_oracle_incremental_{uuid.uuid4().hex[:8]}"
    incremental = {"column": "trkdate", "tiebreaker": "trkcode", "lag_seconds": 60}

    def run(**kwargs) -> dict:
        export = OracleToKafkaOperator(
            task_id="export",
            conn_id=CONN_ID,
            sql=f"SELECT TRKCODE, TRKDATE, QTY FROM {shipments} WHERE QTY <= :UPTO",
            parameters={"UPTO": kwargs.get("upto", "600")},
            topic=topic,
            message_key_field="TRKCODE",
            incremental=incremental,
            delivery="exactly_once",
            checkpoint_rows=250,
        )
        return export.execute(context_for(RecordingTaskInstance(dag_id=dag_id, task_id="export")))

    first = run()
    second = run(upto="1000")  # rows below the position are not read again, whatever the query now returns

    assert first["rows"] == 600
    assert first["position_after"]["trkdate"] == "2026-01-22T00:00:00"  # keyed as the spec names the column
    delivered = [record.key.decode() for record in consume(topic, expected=first["rows"] + second["rows"])]
    assert len(delivered) == len(set(delivered))
    assert second["position_before"] == first["position_after"]

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest
from helpers.kafka import new_topic
from helpers.operator_context import RecordingTaskInstance, context_for

from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator

ROWS = 100_000
BIG_AMOUNT = Decimal("1234567890123456789012345678.0123456789")


@pytest.fixture
def typed_table(new_pg_table) -> str:
    return new_pg_table(
        "pstt_typed",
        f"""
        AS
        SELECT g AS id,
               CASE WHEN g = 1 THEN {BIG_AMOUNT}::numeric(38,10)
                    WHEN g % 7 = 0 THEN NULL
                    ELSE (g * 1234567.0123456789 / 3)::numeric(38,10) END AS amount,
               g::bigint * 1000000007 AS big,
               timestamptz '2026-01-01 00:00:00.123456+00' + g * interval '1 minute 1.5 seconds' AS ts,
               date '2026-01-01' + (g % 365) AS day,
               CASE WHEN g % 11 = 0 THEN NULL ELSE decode(md5(g::text), 'hex') END AS raw,
               'spedizione n° ' || g || ' — città «ü» 東京' AS note
        FROM generate_series(1, {ROWS}) g
        """,
    )


def test_postgres_rows_land_in_kafka_once_each_with_exact_types(typed_table, pg_conn, topic, consume):
    ti = RecordingTaskInstance()
    operator = SqlToKafkaOperator(
        task_id="publish",
        conn_id="pstt_test_pg",
        sql=f"SELECT id, amount, big, ts, day, raw, note FROM {typed_table} ORDER BY id",
        topic=topic,
        message_key_field="id",
        batch_size=5000,
    )

    result = operator.execute(context_for(ti))

    records = consume(topic, expected=ROWS, timeout_s=180)
    assert len(records) == ROWS
    source = {
        row[0]: row
        for row in pg_conn.execute(f"SELECT id, amount, big, ts, day, raw, note FROM {typed_table}").fetchall()
    }
    seen_keys = set()
    for record in records:
        message = json.loads(record.value, parse_float=Decimal)
        data = message["data"]
        key = int(record.key.decode())
        seen_keys.add(key)
        id_, amount, big, ts, day, raw, note = source[key]
        assert data["id"] == id_
        assert (Decimal(data["amount"]) if data["amount"] is not None else None) == amount
        assert data["big"] == big
        assert dt.datetime.fromisoformat(data["ts"]) == ts
        assert data["ts"].endswith("+00:00")
        assert dt.date.fromisoformat(data["day"]) == day
        assert (base64.b64decode(data["raw"]) if data["raw"] is not None else None) == raw
        assert data["note"] == note
        assert list(data) == ["id", "amount", "big", "ts", "day", "raw", "note"]
    assert seen_keys == set(source)
    first = json.loads(records[0].value, parse_float=Decimal)
    assert first["data"]["amount"] == BIG_AMOUNT
    assert b'"amount":1234567890123456789012345678.0123456789' in records[0].value
    assert first["metadata"]["run_id"] == ti.run_id
    assert result["rows"] == result["messages_sent"] == ROWS
    assert result["messages_failed"] == 0
    assert result["state"] == "success"
    assert result["latency_histogram"]["total"] == ROWS
    assert ti.xcoms["pstt_delivery"] == result


def test_query_file_parameters_are_bound_never_spliced(tmp_path, pg_conn, kafka_bootstrap, consume):
    table = f"pstt_binds_{uuid.uuid4().hex[:10]}"
    pg_conn.execute(f"CREATE TABLE {table} (code text, label text)")
    pg_conn.execute(f"INSERT INTO {table} VALUES ('A', 'first'), ('B', 'second'), ('x'' OR ''1''=''1', 'trap')")
    query = tmp_path / "Q-001--Binds.sql"
    query.write_text(
        "define CODE='A' --Obbligatorio: code\n"
        f"SELECT code, label, '&CODE.' AS echoed FROM {table} WHERE code = '&CODE' OR code = :CODE;\n"
    )
    try:
        for value, expected in [("B", [("B", "second")]), ("x' OR '1'='1", [("x' OR '1'='1", "trap")])]:
            fresh = new_topic(kafka_bootstrap)
            operator = SqlToKafkaOperator(
                task_id="publish",
                conn_id="pstt_test_pg",
                sql_file=str(query),
                parameters={"code": value},
                topic=fresh,
                message_key_field="code",
                include_metadata=False,
            )
            operator.execute(context_for(RecordingTaskInstance()))
            records = consume(fresh, expected=len(expected))
            rows = [json.loads(r.value) for r in records]
            assert [(r["code"], r["label"]) for r in rows] == expected
            assert all(r["echoed"] == value for r in rows)
        assert pg_conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 3
    finally:
        pg_conn.execute(f"DROP TABLE {table}")


def test_postgres_numeric_specials_keep_their_exact_text(topic, consume):
    amounts = ["12345678901234567890.00000000000000000001", "-0.5", "NaN", "Infinity", "-Infinity", None]
    operator = SqlToKafkaOperator(
        task_id="publish",
        conn_id="pstt_test_pg",
        sql="SELECT n AS id, amount::numeric AS amount FROM unnest(ARRAY["
        + ", ".join("NULL" if a is None else f"'{a}'" for a in amounts)
        + "]::text[]) WITH ORDINALITY AS t(amount, n)",
        topic=topic,
        message_key_field="id",
        include_metadata=False,
    )

    result = operator.execute(context_for(RecordingTaskInstance()))

    records = sorted(consume(topic, expected=len(amounts)), key=lambda r: int(r.key))
    assert records[0].value == b'{"id":1,"amount":12345678901234567890.00000000000000000001}'
    assert [json.loads(r.value)["amount"] for r in records[1:]] == [-0.5, "NaN", "Infinity", "-Infinity", None]
    assert result["messages_sent"] == len(amounts)

"""
The avro and json_schema value formats without a registry: the schema a cursor description gives, and the Confluent
wire format of the values, read back with fastavro and checked with jsonschema.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import socket
import struct
import uuid
from decimal import Decimal

import jsonschema
import oracledb
import pytest
from airflow.sdk.exceptions import AirflowFailException
from confluent_kafka.schema_registry import SchemaRegistryClient
from fastavro import parse_schema, schemaless_reader

from pstt_provider.exceptions import (
    RowEncodingError,
    SchemaRegistryRejectedError,
    SchemaRegistryUnavailableError,
    UnsupportedColumnTypeError,
)
from pstt_provider.hooks.schema_registry import SchemaRegistryHook, registry_url
from pstt_provider.schema_registration import register
from pstt_provider.value_formats import AvroEncoder, JsonSchemaEncoder, wire_prefix
from pstt_provider.value_schemas import avro_name, avro_schema, changed_columns, column_types, json_schema


def pg(name: str, oid: int, precision: int | None = None, scale: int | None = None) -> tuple:
    """A psycopg description entry: PostgreSQL says nothing of nullability (null_ok None)."""
    return (name, oid, None, None, precision, scale, None)


PG_DESCRIPTION = [
    pg("id", 20),
    pg("amount", 1700, 20, 4),
    pg("total", 1700),
    pg("ts", 1114),
    pg("tz", 1184),
    pg("day", 1082),
    pg("note", 25),
    pg("flag", 16),
    pg("raw", 17),
    pg("ratio", 701),
    pg("small", 23),
    pg("ref", 2950),
]
ROWS = [
    (
        1,
        "1234567890123456.7891",
        "12345678901234567890.123456789",
        dt.datetime(2024, 2, 29, 23, 59, 59, 999999),
        dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC),
        dt.date(1969, 12, 31),
        "héllo",
        True,
        b"\x00\xff",
        0.1,
        -7,
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
    ),
    (2, "-0.0001", "NaN", None, None, None, None, False, b"", float("nan"), None, None),
    (
        3,
        None,
        None,
        dt.datetime(1900, 1, 1),
        dt.datetime(1900, 1, 1, tzinfo=dt.UTC),
        dt.date(2262, 4, 11),
        "",
        None,
        None,
        None,
        None,
        None,
    ),
]
METADATA = {"dag_id": "d", "run_id": "r", "task_id": "t", "query": "q.sql", "schema_version": "1.0"}


def expected(row: tuple) -> dict:
    """What a reader gets back for ``row``: exact decimals from the numerics' text."""
    names = [entry[0] for entry in PG_DESCRIPTION]
    values = dict(zip(names, row, strict=True))
    if values["amount"] is not None:
        values["amount"] = Decimal(values["amount"])
    return values


def test_postgres_columns_map_to_avro_types_all_nullable():
    schema = avro_schema(column_types(PG_DESCRIPTION), "orders.v1-eu", None)
    assert schema["name"] == "orders_v1_eu"
    types = {field["name"]: field["type"] for field in schema["fields"]}
    assert all(field["default"] is None and field["type"][0] == "null" for field in schema["fields"])
    assert {name: kind[1] for name, kind in types.items()} == {
        "id": "long",
        "amount": {"type": "bytes", "logicalType": "decimal", "precision": 20, "scale": 4},
        "total": "string",
        "ts": {"type": "long", "logicalType": "local-timestamp-micros"},
        "tz": {"type": "long", "logicalType": "timestamp-micros"},
        "day": {"type": "int", "logicalType": "date"},
        "note": "string",
        "flag": "boolean",
        "raw": "bytes",
        "ratio": "double",
        "small": "int",
        "ref": {"type": "string", "logicalType": "uuid"},
    }
    parse_schema(schema)


def test_oracle_numbers_follow_their_precision_and_declared_nullability_is_kept():
    description = [
        ("ID", oracledb.DB_TYPE_NUMBER, None, None, 9, 0, False),
        ("BIG", oracledb.DB_TYPE_NUMBER, None, None, 18, 0, True),
        ("HUGE", oracledb.DB_TYPE_NUMBER, None, None, 38, 0, True),
        ("PRICE", oracledb.DB_TYPE_NUMBER, None, None, 12, 2, True),
        ("ANY_NUMBER", oracledb.DB_TYPE_NUMBER, None, None, 0, -127, True),
        ("CREATED", oracledb.DB_TYPE_DATE, None, None, None, None, True),
        ("BODY", oracledb.DB_TYPE_BLOB, None, None, None, None, True),
    ]
    fields = {field["name"]: field["type"] for field in avro_schema(column_types(description), "t", None)["fields"]}
    assert fields == {
        "ID": "int",
        "BIG": ["null", "long"],
        "HUGE": ["null", {"type": "bytes", "logicalType": "decimal", "precision": 38, "scale": 0}],
        "PRICE": ["null", {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}],
        "ANY_NUMBER": ["null", "string"],
        "CREATED": ["null", {"type": "long", "logicalType": "local-timestamp-micros"}],
        "BODY": ["null", "bytes"],
    }


@pytest.mark.parametrize(
    ("description", "named"),
    [
        ([pg("id", 20), pg("doc", 3802)], "'doc' is of type jsonb"),
        ([pg("span", 1186)], "'span' is of type interval"),
        ([("ZONED", oracledb.DB_TYPE_TIMESTAMP_TZ, None, None, None, None, True)], "'ZONED' is of type"),
        ([("id", None, None, None, None, None, None)], "column 'id': the driver declares no type"),
    ],
    ids=["jsonb", "interval", "oracle-timestamp-tz", "sqlite-untyped"],
)
def test_a_column_without_an_exact_type_is_refused_by_name(description, named):
    with pytest.raises(UnsupportedColumnTypeError, match=named):
        column_types(description)


def test_a_column_name_avro_cannot_spell_is_refused_and_topics_become_avro_names():
    with pytest.raises(UnsupportedColumnTypeError, match="'order id' is not a valid Avro field name"):
        avro_schema(column_types([pg("order id", 20)]), "t", None)
    assert (avro_name("orders.v1-eu"), avro_name("1st")) == ("orders_v1_eu", "_1st")


def test_the_envelope_schema_is_the_row_record_and_a_record_of_string_metadata():
    schema = avro_schema(column_types([pg("id", 20)]), "orders", METADATA)
    assert [field["name"] for field in schema["fields"]] == ["data", "metadata"]
    assert schema["fields"][0]["type"]["name"] == "orders_data"
    assert schema["fields"][1]["type"]["fields"] == [{"name": key, "type": "string"} for key in METADATA]
    parse_schema(schema)


def read_avro(value: bytes, schema: dict) -> tuple[int, dict]:
    assert value[0] == 0
    (schema_id,) = struct.unpack(">I", value[1:5])
    return schema_id, schemaless_reader(io.BytesIO(value[5:]), parse_schema(schema), None)


def test_avro_values_are_the_wire_format_of_the_rows_exactly():
    columns = column_types(PG_DESCRIPTION)
    schema = avro_schema(columns, "t", None)
    values = AvroEncoder(columns, schema, None, 258).encode_batch([ROWS[0], ROWS[2]])
    assert [value[:5] for value in values] == [b"\x00\x00\x00\x01\x02"] * 2 == [wire_prefix(258)] * 2
    assert [read_avro(value, schema) for value in values] == [(258, expected(ROWS[0])), (258, expected(ROWS[2]))]


def test_a_driver_decimal_is_scaled_like_the_postgres_text():
    columns = column_types([pg("amount", 1700, 10, 4), pg("total", 1700)])
    schema = avro_schema(columns, "t", None)
    [value] = AvroEncoder(columns, schema, None, 1).encode_batch([(Decimal("1.5"), Decimal("1E+3"))])
    assert read_avro(value, schema)[1] == {"amount": Decimal("1.5000"), "total": "1000"}


def test_an_avro_envelope_is_the_row_then_the_metadata():
    columns = column_types(PG_DESCRIPTION)
    schema = avro_schema(columns, "t", METADATA)
    [value] = AvroEncoder(columns, schema, METADATA, 5).encode_batch([ROWS[0]])
    assert read_avro(value, schema) == (5, {"data": expected(ROWS[0]), "metadata": METADATA})


def test_a_nan_numeric_cannot_be_an_avro_decimal_and_fails_naming_row_and_column():
    columns = column_types([pg("id", 20), pg("amount", 1700, 10, 2)])
    encoder = AvroEncoder(columns, avro_schema(columns, "t", None), None, 1)
    with pytest.raises(RowEncodingError, match="row 12: column 'amount': NaN is not a number an Avro decimal"):
        encoder.encode_batch([(1, "1.00"), (2, "NaN")], first_row_number=11)


def test_a_value_of_the_wrong_type_fails_naming_row_and_column():
    columns = column_types([pg("id", 20), pg("note", 25)])
    encoder = AvroEncoder(columns, avro_schema(columns, "t", None), None, 1)
    with pytest.raises(RowEncodingError, match="row 1: column 'note': cannot encode the int 5"):
        encoder.encode_batch([(1, 5)])


def read_json(value: bytes, schema: dict) -> dict:
    assert value[:5] == wire_prefix(9)
    document = json.loads(value[5:])
    jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER).validate(document)
    return document


def test_json_schema_values_validate_against_their_schema_and_keep_every_digit():
    columns = column_types(PG_DESCRIPTION)
    schema = json_schema(columns, "orders", None)
    jsonschema.Draft7Validator.check_schema(schema)
    values = JsonSchemaEncoder(columns, None, 9).encode_batch(ROWS)
    first, second, third = (read_json(value, schema) for value in values)
    assert first == {
        "id": 1,
        "amount": "1234567890123456.7891",
        "total": "12345678901234567890.123456789",
        "ts": "2024-02-29T23:59:59.999999",
        "tz": "2024-01-02T03:04:05.000006+00:00",
        "day": "1969-12-31",
        "note": "héllo",
        "flag": True,
        "raw": "AP8=",
        "ratio": 0.1,
        "small": -7,
        "ref": "12345678-1234-5678-1234-567812345678",
    }
    assert (second["amount"], second["total"], second["ratio"]) == ("-0.0001", "NaN", "NaN")
    assert third["ts"] == "1900-01-01T00:00:00"


def test_a_json_schema_envelope_wraps_the_row_with_the_metadata():
    columns = column_types([pg("id", 20), pg("amount", 1700, 6, 2)])
    schema = json_schema(columns, "orders", METADATA)
    [value] = JsonSchemaEncoder(columns, METADATA, 9).encode_batch([(7, "-1234.50")])
    assert read_json(value, schema) == {"data": {"id": 7, "amount": "-1234.50"}, "metadata": METADATA}


def test_a_nan_in_a_fixed_scale_json_decimal_fails_naming_row_and_column():
    columns = column_types([pg("id", 20), pg("amount", 1700, 6, 2)])
    with pytest.raises(RowEncodingError, match="row 3: column 'amount': NaN is not a number a decimal"):
        JsonSchemaEncoder(columns, None, 9).encode_batch([(1, "1.00"), (2, "NaN")], 2)


def test_the_changed_columns_are_the_ones_added_removed_or_retyped():
    old = avro_schema(column_types([pg("id", 20), pg("note", 25), pg("gone", 16)]), "t", None)
    new = avro_schema(column_types([pg("id", 20), pg("note", 20), pg("added", 16)]), "t", None)
    assert changed_columns(new, old) == ["note", "added", "gone"]
    old_json = json_schema(column_types([pg("id", 20), pg("note", 25)]), "t", METADATA)
    new_json = json_schema(column_types([pg("id", 20), pg("note", 20)]), "t", METADATA)
    assert changed_columns(new_json, old_json) == ["note"]


@pytest.mark.parametrize(
    ("host", "schema", "port", "url"),
    [
        ("http://registry:8081/", None, None, "http://registry:8081"),
        ("registry", "https", 8443, "https://registry:8443"),
        ("registry", None, None, "http://registry"),
    ],
)
def test_the_registry_url_comes_from_the_host_or_from_scheme_host_and_port(host, schema, port, url):
    assert registry_url(host, schema, port) == url


def test_a_registry_nobody_answers_is_a_retryable_error_naming_the_subject():
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    nobody = SchemaRegistryClient({"url": f"http://127.0.0.1:{port}", "max.retries": 0})
    schema = avro_schema(column_types([pg("id", 20)]), "orders", None)
    with pytest.raises(SchemaRegistryUnavailableError, match="unreachable for subject orders-value") as raised:
        register(nobody, "orders-value", schema, "AVRO")
    assert not isinstance(raised.value, AirflowFailException)


def test_a_column_the_driver_declares_not_null_is_written_without_a_union():
    columns = column_types(
        [
            ("ID", oracledb.DB_TYPE_NUMBER, None, None, 9, 0, False),
            ("PRICE", oracledb.DB_TYPE_NUMBER, None, None, 12, 2, True),
            ("CREATED", oracledb.DB_TYPE_TIMESTAMP, None, None, None, None, False),
        ]
    )
    schema = avro_schema(columns, "t", None)
    encoder = AvroEncoder(columns, schema, None, 3)
    row = (7, Decimal("-0.5"), dt.datetime(2001, 2, 3, 4, 5, 6, 7))
    [value] = encoder.encode_batch([row])
    assert read_avro(value, schema)[1] == {"ID": 7, "PRICE": Decimal("-0.50"), "CREATED": row[2]}
    with pytest.raises(RowEncodingError, match="row 1: column 'ID': NULL in a column the driver declares NOT NULL"):
        encoder.encode_batch([(None, None, row[2])])


def test_the_hook_reads_url_basic_auth_and_tls_from_the_connection_and_never_shows_the_password(monkeypatch):
    connection = {
        "conn_type": "http",
        "host": "registry.example",
        "schema": "https",
        "port": 8443,
        "login": "pstt",
        "password": "s3cret-pw",
        "extra": {"ssl.ca.location": "/etc/ssl/registry-ca.pem"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_PSTT_REGISTRY_UNIT", json.dumps(connection))
    assert SchemaRegistryHook("pstt_registry_unit").client_config() == {
        "url": "https://registry.example:8443",
        "basic.auth.user.info": "pstt:s3cret-pw",
        "ssl.ca.location": "/etc/ssl/registry-ca.pem",
    }
    monkeypatch.setenv("AIRFLOW_CONN_PSTT_REGISTRY_UNIT", json.dumps({**connection, "extra": {"no.such": 1}}))
    with pytest.raises(SchemaRegistryRejectedError, match=r"Unrecognized properties: no\.such") as refused:
        SchemaRegistryHook("pstt_registry_unit").get_client()
    assert "s3cret-pw" not in str(refused.value)

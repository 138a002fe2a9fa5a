"""
A result's value schema, derived from its cursor's description: Avro for ``value_format='avro'``, JSON Schema
(draft-07) for ``json_schema``.

Each column becomes a ``ColumnType`` first, its ``kind`` the one fact both schemas and both encoders read:

================================  ====================  ==========================================  ==================
column (PostgreSQL / Oracle)      kind                  Avro                                        JSON Schema
================================  ====================  ==========================================  ==================
boolean / BOOLEAN                 boolean               boolean                                     boolean
smallint, integer / NUMBER(p<=9)  int                   int                                         integer
bigint, oid / NUMBER(p<=18)       long                  long                                        integer
real, double / BINARY_FLOAT|DBL   double                double                                      number, or the
                                                                                                    text NaN/Infinity
numeric(p,s) / NUMBER(p,s)        decimal               bytes, logicalType decimal (p, s)           decimal string
numeric, NUMBER (no precision)    decimal_text          string: the number's exact text             string
text, varchar, char / VARCHAR2..  string                string                                      string
uuid                              uuid                  string, logicalType uuid                    string, uuid
bytea / RAW, BLOB                 bytes                 bytes                                       base64 string
date                              date                  int, logicalType date                       string, date
timestamp / DATE, TIMESTAMP       local_timestamp       long, logicalType local-timestamp-micros    string, local
timestamptz                       timestamp             long, logicalType timestamp-micros          string, date-time
time                              time                  long, logicalType time-micros               string
================================  ====================  ==========================================  ==================

A ``timestamp`` has no zone and Avro's ``local-timestamp-micros`` is exactly that, read back as a naive datetime;
a ``timestamptz`` is an instant, ``timestamp-micros`` (UTC), read back as an aware datetime equal to it. Oracle's
DATE holds a time of day, so it is a local timestamp, not a date. A numeric without a declared precision (what
``SUM(amount)`` returns in PostgreSQL) has no fixed scale, so no Avro decimal can hold it exactly: it goes as its
text, which is exact, rather than being refused. Anything else (json, interval, arrays, timetz, Oracle's zoned
timestamps) is refused naming the column and its type, with the cast to write in the query.

Drivers rarely know whether a result column can be NULL (psycopg never says; oracledb does): every column is
nullable (an Avro union with null first and default null) unless the description says ``null_ok`` False.

JSON decimals are strings, not numbers: confluent-kafka's ``JSONDeserializer`` parses with orjson (or the stdlib),
which turns a JSON number with a fraction into a float, so ``12345678901234567.8901`` would not come back; the
string does, digit for digit, and ``Decimal(text)`` is the exact value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pstt_provider.exceptions import UnsupportedColumnTypeError

PG_TYPES: dict[int, str] = {
    16: "boolean",
    17: "bytes",
    18: "string",
    19: "string",
    20: "long",
    21: "int",
    23: "int",
    25: "string",
    26: "long",
    700: "double",
    701: "double",
    1042: "string",
    1043: "string",
    1082: "date",
    1083: "time",
    1114: "local_timestamp",
    1184: "timestamp",
    1700: "decimal",
    2950: "uuid",
}
"""PostgreSQL type OIDs (what psycopg puts in ``description[i][1]``) -> kind."""
PG_TYPE_NAMES: dict[int, str] = {114: "json", 3802: "jsonb", 1186: "interval", 1266: "timetz", 1560: "bit"}
"""Names of the common types refused, for the message; other OIDs are named by number."""
MAX_INT_PRECISION = 9
MAX_LONG_PRECISION = 18
ORACLE_NO_SCALE = -127
"""What oracledb reports as the scale of a NUMBER declared without precision, and of FLOAT."""

_AVRO_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class ColumnType:
    name: str
    kind: str
    nullable: bool = True
    precision: int = 0
    scale: int = 0


def _refuse(name: str, type_name: str) -> UnsupportedColumnTypeError:
    return UnsupportedColumnTypeError(
        f"column {name!r} is of type {type_name}, which the value format has no exact type for: cast it in the "
        f"query (e.g. {name}::text in PostgreSQL, TO_CHAR({name}) in Oracle) and alias it to keep the name"
    )


def _postgres_kind(name: str, oid: int, precision: int | None, scale: int | None) -> tuple[str, int, int]:
    kind = PG_TYPES.get(oid)
    if kind is None:
        raise _refuse(name, PG_TYPE_NAMES.get(oid, f"PostgreSQL OID {oid}"))
    if kind == "decimal":
        if not precision:
            return "decimal_text", 0, 0
        return kind, precision, scale or 0
    return kind, 0, 0


def _oracle_kind(name: str, type_code: Any, precision: int | None, scale: int | None) -> tuple[str, int, int]:
    import oracledb

    kinds = {
        oracledb.DB_TYPE_BOOLEAN: "boolean",
        oracledb.DB_TYPE_BINARY_FLOAT: "double",
        oracledb.DB_TYPE_BINARY_DOUBLE: "double",
        oracledb.DB_TYPE_VARCHAR: "string",
        oracledb.DB_TYPE_NVARCHAR: "string",
        oracledb.DB_TYPE_CHAR: "string",
        oracledb.DB_TYPE_NCHAR: "string",
        oracledb.DB_TYPE_LONG: "string",
        oracledb.DB_TYPE_LONG_NVARCHAR: "string",
        oracledb.DB_TYPE_CLOB: "string",
        oracledb.DB_TYPE_NCLOB: "string",
        oracledb.DB_TYPE_RAW: "bytes",
        oracledb.DB_TYPE_LONG_RAW: "bytes",
        oracledb.DB_TYPE_BLOB: "bytes",
        oracledb.DB_TYPE_DATE: "local_timestamp",
        oracledb.DB_TYPE_TIMESTAMP: "local_timestamp",
    }
    if type_code is oracledb.DB_TYPE_NUMBER:
        if not precision or scale is None or scale < 0:
            return "decimal_text", 0, 0
        if scale == 0 and precision <= MAX_INT_PRECISION:
            return "int", 0, 0
        if scale == 0 and precision <= MAX_LONG_PRECISION:
            return "long", 0, 0
        return "decimal", precision, scale
    kind = kinds.get(type_code)
    if kind is None:
        raise _refuse(name, getattr(type_code, "name", str(type_code)))
    return kind, 0, 0


def column_types(description: Sequence[Sequence[Any]]) -> list[ColumnType]:
    """
    The kind of each column of a DB-API ``description``. The type code says which database it is: psycopg gives
    PostgreSQL OIDs (ints), python-oracledb its ``DbType`` objects; a driver that declares no types (SQLite) or
    types of another database is refused, naming the first column.
    """
    types = []
    for column in description:
        name, type_code, _, _, precision, scale, null_ok = (*column, *[None] * 7)[:7]
        if isinstance(type_code, int) and not isinstance(type_code, bool):
            kind, precision, scale = _postgres_kind(name, type_code, precision, scale)
        elif type(type_code).__module__.startswith("oracledb"):
            kind, precision, scale = _oracle_kind(name, type_code, precision, scale)
        else:
            raise UnsupportedColumnTypeError(
                f"column {name!r}: the driver declares no type this value format knows ({type_code!r}); avro and "
                "json_schema derive the schema from PostgreSQL (psycopg) and Oracle (python-oracledb) column types"
            )
        types.append(ColumnType(name, kind, null_ok is not False, precision, scale))
    return types


# ------------------------------------------------------------------ Avro


_AVRO_TYPES: dict[str, Any] = {
    "boolean": "boolean",
    "int": "int",
    "long": "long",
    "double": "double",
    "decimal_text": "string",
    "string": "string",
    "uuid": {"type": "string", "logicalType": "uuid"},
    "bytes": "bytes",
    "date": {"type": "int", "logicalType": "date"},
    "local_timestamp": {"type": "long", "logicalType": "local-timestamp-micros"},
    "timestamp": {"type": "long", "logicalType": "timestamp-micros"},
    "time": {"type": "long", "logicalType": "time-micros"},
}


def avro_name(text: str) -> str:
    """``text`` (a topic name) as an Avro name: every character outside ``[A-Za-z0-9_]`` becomes ``_``."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", text)
    return name if _AVRO_NAME.fullmatch(name) else f"_{name}"


def _avro_type(column: ColumnType) -> Any:
    if column.kind == "decimal":
        return {"type": "bytes", "logicalType": "decimal", "precision": column.precision, "scale": column.scale}
    return _AVRO_TYPES[column.kind]


def avro_branch(column: ColumnType) -> str:
    """The name of the non-null branch of a nullable column's union: its Avro type's, logical or not."""
    avro_type = _avro_type(column)
    return avro_type if isinstance(avro_type, str) else avro_type["type"]


def _avro_field(column: ColumnType) -> dict[str, Any]:
    if not _AVRO_NAME.fullmatch(column.name):
        raise UnsupportedColumnTypeError(
            f"column {column.name!r} is not a valid Avro field name (letters, digits and _, not starting with a "
            "digit): alias it in the query"
        )
    if column.nullable:
        return {"name": column.name, "type": ["null", _avro_type(column)], "default": None}
    return {"name": column.name, "type": _avro_type(column)}


def avro_schema(columns: Sequence[ColumnType], topic: str, metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """
    The record of a row, named after ``topic``; with ``metadata`` (the envelope's), a record of two fields, ``data``
    (the row's record, ``<name>_data``) and ``metadata`` (``<name>_metadata``, one string field per entry).
    """
    name = avro_name(topic)
    if metadata is None:
        return {"type": "record", "name": name, "fields": [_avro_field(column) for column in columns]}
    row = {"type": "record", "name": f"{name}_data", "fields": [_avro_field(column) for column in columns]}
    meta = {
        "type": "record",
        "name": f"{name}_metadata",
        "fields": [_avro_field(ColumnType(key, "string", nullable=False)) for key in metadata],
    }
    return {
        "type": "record",
        "name": name,
        "fields": [{"name": "data", "type": row}, {"name": "metadata", "type": meta}],
    }


# ------------------------------------------------------------------ JSON Schema

JSON_SCHEMA_DRAFT = "http://json-schema.org/draft-07/schema#"
_JSON_TYPES: dict[str, dict[str, Any]] = {
    "boolean": {"type": "boolean"},
    "int": {"type": "integer"},
    "long": {"type": "integer"},
    "decimal_text": {"type": "string"},
    "string": {"type": "string"},
    "uuid": {"type": "string", "format": "uuid"},
    "bytes": {"type": "string", "contentEncoding": "base64"},
    "date": {"type": "string", "format": "date"},
    "local_timestamp": {
        "type": "string",
        "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?$",
        "description": "a date and time of day without offset (SQL timestamp without time zone)",
    },
    "timestamp": {"type": "string", "format": "date-time"},
    "time": {"type": "string", "pattern": r"^\d\d:\d\d:\d\d(\.\d{1,6})?$"},
}
_NON_FINITE_TEXT = {"enum": ["NaN", "Infinity", "-Infinity"]}


def _json_property(column: ColumnType) -> dict[str, Any]:
    if column.kind == "decimal":
        digits = column.precision - column.scale
        fraction = rf"(\.\d{{1,{column.scale}}})?" if column.scale else ""
        schema: dict[str, Any] = {
            "type": "string",
            "pattern": rf"^-?\d{{1,{max(digits, 1)}}}{fraction}$",
            "description": f"numeric({column.precision},{column.scale}) as its exact decimal text",
        }
    elif column.kind == "double":
        # JSON has no NaN or Infinity: they go as the text numeric uses (pstt_provider.serialization).
        options = [{"type": "number"}, _NON_FINITE_TEXT] + ([{"type": "null"}] if column.nullable else [])
        return {"anyOf": options}
    else:
        schema = dict(_JSON_TYPES[column.kind])
    if column.nullable:
        schema["type"] = [schema["type"], "null"]
    return schema


def _json_object(properties: Mapping[str, dict[str, Any]], required: Sequence[str]) -> dict[str, Any]:
    return {"type": "object", "properties": dict(properties), "required": list(required), "additionalProperties": False}


def json_schema(columns: Sequence[ColumnType], topic: str, metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """
    A draft-07 object schema of a row (titled ``topic``), or of the envelope ``{"data": row, "metadata": {...}}``.
    Every column is a property; the non-nullable ones are also required. Closed (``additionalProperties``
    false), so a later version adding an optional column stays backward compatible.
    """
    row = _json_object(
        {column.name: _json_property(column) for column in columns},
        [column.name for column in columns if not column.nullable],
    )
    if metadata is not None:
        meta = _json_object({key: {"type": "string"} for key in metadata}, list(metadata))
        row = _json_object({"data": row, "metadata": meta}, ["data", "metadata"])
    return {"$schema": JSON_SCHEMA_DRAFT, "title": topic, **row}


def changed_columns(new: Mapping[str, Any], old: Mapping[str, Any]) -> list[str]:
    """
    The fields (columns) whose type differs between two schemas of the same format, or that one of them lacks:
    Avro records (``fields``) and JSON Schema objects (``properties``), inside an envelope's ``data`` too.
    """
    new_fields, old_fields = _fields(new), _fields(old)
    return [
        name
        for name in [*new_fields, *(name for name in old_fields if name not in new_fields)]
        if new_fields.get(name) != old_fields.get(name)
    ]


def _fields(schema: Mapping[str, Any]) -> dict[str, Any]:
    if "fields" in schema:
        fields = {field["name"]: field["type"] for field in schema["fields"]}
        data = fields.get("data")
        return _fields(data) if isinstance(data, dict) and "fields" in data and "metadata" in fields else fields
    properties = dict(schema.get("properties", {}))
    if set(properties) == {"data", "metadata"} and "properties" in properties["data"]:
        return dict(properties["data"]["properties"])
    return properties

"""
How a row becomes a message value: ``json`` (the project's own encoding, ``pstt_provider.serialization``), or ``avro``
and ``json_schema`` in the Confluent wire format with a schema registered in a Schema Registry.

A format makes one encoder per result, once its columns are known and before the first row is sent, so whatever the
format must settle per run (a schema, its registration) fails the run before anything is produced.

``avro`` and ``json_schema`` derive the schema from the cursor's description (``pstt_provider.value_schemas``) and
register it under ``<topic>-value`` (TopicNameStrategy, ``pstt_provider.schema_registration``). Each value is the
Confluent wire format: byte 0, the schema id as 4 bytes big-endian, then the Avro binary (fastavro, schemaless) or
the JSON text of the row or its envelope.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, Protocol, get_args

import orjson
from fastavro import parse_schema, schemaless_writer
from fastavro.validation import validate

from pstt_provider.exceptions import RowEncodingError
from pstt_provider.schema_registration import register
from pstt_provider.serialization import RowEncoder, finite_or_text, non_finite_finder
from pstt_provider.streaming import ResultStream
from pstt_provider.value_schemas import ColumnType, avro_branch, avro_schema, column_types, json_schema

ValueFormatName = Literal["json", "avro", "json_schema"]
VALUE_FORMATS: tuple[str, ...] = get_args(ValueFormatName)
MAGIC_BYTE = 0


class ValueEncoder(Protocol):
    def encode_batch(self, rows: Sequence[Sequence[Any]], first_row_number: int = 1) -> list[bytes]:
        """The values of a fetch's rows; an unencodable value raises ``RowEncodingError`` naming row and column."""
        ...


class ValueFormat(Protocol):
    def encoder(self, result: ResultStream, metadata: Mapping[str, Any] | None) -> ValueEncoder:
        """The encoder for ``result``'s rows, each wrapped with ``metadata`` (the envelope's) unless that is None."""
        ...


@dataclass(frozen=True)
class JsonValues:
    """The row (or its envelope) as a JSON object."""

    def encoder(self, result: ResultStream, metadata: Mapping[str, Any] | None) -> ValueEncoder:
        return RowEncoder(result.columns, metadata, number_text=result.number_text, float_columns=result.float_columns)


def wire_prefix(schema_id: int) -> bytes:
    """The Confluent wire format's header: the magic byte and the schema id (4 bytes, big-endian)."""
    return struct.pack(">bI", MAGIC_BYTE, schema_id)


@dataclass(frozen=True)
class RegistryValues:
    """``avro`` or ``json_schema`` values: the schema derived from the result, registered in ``schema_registry``."""

    name: Literal["avro", "json_schema"]
    schema_registry: str
    topic: str

    def encoder(self, result: ResultStream, metadata: Mapping[str, Any] | None) -> ValueEncoder:
        from pstt_provider.hooks.schema_registry import SchemaRegistryHook

        columns = column_types(result.cursor.description)
        client = SchemaRegistryHook(self.schema_registry).get_client()
        subject = f"{self.topic}-value"
        if self.name == "avro":
            schema = avro_schema(columns, self.topic, metadata)
            schema_id = register(client, subject, schema, "AVRO")
            return AvroEncoder(columns, result.number_text, schema, metadata, schema_id)
        schema_id = register(client, subject, json_schema(columns, self.topic, metadata), "JSON")
        return JsonSchemaEncoder(columns, result.number_text, metadata, schema_id)


def value_format(name: ValueFormatName, *, schema_registry: str | None, topic: str) -> ValueFormat:
    """
    The format ``name``; ``schema_registry`` is the Airflow connection of the registry the ``avro`` and
    ``json_schema`` formats register ``topic``'s value schema in.
    """
    if name == "json":
        return JsonValues()
    if schema_registry is None:
        raise ValueError(f"value_format {name} needs schema_registry (the Airflow connection of a Schema Registry)")
    return RegistryValues(name, schema_registry, topic)


# ------------------------------------------------------------------ encoders


class _NotANumber(ValueError):
    """A NaN or infinite numeric in a column that is a decimal of fixed scale."""


def _unscaled(scale: int) -> Callable[[Any], Any]:
    """
    A decimal column's value as Avro wants it: PostgreSQL's text (exactly ``scale`` digits after the point, the
    form a numeric(p,s) always has) as the two's-complement bytes of the unscaled integer, skipping ``Decimal``;
    a driver's ``Decimal`` as it is (fastavro scales it).
    """

    def convert(value: Any) -> Any:
        if type(value) is not str:
            if value is not None and not value.is_finite():
                raise _NotANumber(str(value))
            return value
        if value[-1] in "Ny":
            raise _NotANumber(value)
        whole, _, fraction = value.partition(".")
        number = int(whole + fraction.ljust(scale, "0")) if len(fraction) <= scale else Decimal(value)
        if type(number) is not int:
            return number  # more digits than the scale: fastavro's own check names the problem
        return number.to_bytes((number.bit_length() + 8) // 8, "big", signed=True)

    return convert


_EPOCH = dt.datetime(1970, 1, 1)
_EPOCH_UTC = _EPOCH.replace(tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)
_EPOCH_ORDINAL = _EPOCH.toordinal()
_AS_AVRO_INT: dict[str, Callable[[Any], Any]] = {
    "local_timestamp": lambda value: value if value is None else (value - _EPOCH) // _MICROSECOND,
    "timestamp": lambda value: value if value is None else (value - _EPOCH_UTC) // _MICROSECOND,
    "date": lambda value: value if value is None else value.toordinal() - _EPOCH_ORDINAL,
}
"""
Dates and timestamps as the ints Avro holds (days, microseconds since the epoch), computed in line: fastavro's
own conversion of a datetime inside a union costs more than the rest of the row's fields together.
"""


def _decimal_text(value: Any) -> Any:
    """A numeric of no declared scale as its exact text (a driver's ``Decimal`` without exponent)."""
    return value if value is None or type(value) is str else format(value, "f")


def _compile_row(
    columns: Sequence[ColumnType],
    converters: Mapping[int, Callable[[Any], Any]],
    branches: Mapping[int, str] | None = None,
) -> Callable:
    """
    A function from a row tuple to the dict of its columns, ``converters`` applied in line: one frame per row.

    A position in ``branches`` holds a value of an Avro union ``["null", T]``: fastavro's tuple notation
    ``(T, value)`` names the branch, which spares it trying each branch on the value (half its cost per row).
    """
    items = []
    namespace: dict[str, Any] = {"__builtins__": {}}
    for position, column in enumerate(columns):
        branch = (branches or {}).get(position)
        value = "v" if branch else f"r[{position}]"
        if position in converters:
            namespace[f"c{position}"] = converters[position]
            value = f"c{position}({value})"
        if branch:
            value = f"(None if (v := r[{position}]) is None else ({branch!r}, {value}))"
        items.append(f"{column.name!r}: {value}")
    return eval(f"lambda r: {{{', '.join(items)}}}", namespace)  # noqa: S307 (names enter only through repr)


class AvroEncoder:
    """
    Rows as Avro binary (fastavro's schemaless writer, the schema parsed once) behind the wire header.

    With an envelope, the record is ``data`` then ``metadata`` and Avro writes a record as its fields one after the
    other, so a value is the row's record followed by the metadata record, encoded once per run.

    fastavro wants a dict per record, so a row costs one dict display (``_compile_row``) and one writer call.
    Measured on eight columns (bigint, numeric(20,4), timestamp, timestamptz, date, text, boolean, bytea): about
    10-13 µs per row, against 1.8 µs for ``json``; half of it was fastavro trying the branches of each nullable
    column's union and converting datetimes, both now settled in the dict display instead.
    """

    def __init__(
        self,
        columns: Sequence[ColumnType],
        number_text: frozenset[int],
        schema: Mapping[str, Any],
        metadata: Mapping[str, Any] | None,
        schema_id: int,
    ) -> None:
        self.columns = tuple(columns)
        row_schema = schema if metadata is None else schema["fields"][0]["type"]
        self._schema = parse_schema(dict(row_schema))
        self._field_types = [field["type"] for field in row_schema["fields"]]
        self._suffix = b""
        if metadata is not None:
            buffer = io.BytesIO()
            schemaless_writer(buffer, parse_schema(dict(schema["fields"][1]["type"])), dict(metadata))
            self._suffix = buffer.getvalue()
        self._prefix = wire_prefix(schema_id)
        converters: dict[int, Callable[[Any], Any]] = {}
        for position, column in enumerate(self.columns):
            if column.kind == "decimal":
                converters[position] = _unscaled(column.scale)
            elif column.kind == "decimal_text" and position not in number_text:
                converters[position] = _decimal_text
            elif column.kind in _AS_AVRO_INT:
                converters[position] = _AS_AVRO_INT[column.kind]
        self._converters = converters
        branches = {position: avro_branch(column) for position, column in enumerate(self.columns) if column.nullable}
        self._record = _compile_row(self.columns, converters, branches)

    def encode_batch(self, rows: Sequence[Sequence[Any]], first_row_number: int = 1) -> list[bytes]:
        record, schema, prefix, suffix = self._record, self._schema, self._prefix, self._suffix
        values = []
        number = first_row_number
        try:
            for number, row in enumerate(rows, first_row_number):  # noqa: B007 (the failing row's number)
                buffer = io.BytesIO()
                buffer.write(prefix)
                schemaless_writer(buffer, schema, record(row))
                buffer.write(suffix)
                values.append(buffer.getvalue())
        except (ValueError, TypeError, AttributeError, OverflowError) as err:
            raise RowEncodingError(f"row {number}: {self._explain(rows[number - first_row_number], err)}") from err
        return values

    def _explain(self, row: Sequence[Any], err: Exception) -> str:
        for position, (column, value) in enumerate(zip(self.columns, row, strict=True)):
            field_type = self._field_types[position]
            try:
                converted = self._converters[position](value) if position in self._converters else value
                fits = validate(converted, field_type, raise_errors=False)
            except _NotANumber:
                return f"column {column.name!r}: {value} is not a number an Avro decimal can hold"
            except (ValueError, TypeError, AttributeError, OverflowError):
                fits = False
            if not fits:
                return (
                    f"column {column.name!r}: cannot encode the {type(value).__name__} {value!r} as Avro {field_type}"
                )
        return f"cannot encode the row as Avro: {err}"


def _json_default(value: Any) -> Any:
    """What orjson does not write itself: a driver's ``Decimal`` as its text, binary as base64."""
    if isinstance(value, Decimal):
        return format(value, "f") if value.is_finite() else str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"cannot encode a {type(value).__name__} column value as JSON")


def _finite_decimal(value: Any) -> Any:
    """A fixed-scale decimal's value; NaN and Infinity, which its schema's decimal text cannot be, are refused."""
    if value is None or (value[-1] not in "Ny" if type(value) is str else value.is_finite()):
        return value
    raise _NotANumber(str(value))


class JsonSchemaEncoder:
    """
    Rows as the JSON objects their JSON Schema describes (orjson, one call per row), behind the wire header.

    Values are not validated per row: they come from the same description the schema was derived from, and
    validating costs more than encoding; confluent-kafka's ``JSONDeserializer`` validates on the reading side.
    Non-finite floats go as the text ``NaN``/``Infinity``/``-Infinity`` the schema allows, found per batch as the
    ``json`` format finds them.
    """

    def __init__(
        self,
        columns: Sequence[ColumnType],
        number_text: frozenset[int],
        metadata: Mapping[str, Any] | None,
        schema_id: int,
    ) -> None:
        self.columns = tuple(columns)
        converters = {
            position: _finite_decimal for position, column in enumerate(self.columns) if column.kind == "decimal"
        }
        record = _compile_row(self.columns, converters)
        prefix = wire_prefix(schema_id)
        head, tail = prefix, b""
        if metadata is not None:
            head, tail = prefix + b'{"data":', b',"metadata":' + orjson.dumps(dict(metadata)) + b"}"
        dumps, join = orjson.dumps, b"".join
        self._encode: Callable[[Sequence[Any]], bytes] = lambda row: join(
            (head, dumps(record(row), default=_json_default), tail)
        )
        self._non_finite_rows = non_finite_finder(
            [position for position, column in enumerate(self.columns) if column.kind == "double"]
        )

    def encode_batch(self, rows: Sequence[Sequence[Any]], first_row_number: int = 1) -> list[bytes]:
        encode = self._encode
        if self._non_finite_rows is not None:
            rows = list(rows)
            for index in self._non_finite_rows(rows):
                rows[index] = [*map(finite_or_text, rows[index])]
        try:
            return [encode(row) for row in rows]
        except (_NotANumber, orjson.JSONEncodeError, TypeError) as err:
            for number, row in enumerate(rows, first_row_number):
                try:
                    encode(row)
                except (_NotANumber, orjson.JSONEncodeError, TypeError):
                    raise RowEncodingError(f"row {number}: {self._explain(row)}") from err
            raise

    def _explain(self, row: Sequence[Any]) -> str:
        for column, value in zip(self.columns, row, strict=True):
            try:
                if column.kind == "decimal":
                    _finite_decimal(value)
                orjson.dumps(value, default=_json_default)
            except _NotANumber:
                kind = f"decimal({column.precision},{column.scale})"
                return f"column {column.name!r}: {value} is not a number a {kind} can be"
            except (orjson.JSONEncodeError, TypeError):
                return f"column {column.name!r}: cannot encode a {type(value).__name__} value as JSON"
        return "cannot encode the row as JSON"

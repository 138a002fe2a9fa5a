"""
How a row becomes a message value: ``json`` (the project's own encoding, ``pstt_provider.serialization``), or ``avro``
and ``json_schema`` in the Confluent wire format with a schema registered in a Schema Registry.

A format makes one encoder per result, once its columns are known and before the first row is sent, so whatever the
format must settle per run (a schema, its registration) fails the run before anything is produced.

``avro`` and ``json_schema`` derive the schema from the cursor's description (``pstt_provider.value_schemas``) and
register it under ``<topic>-value`` (TopicNameStrategy, ``pstt_provider.schema_registration``). Each value is the
Confluent wire format: byte 0, the schema id as 4 bytes big-endian, then the Avro binary
(``pstt_provider.avro_binary``) or the JSON text of the row or its envelope.
"""

from __future__ import annotations

import base64
import io
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, Protocol, get_args

import orjson
from fastavro import parse_schema, schemaless_writer

from pstt_provider import avro_binary
from pstt_provider.exceptions import RowEncodingError
from pstt_provider.schema_registration import register
from pstt_provider.serialization import RowEncoder, finite_or_text, non_finite_finder
from pstt_provider.streaming import ResultStream
from pstt_provider.value_schemas import ColumnType, avro_schema, column_types, json_schema

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
            return AvroEncoder(columns, schema, metadata, schema_id)
        schema_id = register(client, subject, json_schema(columns, self.topic, metadata), "JSON")
        return JsonSchemaEncoder(columns, metadata, schema_id)


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


def _compile_row(
    columns: Sequence[ColumnType], converters: Mapping[int, Callable[[Any], Any]]
) -> Callable[[Sequence[Any]], dict[str, Any]]:
    """A function from a row tuple to the dict of its columns, ``converters`` applied in line: one frame per row."""
    items = []
    namespace: dict[str, Any] = {"__builtins__": {}}
    for position, column in enumerate(columns):
        value = f"r[{position}]"
        if position in converters:
            namespace[f"c{position}"] = converters[position]
            value = f"c{position}({value})"
        items.append(f"{column.name!r}: {value}")
    return eval(f"lambda r: {{{', '.join(items)}}}", namespace)  # noqa: S307 (names enter only through repr)


class AvroEncoder:
    """
    Rows as Avro binary behind the wire header, through the row function ``avro_binary.compile_row`` makes for these
    columns, which writes what fastavro's writer would at a fraction of its per-call cost.

    With an envelope, the record is ``data`` then ``metadata`` and Avro writes a record as its fields one after the
    other, so a value is the row's record followed by the metadata record, which fastavro encodes once per run.
    """

    def __init__(
        self,
        columns: Sequence[ColumnType],
        schema: Mapping[str, Any],
        metadata: Mapping[str, Any] | None,
        schema_id: int,
    ) -> None:
        self.columns = tuple(columns)
        parse_schema(dict(schema))  # fastavro's own check of what is registered
        suffix = b""
        if metadata is not None:
            buffer = io.BytesIO()
            schemaless_writer(buffer, parse_schema(dict(schema["fields"][1]["type"])), dict(metadata))
            suffix = buffer.getvalue()
        self._encode = avro_binary.compile_row(self.columns, wire_prefix(schema_id), suffix)

    def encode_batch(self, rows: Sequence[Sequence[Any]], first_row_number: int = 1) -> list[bytes]:
        encode = self._encode
        try:
            return [encode(row) for row in rows]
        except (ValueError, TypeError, AttributeError, OverflowError) as err:
            for number, row in enumerate(rows, first_row_number):
                try:
                    encode(row)
                except (ValueError, TypeError, AttributeError, OverflowError):
                    raise RowEncodingError(f"row {number}: {self._explain(row, err)}") from err
            raise

    def _explain(self, row: Sequence[Any], err: Exception) -> str:
        for column, value in zip(self.columns, row, strict=True):
            if value is None:
                if column.nullable:
                    continue
                return f"column {column.name!r}: NULL in a column the driver declares NOT NULL"
            try:
                avro_binary.column_encoder(column)(value)
            except avro_binary.NotANumberError:
                return f"column {column.name!r}: {value} is not a number an Avro decimal can hold"
            except (ValueError, TypeError, AttributeError, OverflowError) as failure:
                return f"column {column.name!r}: cannot encode the {type(value).__name__} {value!r} as Avro: {failure}"
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
    raise avro_binary.NotANumberError(str(value))


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
        except (avro_binary.NotANumberError, orjson.JSONEncodeError, TypeError) as err:
            for number, row in enumerate(rows, first_row_number):
                try:
                    encode(row)
                except (avro_binary.NotANumberError, orjson.JSONEncodeError, TypeError):
                    raise RowEncodingError(f"row {number}: {self._explain(row)}") from err
            raise

    def _explain(self, row: Sequence[Any]) -> str:
        for column, value in zip(self.columns, row, strict=True):
            try:
                if column.kind == "decimal":
                    _finite_decimal(value)
                orjson.dumps(value, default=_json_default)
            except avro_binary.NotANumberError:
                kind = f"decimal({column.precision},{column.scale})"
                return f"column {column.name!r}: {value} is not a number a {kind} can be"
            except (orjson.JSONEncodeError, TypeError):
                return f"column {column.name!r}: cannot encode a {type(value).__name__} value as JSON"
        return "cannot encode the row as JSON"

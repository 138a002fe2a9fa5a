"""
How a row becomes a message value: ``json`` (the project's own encoding, ``pstt_provider.serialization``), or ``avro``
and ``json_schema`` in the Confluent wire format with a schema registered in a Schema Registry.

A format makes one encoder per result, once its columns are known and before the first row is sent, so whatever the
format must settle per run (a schema, its registration) fails the run before anything is produced.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, get_args

from pstt_provider.serialization import RowEncoder
from pstt_provider.streaming import ResultStream

ValueFormatName = Literal["json", "avro", "json_schema"]
VALUE_FORMATS: tuple[str, ...] = get_args(ValueFormatName)


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


def value_format(name: ValueFormatName, *, schema_registry: str | None, topic: str) -> ValueFormat:
    """
    The format ``name``; ``schema_registry`` is the Airflow connection of the registry the ``avro`` and
    ``json_schema`` formats register ``topic``'s value schema in.
    """
    if name == "json":
        return JsonValues()
    raise NotImplementedError(f"value_format {name!r} for {topic} through {schema_registry}")

"""
Avro binary encoding of a result's rows, compiled once per run for its columns.

fastavro's ``schemaless_writer`` spends most of its time per call, not per byte: it takes a dict, resolves each
union, converts each logical type, several times what the bytes cost (docs/performance.md). Avro's binary format is
small (zig-zag varints for int and long, a length then the bytes for string and bytes, the branch index of a union,
8 little-endian bytes for a double), so a row here is one generated function joining each column's bytes: a NULL
is the union's branch 0 (``b"\\x00"``), any other value branch 1 (``b"\\x02"``) then its encoding. fastavro still
parses the schema, writes the envelope's metadata record once per run and names the column of a value that does
not fit; tests check that fastavro reads back every value written here.
"""

from __future__ import annotations

import datetime as dt
import struct
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from pstt_provider.value_schemas import ColumnType

NULL_BRANCH = b"\x00"
VALUE_BRANCH = b"\x02"
_EPOCH = dt.datetime(1970, 1, 1)
_EPOCH_UTC = _EPOCH.replace(tzinfo=dt.UTC)
_EPOCH_ORDINAL = _EPOCH.toordinal()
_MICROSECOND = dt.timedelta(microseconds=1)
_CHUNK = 1 << 14
_CHUNK_2, _CHUNK_3, _CHUNK_4 = _CHUNK**2, _CHUNK**3, _CHUNK**4
_LOW = _CHUNK - 1
_FINAL = [bytes([n]) if n < 0x80 else bytes([(n & 0x7F) | 0x80, n >> 7]) for n in range(_CHUNK)]
"""The varint of every number below 2**14: one or two bytes, the last without the continuation bit."""
_MIDDLE = [bytes([(n & 0x7F) | 0x80, (n >> 7) | 0x80]) for n in range(_CHUNK)]
"""14 bits of a larger number as two varint bytes, both with the continuation bit: more bytes follow."""
_pack_double = struct.Struct("<d").pack


class NotANumberError(ValueError):
    """A NaN or infinite numeric where the schema has a decimal of fixed scale."""


def varint(n: int) -> bytes:
    """Avro's unsigned varint of ``n`` (>= 0), 14 bits per table lookup, unrolled up to 56 bits (timestamps)."""
    if n < _CHUNK:
        return _FINAL[n]
    if n < _CHUNK_2:
        return _MIDDLE[n & _LOW] + _FINAL[n >> 14]
    if n < _CHUNK_3:
        return _MIDDLE[n & _LOW] + _MIDDLE[(n >> 14) & _LOW] + _FINAL[n >> 28]
    if n < _CHUNK_4:
        return _MIDDLE[n & _LOW] + _MIDDLE[(n >> 14) & _LOW] + _MIDDLE[(n >> 28) & _LOW] + _FINAL[n >> 42]
    parts = []
    while n >= _CHUNK:
        parts.append(_MIDDLE[n & _LOW])
        n >>= 14
    parts.append(_FINAL[n])
    return b"".join(parts)


def long_bytes(value: int) -> bytes:
    """An Avro int or long: zig-zag (0, -1, 1, -2 ... as 0, 1, 2, 3 ...), then a varint."""
    return varint(value << 1 if value >= 0 else ((-value) << 1) - 1)


def _text(value: str) -> bytes:
    data = value.encode()
    return long_bytes(len(data)) + data


def _binary(value: Any) -> bytes:
    data = bytes(value)
    return long_bytes(len(data)) + data


def _decimal_text(value: Any) -> bytes:
    """A numeric of no declared scale as its exact text: PostgreSQL's own text, a driver's ``Decimal`` written out."""
    return _text(value if type(value) is str else format(value, "f"))


def _decimal(scale: int) -> Callable[[Any], bytes]:
    """
    A decimal of fixed ``scale``: the two's-complement bytes of the unscaled integer. PostgreSQL's text has exactly
    the column's scale, so its digits are the integer; a ``Decimal`` (Oracle) is scaled, and one with more
    fraction digits than the scale is refused, as fastavro refuses it.
    """

    def encode(value: Any) -> bytes:
        if type(value) is str:
            whole, _, fraction = value.partition(".")
            if len(fraction) == scale and value[-1] not in "Ny":  # numeric(p,s) text: always s digits after "."
                number = int(whole + fraction)
            elif value[-1] in "Ny":
                raise NotANumberError(value)
            elif len(fraction) > scale:
                raise ValueError(f"{value} has more than {scale} digits after the point")
            else:
                number = int(whole + fraction.ljust(scale, "0"))
        else:
            if not value.is_finite():
                raise NotANumberError(str(value))
            sign, digits, exponent = value.as_tuple()  # integer arithmetic: no context rounds 38 digits
            if -exponent > scale:
                raise ValueError(f"{value} has more than {scale} digits after the point")
            number = int("".join(map(str, digits)) or "0") * 10 ** (scale + exponent) * (-1 if sign else 1)
        return _binary(number.to_bytes((number.bit_length() + 8) >> 3, "big", signed=True))

    return encode


def _time_micros(value: dt.time) -> int:
    return ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000 + value.microsecond


_ENCODERS: dict[str, Callable[[Any], bytes]] = {
    "boolean": lambda value: b"\x01" if value else b"\x00",
    "int": long_bytes,
    "long": long_bytes,
    "double": _pack_double,
    "decimal_text": _decimal_text,
    "string": _text,
    "uuid": lambda value: _text(str(value) if isinstance(value, uuid.UUID) else value),
    "bytes": _binary,
    "date": lambda value: long_bytes(value.toordinal() - _EPOCH_ORDINAL),
    "local_timestamp": lambda value: long_bytes((value - _EPOCH) // _MICROSECOND),
    "timestamp": lambda value: long_bytes((value - _EPOCH_UTC) // _MICROSECOND),
    "time": lambda value: long_bytes(_time_micros(value)),
}


def column_encoder(column: ColumnType) -> Callable[[Any], bytes]:
    """The bytes of one non-NULL value of ``column``, as its Avro type (``value_schemas._avro_type``) holds it."""
    return _decimal(column.scale) if column.kind == "decimal" else _ENCODERS[column.kind]


def compile_row(columns: Sequence[ColumnType], prefix: bytes, suffix: bytes) -> Callable[[Sequence[Any]], bytes]:
    """
    A function from a row tuple to ``prefix`` + the row's Avro record + ``suffix``, one generated frame per row:
    a nullable column is ``(NULL if (v := r[i]) is None else VALUE + e_i(v))`` in line, so a NULL costs no call.
    Column names never enter the generated source; positions and the encoders are all it holds.
    """
    namespace: dict[str, Any] = {
        "__builtins__": {},
        "join": b"".join,
        "NULL": NULL_BRANCH,
        "VALUE": VALUE_BRANCH,
        "PREFIX": prefix,
        "SUFFIX": suffix,
    }
    parts = ["PREFIX"]
    for position, column in enumerate(columns):
        namespace[f"e{position}"] = column_encoder(column)
        if column.nullable:
            parts.append(f"(NULL if (v := r[{position}]) is None else VALUE + e{position}(v))")
        else:
            parts.append(f"e{position}(r[{position}])")
    parts.append("SUFFIX")
    return eval(f"lambda r: join(({', '.join(parts)},))", namespace)  # noqa: S307 (positions only, no names)

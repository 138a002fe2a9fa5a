"""
pstt's compiled Avro row encoder against fastavro, the reference: for rows of every column kind, NULLs included,
the bytes are exactly what fastavro's ``schemaless_writer`` writes for the same schema, and fastavro reads them back
as the values written.
"""

from __future__ import annotations

import datetime as dt
import io
import uuid
from decimal import Decimal

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from hypothesis import given, settings
from hypothesis import strategies as st

from pstt_provider.avro_binary import NotANumberError, column_encoder, compile_row, long_bytes
from pstt_provider.value_schemas import ColumnType, avro_schema

COLUMNS = [
    ColumnType("flag", "boolean"),
    ColumnType("small", "int"),
    ColumnType("big", "long"),
    ColumnType("ratio", "double"),
    ColumnType("amount", "decimal", precision=20, scale=4),
    ColumnType("total", "decimal_text"),
    ColumnType("note", "string"),
    ColumnType("ident", "uuid"),
    ColumnType("raw", "bytes"),
    ColumnType("day", "date"),
    ColumnType("local", "local_timestamp"),
    ColumnType("instant", "timestamp"),
    ColumnType("clock", "time"),
    ColumnType("code", "string", nullable=False),
]
SCHEMA = avro_schema(COLUMNS, "pstt-traces", None)
PARSED = parse_schema(SCHEMA)

amounts = st.decimals(min_value=Decimal("-9999999999999999.9999"), max_value=Decimal("9999999999999999.9999"), places=4)
VALUES = [
    st.booleans(),
    st.integers(-(2**31), 2**31 - 1),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    amounts,
    st.decimals(allow_nan=False, allow_infinity=False).map(lambda value: format(value, "f")),
    st.text(),
    st.uuids(),
    st.binary(),
    st.dates(),
    st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31)),
    st.datetimes(timezones=st.just(dt.UTC)),
    st.times(),
]
ROWS = st.tuples(*(st.none() | values for values in VALUES), st.text())


def fastavro_bytes(row: tuple) -> bytes:
    record = {column.name: value for column, value in zip(COLUMNS, row, strict=True)}
    record["ident"] = None if record["ident"] is None else str(record["ident"])
    buffer = io.BytesIO()
    schemaless_writer(buffer, PARSED, record)
    return buffer.getvalue()


@settings(max_examples=300, deadline=None)
@given(ROWS)
def test_every_row_is_the_bytes_fastavro_writes_and_reads_back(row: tuple) -> None:
    encoded = compile_row(COLUMNS, b"", b"")(row)

    assert encoded == fastavro_bytes(row)
    back = schemaless_reader(io.BytesIO(encoded), PARSED, None)
    assert back["amount"] == row[4]
    assert back["local"] == row[10]
    assert back["instant"] == row[11]


@pytest.mark.parametrize("value", [0, -1, 1, 63, -64, 64, 8191, 8192, 2**31 - 1, -(2**31), 2**63 - 1, -(2**63)])
def test_a_long_is_zig_zag_then_varint_at_every_length(value: int) -> None:
    buffer = io.BytesIO()
    schemaless_writer(buffer, parse_schema("long"), value)

    assert long_bytes(value) == buffer.getvalue()


def test_postgres_numeric_text_and_a_drivers_decimal_write_the_same_unscaled_integer() -> None:
    encode = column_encoder(ColumnType("amount", "decimal", precision=38, scale=10))

    assert encode("12345678901234567890123456.1234567891") == encode(Decimal("12345678901234567890123456.1234567891"))
    assert encode("-0.5000000000") == encode(Decimal("-0.5"))


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", Decimal("NaN"), Decimal("-Infinity")])
def test_a_non_finite_numeric_is_refused_as_not_a_number(value: object) -> None:
    with pytest.raises(NotANumberError):
        column_encoder(ColumnType("amount", "decimal", precision=10, scale=2))(value)


def test_more_fraction_digits_than_the_scale_are_refused() -> None:
    with pytest.raises(ValueError, match="more than 2 digits after the point"):
        column_encoder(ColumnType("amount", "decimal", precision=10, scale=2))(Decimal("1.005"))


def test_the_prefix_and_suffix_frame_the_record() -> None:
    row = (True, 1, 2, 0.5, Decimal("1.0000"), "3", "x", uuid.UUID(int=1), b"\x00", None, None, None, None, "k")

    assert compile_row(COLUMNS, b"<", b">")(row) == b"<" + fastavro_bytes(row) + b">"

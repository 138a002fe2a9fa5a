"""Positions survive the trip through the state topic as the types the database handed over."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from pstt_provider.positions import PositionError, decode_position, encode_position, parse_value

ROME = dt.timezone(dt.timedelta(hours=1))


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2026, 1, 20, 10, 0, 0, 123456),
        dt.datetime(2026, 1, 20, 10, 0, tzinfo=ROME),
        dt.date(2026, 1, 20),
        2**62,
        Decimal("12345678901234567890.0001"),
        0.5,
        "K0001",
    ],
)
def test_a_value_decodes_to_what_was_encoded(value) -> None:
    (decoded,) = decode_position(encode_position((value,)))
    assert decoded == value
    assert type(decoded) is type(value)


def test_text_given_on_the_command_line_takes_the_stored_values_type() -> None:
    assert parse_value("2026-01-21 00:00", like=dt.datetime(2026, 1, 20)) == dt.datetime(2026, 1, 21)
    assert parse_value("42", like="K0001") == "42"
    assert parse_value("42", like=Decimal("1.5")) == Decimal(42)
    with pytest.raises(PositionError, match="with a time zone offset"):
        parse_value("2026-01-21T00:00", like=dt.datetime(2026, 1, 20, tzinfo=dt.UTC))


def test_text_without_a_stored_value_reads_as_it_spells() -> None:
    assert parse_value("1000") == 1000
    assert parse_value("2026-01-20") == dt.date(2026, 1, 20)
    assert parse_value("2026-01-20T10:00:00+01:00") == dt.datetime(2026, 1, 20, 10, tzinfo=ROME)
    assert parse_value("12.5") == Decimal("12.5")
    assert parse_value("K0001") == "K0001"


def test_a_value_that_cannot_order_rows_is_refused() -> None:
    with pytest.raises(PositionError, match="boolean"):
        encode_position((True,))
    with pytest.raises(PositionError, match="bytes"):
        encode_position((b"x",))

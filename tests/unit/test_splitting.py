"""Ranges of a parallel run: even in the column's values, covering every row once, NULLs and outliers included."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from pstt_provider.dialects.postgres import DIALECT as POSTGRES
from pstt_provider.ordered_read import OrderedReadError, ReadPlan
from pstt_provider.query_file import parse_query_text
from pstt_provider.splitting import SplitRange, bounds_query, split


def bounds(ranges: list[SplitRange]) -> list[tuple]:
    return [(part.lower, part.upper) for part in ranges]


def test_integers_split_evenly_and_the_outer_ranges_are_open() -> None:
    assert bounds(split("id", 1, 1_000_000, 4)) == [
        (None, 250_001),
        (250_001, 500_001),
        (500_001, 750_001),
        (750_001, None),
    ]


def test_dates_timestamps_and_exact_numbers_split_in_their_own_type() -> None:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert bounds(split("ts", start, start + dt.timedelta(hours=4), 2)) == [
        (None, start + dt.timedelta(hours=2)),
        (start + dt.timedelta(hours=2), None),
    ]
    assert bounds(split("day", dt.date(2026, 1, 1), dt.date(2026, 1, 31), 3))[1] == (
        dt.date(2026, 1, 11),
        dt.date(2026, 1, 21),
    )
    assert bounds(split("amount", Decimal("0.00"), Decimal("10.00"), 2)) == [(None, Decimal(5)), (Decimal(5), None)]


def test_fewer_distinct_values_than_partitions_give_fewer_ranges() -> None:
    assert bounds(split("id", 7, 8, 8)) == [(None, 8), (8, None)]
    assert bounds(split("id", 7, 7, 8)) == [(None, None)]
    assert bounds(split("id", None, None, 8)) == [(None, None)]  # no rows: one part reads whatever is there


def test_text_columns_and_out_of_range_partitions_are_refused() -> None:
    with pytest.raises(OrderedReadError, match="holds str values: a split needs numbers, dates or timestamps"):
        split("code", "A", "Z", 4)
    with pytest.raises(OrderedReadError, match=r"parallel\.partitions: must be 2 to 64, not 1"):
        split("id", 1, 10, 1)


def test_a_range_becomes_bind_variables_around_the_query() -> None:
    query = parse_query_text("SELECT id FROM t WHERE kind = :KIND", source="q.sql")
    first, middle = split("id", 1, 300, 3)[:2]
    with_nulls = split("id", 1, 300, 3, nulls=True)[0]

    first_sql = ReadPlan(split=first).apply(query, POSTGRES, ("id",))[0].statement("pyformat").sql
    nulls_sql = ReadPlan(split=with_nulls).apply(query, POSTGRES, ("id",))[0].statement("pyformat").sql
    windowed, binds = ReadPlan(split=middle).apply(query, POSTGRES, ("id",))

    assert first_sql.endswith('WHERE pstt_rows."id" < %(pstt_split_upper)s')  # an index can bound this one
    assert nulls_sql.endswith('WHERE (pstt_rows."id" < %(pstt_split_upper)s OR pstt_rows."id" IS NULL)')
    assert windowed.statement("pyformat").sql.endswith(
        'WHERE pstt_rows."id" >= %(pstt_split_lower)s AND pstt_rows."id" < %(pstt_split_upper)s'
    )
    assert binds == {"pstt_split_lower": 101, "pstt_split_upper": 201}
    assert bounds_query(query, 'pstt_rows."id"').statement("pyformat").sql == (
        'SELECT MIN(pstt_rows."id"), MAX(pstt_rows."id"), CASE WHEN EXISTS (SELECT 1 FROM (SELECT id FROM t WHERE '
        'kind = %(KIND)s\n) pstt_rows WHERE pstt_rows."id" IS NULL) THEN 1 ELSE 0 END FROM (SELECT id FROM t WHERE '
        "kind = %(KIND)s\n) pstt_rows"
    )


def test_a_range_survives_the_xcom_it_travels_in() -> None:
    part = split("ts", dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 2), 4, nulls=True)[0]
    assert SplitRange.of(part.to_json()) == part
    with pytest.raises(OrderedReadError, match="split_range: is not a range of the split task"):
        SplitRange.of({"column": "id"})

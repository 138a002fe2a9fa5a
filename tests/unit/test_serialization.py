from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pstt_provider.exceptions import RowEncodingError
from pstt_provider.serialization import RowEncoder, build_metadata, dumps, iso_duration, key_text

EXTRACTED = dt.datetime(2026, 1, 20, 10, 30, tzinfo=dt.UTC)


def test_decimals_are_exact_json_numbers_never_floats():
    value = Decimal("1234567890123456789012345678.0123456789")

    text = dumps({"amount": value})

    assert text == b'{"amount":1234567890123456789012345678.0123456789}'
    assert json.loads(text, parse_float=Decimal)["amount"] == value


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_any_finite_decimal_round_trips_exactly(value):
    assert json.loads(dumps([value]), parse_float=Decimal, parse_int=Decimal)[0] == value


def test_non_finite_decimals_become_strings_so_the_json_stays_valid():
    assert json.loads(dumps([Decimal("NaN"), Decimal("-Infinity")])) == ["NaN", "-Infinity"]


def test_dates_and_timestamps_are_iso_8601_with_the_offset_the_db_gave():
    rome = dt.timezone(dt.timedelta(hours=1))
    row = {
        "day": dt.date(2026, 1, 20),
        "naive": dt.datetime(2026, 1, 20, 10, 30, 0, 123456),
        "aware": dt.datetime(2026, 1, 20, 10, 30, tzinfo=rome),
        "utc": dt.datetime(2026, 1, 20, 10, 30, tzinfo=dt.UTC),
    }

    assert json.loads(dumps(row)) == {
        "day": "2026-01-20",
        "naive": "2026-01-20T10:30:00.123456",
        "aware": "2026-01-20T10:30:00+01:00",
        "utc": "2026-01-20T10:30:00+00:00",
    }


def test_binary_is_base64_whatever_buffer_type_the_driver_returns():
    raw = bytes(range(256))
    encoded = base64.b64encode(raw).decode()

    assert json.loads(dumps([raw, bytearray(raw), memoryview(raw)])) == [encoded] * 3


def test_text_is_utf8_not_escaped():
    assert dumps({"città": "東京 «ü»"}) == '{"città":"東京 «ü»"}'.encode()


def test_intervals_are_iso_8601_durations():
    assert iso_duration(dt.timedelta(days=1, seconds=3661, microseconds=500000)) == "P1DT3661.5S"
    assert iso_duration(dt.timedelta(seconds=-90)) == "-P0DT90S"
    assert iso_duration(dt.timedelta(0)) == "P0DT0S"


def test_unknown_types_fail_with_the_type_name():
    with pytest.raises(RowEncodingError, match="complex"):
        dumps({"z": 1j})


def test_envelope_holds_the_row_and_the_run_metadata():
    metadata = build_metadata(dag_id="d", run_id="r", task_id="t", query="Q.sql", extracted_at=EXTRACTED)
    encoder = RowEncoder(["ID", "AMOUNT"], metadata)

    message = json.loads(encoder.encode((7, Decimal("1.10"))), parse_float=Decimal)

    assert message["data"] == {"ID": 7, "AMOUNT": Decimal("1.10")}
    assert message["metadata"] == {
        "schema_version": "1.0",
        "system": "pstt-provider",
        "dag_id": "d",
        "run_id": "r",
        "task_id": "t",
        "query": "Q.sql",
        "extracted_at": "2026-01-20T10:30:00+00:00",
    }


def test_without_metadata_the_value_is_the_row_object_alone():
    assert RowEncoder(["a", "b"], None).encode((1, None)) == b'{"a":1,"b":null}'


def test_keys_are_text_exact_for_numbers_iso_for_dates_base64_for_binary():
    assert key_text("S-001") == "S-001"
    assert key_text(42) == "42"
    assert key_text(Decimal("12345678901234567890.5")) == "12345678901234567890.5"
    assert key_text(dt.date(2026, 1, 20)) == "2026-01-20"
    assert key_text(dt.datetime(2026, 1, 20, 10, 30)) == "2026-01-20T10:30:00"
    assert key_text(b"\x00\x01") == "AAE="
    assert key_text(True) == "true"
    some = uuid.UUID(int=1)
    assert key_text(some) == str(some)


def test_a_row_with_an_unencodable_value_names_the_column():
    with pytest.raises(RowEncodingError, match="column 'shape': cannot encode a complex value"):
        RowEncoder(["id", "shape"], None).encode((1, 2j))


def test_a_batch_with_an_unencodable_value_names_its_row_number_and_column():
    rows = [(n, "ok") for n in range(1, 10)] + [(10, 2j)]

    with pytest.raises(RowEncodingError, match="row 110: column 'shape': cannot encode a complex value"):
        RowEncoder(["id", "shape"], None).encode_batch(rows, first_row_number=101)


def test_numbers_read_as_text_are_exact_json_numbers_and_nan_or_infinity_stay_strings():
    encoder = RowEncoder(["id", "amount"], None, number_text={1})
    texts = ["12345678901234567890.0000000001", "-0.5", "NaN", "Infinity", "-Infinity", None]

    values = encoder.encode_batch([(n, text) for n, text in enumerate(texts)])

    assert values[0] == b'{"id":0,"amount":12345678901234567890.0000000001}'
    assert [json.loads(v)["amount"] for v in values[1:]] == [-0.5, "NaN", "Infinity", "-Infinity", None]


def test_the_envelope_is_the_same_for_one_row_and_for_a_batch():
    metadata = build_metadata(dag_id="d", run_id="r", task_id="t", query="q", extracted_at=EXTRACTED)
    encoder = RowEncoder(["id", "note"], metadata)

    assert encoder.encode_batch([(1, "a"), (2, "b")]) == [encoder.encode((1, "a")), encoder.encode((2, "b"))]
    assert json.loads(encoder.encode((1, "a"))) == {"data": {"id": 1, "note": "a"}, "metadata": metadata}


NAN, INF = float("nan"), float("inf")


def test_float_nan_and_infinity_are_the_strings_numeric_uses_never_null():
    encoder = RowEncoder(["id", "ratio"], None)

    values = encoder.encode_batch([(1, NAN), (2, INF), (3, -INF), (4, None), (5, 0.1)])

    assert values == [
        b'{"id":1,"ratio":"NaN"}',
        b'{"id":2,"ratio":"Infinity"}',
        b'{"id":3,"ratio":"-Infinity"}',
        b'{"id":4,"ratio":null}',
        b'{"id":5,"ratio":0.1}',
    ]


def test_float_specials_inside_arrays_and_nested_arrays_are_strings_and_null_elements_stay_null():
    encoder = RowEncoder(["id", "samples"], None, float_columns={1})

    values = encoder.encode_batch([(1, [1.5, NAN, None]), (2, [[INF], [-INF, 2.0]]), (3, [0.5]), (4, None)])

    assert [json.loads(v)["samples"] for v in values] == [
        [1.5, "NaN", None],
        [["Infinity"], ["-Infinity", 2.0]],
        [0.5],
        None,
    ]


def test_declared_float_columns_are_the_only_ones_looked_at():
    encoder = RowEncoder(["id", "ratio", "note"], None, float_columns={1})

    values = encoder.encode_batch([(1, NAN, "NaN"), (2, 2.5, "null"), (3, None, None)])

    assert [json.loads(v) for v in values] == [
        {"id": 1, "ratio": "NaN", "note": "NaN"},
        {"id": 2, "ratio": 2.5, "note": "null"},
        {"id": 3, "ratio": None, "note": None},
    ]


def test_without_declared_types_a_float_anywhere_among_text_and_dates_is_found():
    encoder = RowEncoder(["id", "mixed", "day"], None)
    day = dt.date(2026, 1, 20)

    values = encoder.encode_batch([(1, "text", day), (2, -INF, day), (3, 7, None), (4, {"w": NAN}, day)])

    assert [json.loads(v)["mixed"] for v in values] == ["text", "-Infinity", 7, {"w": "NaN"}]


def test_one_row_and_a_batch_encode_float_specials_alike_with_the_envelope():
    metadata = build_metadata(dag_id="d", run_id="r", task_id="t", query="q", extracted_at=EXTRACTED)
    encoder = RowEncoder(["id", "ratio"], metadata, float_columns={1})

    assert encoder.encode((1, NAN)) == encoder.encode_batch([(1, NAN)])[0]
    assert json.loads(encoder.encode((1, NAN))) == {"data": {"id": 1, "ratio": "NaN"}, "metadata": metadata}


def test_dumps_writes_float_specials_as_text_too():
    assert json.loads(dumps({"a": [NAN, INF], "b": -INF, "c": None})) == {
        "a": ["NaN", "Infinity"],
        "b": "-Infinity",
        "c": None,
    }


def test_finite_floats_huge_enough_to_overflow_a_sum_are_kept_as_numbers():
    encoder = RowEncoder(["id", "big"], None, float_columns={1})

    values = encoder.encode_batch([(1, 1.7e308), (2, 1.7e308), (3, [1.7e308, 1.7e308])])

    assert [json.loads(v)["big"] for v in values] == [1.7e308, 1.7e308, [1.7e308, 1.7e308]]


@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.floats()),
            st.one_of(st.none(), st.lists(st.one_of(st.none(), st.floats()), max_size=4)),
        ),
        max_size=30,
    ),
    st.booleans(),
)
def test_no_float_is_ever_sent_as_null_and_finite_ones_round_trip(rows, declared):
    encoder = RowEncoder(["x", "xs"], None, float_columns={0, 1} if declared else None)

    decoded = [json.loads(value) for value in encoder.encode_batch(rows)]

    def expected(value):
        if isinstance(value, list):
            return [expected(item) for item in value]
        if value is None or value - value == 0:
            return value
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")

    assert decoded == [{"x": expected(x), "xs": expected(xs)} for x, xs in rows]

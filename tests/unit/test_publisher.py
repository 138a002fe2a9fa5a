"""RowPublisher: the key column's lookup and the NULL-key policy, on a real result stream over a stub cursor."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import orjson
import pytest

from pstt_provider.delivery import ProgressLog
from pstt_provider.exceptions import MessageKeyError
from pstt_provider.publisher import RowPublisher, key_index
from pstt_provider.streaming import ResultStream

COLUMNS = ("ID", "CODE")


class StubCursor:
    def __init__(self, rows: Sequence[tuple[Any, ...]]) -> None:
        self.rows = list(rows)

    def fetchmany(self, size: int) -> list[tuple[Any, ...]]:
        batch, self.rows = self.rows[:size], self.rows[size:]
        return batch


class RecordingSender:
    """What the publisher hands to BulkSender: the keys and encoded values of each batch."""

    def __init__(self) -> None:
        self.sent: list[tuple[str | None, dict]] = []

    def send_batch(self, keys: Sequence[str | None], values: Sequence[bytes]) -> None:
        self.sent.extend(zip(keys, map(orjson.loads, values), strict=True))


def publish(
    rows: Sequence[tuple[Any, ...]],
    null_key: str = "fail",
    key_field: str = "id",
    fetch_size: int = 2,
    sender: RecordingSender | None = None,
) -> tuple[RowPublisher, list[tuple[str | None, dict]]]:
    sender = sender or RecordingSender()
    publisher = RowPublisher(
        sender=sender,  # type: ignore[arg-type]
        key_field=key_field,
        null_key=null_key,  # type: ignore[arg-type]
        progress=ProgressLog(logging.getLogger("tests.publisher")),
        flush_timeout_s=1.0,
    )
    result = ResultStream(columns=COLUMNS, cursor=StubCursor(rows), fetch_size=fetch_size, source="Q-001--Test.sql")
    publisher.publish(result, metadata=None)
    return publisher, sender.sent


ROWS = [(1, "a"), (None, "b"), (3, "c"), (None, "d"), (5, "e")]


def test_keys_are_the_key_columns_text_and_values_the_row_objects():
    publisher, sent = publish([(1, "a"), (22, "b"), (333, "c")])

    assert sent == [("1", {"ID": 1, "CODE": "a"}), ("22", {"ID": 22, "CODE": "b"}), ("333", {"ID": 333, "CODE": "c"})]
    assert (publisher.rows, publisher.skipped) == (3, 0)


def test_a_null_key_under_fail_stops_the_run_naming_the_row_and_the_spec_field():
    with pytest.raises(MessageKeyError, match=r"Q-001--Test\.sql: row 2 has a NULL id; set null_key .*kafka_config"):
        publish(ROWS, "fail")


def test_a_null_key_under_null_is_sent_without_a_key():
    publisher, sent = publish(ROWS, "null")

    assert [key for key, _ in sent] == ["1", None, "3", None, "5"]
    assert [value["CODE"] for _, value in sent] == ["a", "b", "c", "d", "e"]
    assert (publisher.rows, publisher.skipped) == (5, 0)


def test_a_null_key_under_skip_drops_the_row_and_counts_it():
    publisher, sent = publish(ROWS, "skip")

    assert sent == [("1", {"ID": 1, "CODE": "a"}), ("3", {"ID": 3, "CODE": "c"}), ("5", {"ID": 5, "CODE": "e"})]
    assert (publisher.rows, publisher.skipped) == (5, 2)


def test_the_key_column_is_looked_up_before_anything_is_sent():
    sender = RecordingSender()
    with pytest.raises(MessageKeyError, match="'barcode' is not in the query result; columns present: ID, CODE"):
        publish([(1, "a")], key_field="barcode", sender=sender)
    assert sender.sent == []


def test_the_key_column_matches_exactly_first_then_case_insensitively_when_unambiguous():
    assert key_index(("ID", "id", "X"), "id") == 1
    assert key_index(("ID", "TRKCODE"), "trkcode") == 1
    with pytest.raises(MessageKeyError, match="'id' is not in the query result"):
        key_index(("ID", "Id"), "id")  # two columns differing only in case: neither is taken


def test_duplicate_column_names_are_refused():
    with pytest.raises(MessageKeyError, match=r"duplicate column name\(s\) CODE"):
        key_index(("id", "CODE", "CODE"), "id")

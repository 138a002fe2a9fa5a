"""
Rows to messages: the key column, the NULL-key policy, the encoding, the sending and the progress line.

The per-row work is the key's lookup (``itemgetter``) and one ``produce``; everything else happens per batch. A
batch without NULL keys is encoded in one call; one with NULL keys goes row by row under the ``null_key`` policy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Literal

from pstt_provider.delivery import BulkSender, ProgressLog
from pstt_provider.exceptions import DeliveryError, MessageKeyError
from pstt_provider.result_columns import duplicated, find_column
from pstt_provider.serialization import key_text
from pstt_provider.streaming import ResultStream
from pstt_provider.value_formats import JsonValues, ValueEncoder, ValueFormat

NullKeyPolicy = Literal["fail", "null", "skip"]
NULL_KEY_POLICIES: tuple[str, ...] = ("fail", "null", "skip")
FAILURE_FLUSH_S = 10.0
"""After a failure, how long what was already produced may take to be acknowledged before the counts are final."""
_TEXT_KEYS = {str}


def key_index(columns: Sequence[str], key_field: str) -> int:
    """Where the key column is (``find_column``); duplicate column names are refused."""
    if duplicates := duplicated(columns):
        raise MessageKeyError(
            f"the query returns duplicate column name(s) {', '.join(duplicates)}; give them distinct aliases"
        )
    position = find_column(columns, key_field)
    if position is None:
        raise MessageKeyError(
            f"message key column {key_field!r} is not in the query result; columns present: {', '.join(columns)}"
        )
    return position


@dataclass(kw_only=True)
class RowPublisher:
    """
    Publishes a result's rows through ``sender``, counting the rows read (``rows``) and the ones skipped.

    ``null_key``: ``fail`` stops the run at a NULL key naming the row, ``null`` sends the message without a key,
    ``skip`` drops the row and counts it in ``skipped``. ``value_format`` makes the values
    (``pstt_provider.value_formats``).
    """

    sender: BulkSender
    key_field: str
    null_key: NullKeyPolicy
    progress: ProgressLog
    flush_timeout_s: float
    value_format: ValueFormat = field(default_factory=JsonValues)
    rows: int = field(default=0, init=False)
    skipped: int = field(default=0, init=False)

    def publish(
        self,
        result: ResultStream,
        metadata: Mapping[str, Any] | None,
        on_batch: Callable[[int, Sequence[Any]], None] | None = None,
    ) -> None:
        """
        Every row of ``result`` as a message (with ``metadata`` as the envelope's, None for the row alone); the key
        column is looked up before anything is sent. ``on_batch`` gets the rows read so far and the batch's last row
        once the batch is queued.
        """
        key_of = itemgetter(key_index(result.columns, self.key_field))
        encoder = self.value_format.encoder(result, metadata)
        send_batch, progress = self.sender.send_batch, self.progress
        for batch in result.batches():
            keys = list(map(key_of, batch))
            kinds = set(map(type, keys))
            if type(None) in kinds:
                keys, messages = self._with_null_keys(keys, batch, encoder, result.source)
            else:
                if kinds != _TEXT_KEYS:
                    keys = [key if type(key) is str else key_text(key) for key in keys]
                messages = encoder.encode_batch(batch, self.rows + 1)
            send_batch(keys, messages)
            self.rows += len(batch)
            progress.maybe_log(self.rows)
            if on_batch is not None:
                on_batch(self.rows, batch[-1])

    def _with_null_keys(
        self, keys: list[Any], batch: Sequence[Sequence[Any]], encoder: ValueEncoder, source: str
    ) -> tuple[list[str | None], list[bytes]]:
        """A batch holding NULL keys, row by row under the ``null_key`` policy."""
        kept_keys: list[str | None] = []
        messages: list[bytes] = []
        for number, (key, row) in enumerate(zip(keys, batch, strict=True), self.rows + 1):
            if key is None:
                if self.null_key == "skip":
                    self.skipped += 1
                    continue
                if self.null_key == "fail":
                    raise MessageKeyError(
                        f"{source}: row {number} has a NULL {self.key_field}; set null_key "
                        "(job spec: kafka_config.null_key) to 'null' to send it without a key or 'skip' to drop it"
                    )
            elif type(key) is not str:
                key = key_text(key)
            kept_keys.append(key)
            messages.extend(encoder.encode_batch([row], number))
        return kept_keys, messages

    def finish(self) -> None:
        """Waits for every acknowledgement (``flush_timeout_s`` at most); raises unless every message arrived."""
        self.sender.finish(self.flush_timeout_s)
        self.sender.raise_for_failures()

    def settle_after(self, error: BaseException) -> BaseException:
        """
        After ``error`` what was produced is still delivered: waits a little so the counts say how much of it
        reached the broker, and returns the error to raise, a delivery error restated with those counts.
        """
        self.sender.finish(FAILURE_FLUSH_S)
        if isinstance(error, DeliveryError) and str(restated := self.sender.restated(error)) != str(error):
            return restated
        return error

"""
Result sets streamed in batches, whatever the database: its ``Dialect`` says how to open and read the cursor.

Memory stays flat in the number of rows: every dialect fetches ``fetch_size`` rows per round trip (a server-side
cursor for PostgreSQL, ``arraysize``/``prefetchrows`` for Oracle, ``fetchmany`` for the rest). Where the dialect
can interrupt a fetch (psycopg 3), fetches are read ahead on a thread (``ReadAhead``), so the database works on
the next batch while the caller sends this one.

The query runs read-only where the dialect knows how (``Dialect.read_only_statement``): a query file that writes
(DDL, DML, a data-modifying CTE, a function that writes) is refused by the database before anything changes.

A database error becomes a ``SourceQueryError`` naming the query file, retried by Airflow, or a
``SourceQueryRejectedError``, which fails the task at once, according to the DB-API class the driver gives it
(``source_query_error``).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pstt_provider.exceptions import SourceQueryError, SourceQueryRejectedError

if TYPE_CHECKING:
    from pstt_provider.dialects.base import Dialect

READ_AHEAD_POLL_S = 0.1

log = logging.getLogger(__name__)


PERMANENT_DB_ERRORS = frozenset({"ProgrammingError", "DataError", "IntegrityError", "NotSupportedError"})
"""
DB-API (PEP 249) classes for errors in the query or the data: the same query on the same data fails the same way,
so a retry only delays the failure. ``OperationalError`` and ``InterfaceError`` (connection lost, server shutting
down, a lock timeout, a cancelled statement) and anything a driver leaves unclassified (its plain
``DatabaseError``) stay retryable. Matched by class name along the MRO, so every driver's own classes count
(``psycopg.errors.UndefinedColumn`` is a ``ProgrammingError``) without importing any driver. sqlite3 reports
"no such table" and SQL syntax errors as ``OperationalError``: on SQLite those stay retryable.
"""
TRANSIENT_DB_ERRORS = frozenset({"OperationalError", "InterfaceError"})


def source_query_error(message: str, cause: BaseException) -> SourceQueryError:
    """``message`` as the error a retry may fix (``SourceQueryError``) or not (``SourceQueryRejectedError``)."""
    classes = {klass.__name__ for klass in type(cause).__mro__}
    if classes & PERMANENT_DB_ERRORS and not classes & TRANSIENT_DB_ERRORS:
        return SourceQueryRejectedError(message)
    return SourceQueryError(message)


class ReadAhead:
    """
    Batches fetched on a thread of their own, one batch ahead of the caller.

    The driver waits for the database with the GIL released, so the next fetch (the server running it, the
    rows crossing the socket) overlaps the caller's work on the current batch: with PostgreSQL that wait is
    about a third of reading. At most three batches exist at once (worked on, handed over, being fetched),
    so memory stays flat. ``close`` stops the thread, cancelling a fetch in progress, before the connection
    may be closed.
    """

    def __init__(self, batches: Iterator[Sequence[Sequence[Any]]], cancel: Callable[[], None]) -> None:
        self._handoff: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._cancel = cancel
        self._thread = threading.Thread(target=self._pump, args=(batches,), name="pstt-read-ahead", daemon=True)
        self._thread.start()

    def _pump(self, batches: Iterator[Sequence[Sequence[Any]]]) -> None:
        try:
            for batch in batches:
                if not self._offer(batch):
                    return
            self._offer(_END)
        except BaseException as err:
            self._offer(_Failure(err))

    def _offer(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._handoff.put(item, timeout=READ_AHEAD_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[Sequence[Sequence[Any]]]:
        while (item := self._handoff.get()) is not _END:
            if isinstance(item, _Failure):
                raise item.error
            yield item

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        self._stop.set()
        with suppress(Exception):
            self._cancel()
        self._thread.join()


_END = object()


@dataclass
class _Failure:
    error: BaseException


@dataclass
class ResultStream:
    columns: tuple[str, ...]
    cursor: Any
    fetch_size: int
    source: str
    number_text: frozenset[int] = frozenset()
    """Positions of exact numbers the driver hands over as their text (``Dialect.number_text``)."""
    float_columns: frozenset[int] | None = None
    """Positions the driver declares as floating point (or arrays of it); None: the driver declares no types."""
    cancel: Callable[[], None] | None = None
    """How to interrupt a fetch from another thread; set for drivers whose fetches are read ahead."""
    _read_ahead: ReadAhead | None = None

    def batches(self) -> Iterable[Sequence[Sequence[Any]]]:
        if self.cancel is None:
            return self._fetch()
        self._read_ahead = ReadAhead(self._fetch(), self.cancel)
        return self._read_ahead

    def _fetch(self) -> Iterator[Sequence[Sequence[Any]]]:
        while True:
            try:
                rows = self.cursor.fetchmany(self.fetch_size)
            except Exception as err:
                raise source_query_error(f"{self.source}: reading the result failed: {db_message(err)}", err) from err
            if not rows:
                return
            yield rows

    def close(self) -> None:
        if self._read_ahead is not None:
            self._read_ahead.close()


def db_message(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def make_read_only(connection: Any, dialect: Dialect, source: str) -> None:
    """Makes the database refuse writes before the query runs; raises if it cannot."""
    statement = dialect.read_only_statement
    if statement is None:
        log.warning(
            "%s: no read-only mode known for %s connections; the connection's privileges must stop writes",
            source,
            dialect.name,
        )
        return
    cursor = connection.cursor()
    try:
        cursor.execute(statement)
    except Exception as err:
        raise source_query_error(
            f"{source}: cannot make the session read-only ({statement}): {db_message(err)}", err
        ) from err
    finally:
        cursor.close()


@contextmanager
def read_only_session(dialect: Dialect, connection: Any, source: str) -> Iterator[None]:
    """The connection made read-only for what runs inside; the transaction ended and the connection closed after."""
    try:
        make_read_only(connection, dialect, source)
        yield
    finally:
        # Read-only work: ending the transaction releases the server-side cursor. A broken connection
        # must not mask the error that broke it, so only closing is mandatory.
        with suppress(Exception):
            connection.rollback()
        connection.close()


def result_columns(connection: Any, sql: str, binds: Mapping[str, Any] | Sequence[Any], source: str) -> tuple[str, ...]:
    """The column names ``sql`` returns, from a statement that returns no row (``ordered_read.columns_query``)."""
    cursor = connection.cursor()
    try:
        cursor.execute(sql, binds)
        if cursor.description is None:
            raise SourceQueryRejectedError(f"{source}: the statement returned no result set (is it a SELECT?)")
        return tuple(column[0] for column in cursor.description)
    except SourceQueryRejectedError:
        raise
    except Exception as err:
        raise source_query_error(f"{source}: the database rejected the query: {db_message(err)}", err) from err
    finally:
        cursor.close()


@contextmanager
def open_result(
    dialect: Dialect,
    connection: Any,
    sql: str,
    binds: Mapping[str, Any] | Sequence[Any],
    *,
    source: str,
    fetch_size: int | None = None,
    prefetch_rows: int | None = None,
) -> Iterator[ResultStream]:
    """Executes ``sql`` with ``binds`` and yields the open result, ``fetch_size`` rows a fetch (None: the dialect's)."""
    fetch_size = dialect.fetch_size if fetch_size is None else fetch_size
    cursor = dialect.open_cursor(connection, fetch_size, prefetch_rows)
    try:
        cursor.execute(sql, binds)
    except Exception as err:
        raise source_query_error(f"{source}: the database rejected the query: {db_message(err)}", err) from err
    if cursor.description is None:
        raise SourceQueryRejectedError(f"{source}: the statement returned no result set (is it a SELECT?)")
    result = ResultStream(
        columns=tuple(column[0] for column in cursor.description),
        cursor=cursor,
        fetch_size=fetch_size,
        source=source,
        number_text=dialect.number_text(cursor.description),
        float_columns=dialect.float_columns(cursor.description),
        cancel=dialect.canceller(connection),
    )
    try:
        yield result
    finally:
        result.close()


@contextmanager
def stream_query(
    dialect: Dialect,
    connection: Any,
    sql: str,
    binds: Mapping[str, Any] | Sequence[Any],
    *,
    source: str,
    fetch_size: int | None = None,
    prefetch_rows: int | None = None,
) -> Iterator[ResultStream]:
    """
    Executes ``sql`` with ``binds`` on ``connection`` read-only and yields the open result, ``fetch_size`` rows per
    fetch (None: the dialect's own); closes cursor and connection.
    """
    with (
        read_only_session(dialect, connection, source),
        open_result(
            dialect, connection, sql, binds, source=source, fetch_size=fetch_size, prefetch_rows=prefetch_rows
        ) as result,
    ):
        yield result

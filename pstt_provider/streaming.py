"""
Result sets streamed in batches, whatever the DB-API driver.

Memory stays flat in the number of rows: PostgreSQL gets a named (server-side) cursor so the server holds
the result and ships ``batch_size`` rows per fetch; oracledb gets ``arraysize``/``prefetchrows`` and the
output type handler; any other driver is read with ``fetchmany(batch_size)``. psycopg 3 fetches are read
ahead on a thread (``ReadAhead``), so the database works on the next batch while the caller sends this one.

The query runs read-only where the driver is known (``READ_ONLY_STATEMENTS``): a query file that writes (DDL, DML,
a data-modifying CTE, a function that writes) is refused by the database before anything changes.

A database error becomes a ``SourceQueryError`` naming the query file, retried by Airflow, or a
``SourceQueryRejectedError``, which fails the task at once, according to the DB-API class the driver gives it
(``source_query_error``).
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from pstt_provider.exceptions import SourceQueryError, SourceQueryRejectedError
from pstt_provider.query_file import Paramstyle

_PARAMSTYLE_OVERRIDES: dict[str, Paramstyle] = {"sqlite3": "named"}
_SERVER_SIDE_CURSOR_DRIVERS = frozenset({"psycopg", "psycopg2"})
PG_NUMERIC_OID = 1700
PG_FLOAT_OIDS = frozenset({700, 701, 1021, 1022})
"""float4, float8 and their arrays: the PostgreSQL types psycopg hands over as Python floats (lists of them)."""
READ_AHEAD_POLL_S = 0.1
READ_ONLY_STATEMENTS: dict[str, str] = {
    "sqlite3": "PRAGMA query_only = ON",
    "psycopg": "SET TRANSACTION READ ONLY",
    "psycopg2": "SET TRANSACTION READ ONLY",
    "oracledb": "SET TRANSACTION READ ONLY",
}
"""
Run first on the connection, so the database itself refuses any write of the query: SQLite for the connection,
PostgreSQL for the transaction the server-side cursor lives in (an autocommit connection cannot hold that cursor, so
the query always runs inside it), Oracle for the transaction it starts. Oracle DDL is the exception: it commits
implicitly and is not stopped by a read-only transaction, so only the account's privileges keep it out.
"""

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


def driver_name(connection: Any) -> str:
    return type(connection).__module__.split(".")[0]


def paramstyle_of(connection: Any) -> Paramstyle:
    """The bind style the connection's own driver module declares (sqlite3 accepts ``:name`` too; we use it)."""
    driver = driver_name(connection)
    if driver in _PARAMSTYLE_OVERRIDES:
        return _PARAMSTYLE_OVERRIDES[driver]
    module = sys.modules.get(driver)
    return getattr(module, "paramstyle", "named")


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
    batch_size: int
    source: str
    number_text: frozenset[int] = frozenset()
    """Positions of exact numbers the driver hands over as their text (see ``read_numbers_as_text``)."""
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
                rows = self.cursor.fetchmany(self.batch_size)
            except Exception as err:
                raise source_query_error(f"{self.source}: reading the result failed: {db_message(err)}", err) from err
            if not rows:
                return
            yield rows

    def close(self) -> None:
        if self._read_ahead is not None:
            self._read_ahead.close()


def read_numbers_as_text(connection: Any) -> None:
    """
    PostgreSQL numeric arrives as its exact text instead of a ``Decimal`` (psycopg 3, this connection only).

    The text is what the message needs (``RowEncoder`` writes it as a JSON number), so the ``Decimal``
    that would be built per value and turned back into text is skipped: about a microsecond per row.
    """
    from psycopg.types.string import TextLoader

    connection.adapters.register_loader("numeric", TextLoader)


def make_read_only(connection: Any, driver: str, source: str) -> None:
    """Makes the database refuse writes before the query runs (``READ_ONLY_STATEMENTS``); raises if it cannot."""
    statement = READ_ONLY_STATEMENTS.get(driver)
    if statement is None:
        log.warning(
            "%s: no read-only mode known for the %s driver; the connection's privileges must stop writes",
            source,
            driver,
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


def float_positions(driver: str, description: Sequence[Sequence[Any]]) -> frozenset[int] | None:
    """Columns declared floating point, for drivers whose description carries types; None for the others."""
    if driver in _SERVER_SIDE_CURSOR_DRIVERS:
        kinds: frozenset[Any] = PG_FLOAT_OIDS
    elif driver == "oracledb":
        from pstt_provider.oracle import FLOAT_TYPES

        kinds = FLOAT_TYPES
    else:
        return None
    return frozenset(position for position, column in enumerate(description) if column[1] in kinds)


def db_message(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


@contextmanager
def stream_query(
    connection: Any,
    sql: str,
    binds: Mapping[str, Any] | Sequence[Any],
    *,
    batch_size: int,
    source: str,
    prefetch_rows: int | None = None,
) -> Iterator[ResultStream]:
    """Executes ``sql`` with ``binds`` on ``connection`` and yields the open result; closes cursor and connection."""
    driver = driver_name(connection)
    try:
        make_read_only(connection, driver, source)
        if driver in _SERVER_SIDE_CURSOR_DRIVERS:
            if driver == "psycopg":
                read_numbers_as_text(connection)
            cursor = connection.cursor(name=f"pstt_{uuid.uuid4().hex}")
            cursor.itersize = batch_size
        else:
            if driver == "oracledb":
                from pstt_provider.oracle import output_type_handler, tune_cursor

                connection.outputtypehandler = output_type_handler
                cursor = connection.cursor()
                tune_cursor(cursor, batch_size, prefetch_rows)
            else:
                cursor = connection.cursor()
                cursor.arraysize = batch_size
        try:
            cursor.execute(sql, binds)
        except Exception as err:
            raise source_query_error(f"{source}: the database rejected the query: {db_message(err)}", err) from err
        if cursor.description is None:
            raise SourceQueryRejectedError(f"{source}: the statement returned no result set (is it a SELECT?)")
        columns = tuple(column[0] for column in cursor.description)
        number_text = frozenset(
            position
            for position, column in enumerate(cursor.description)
            if driver == "psycopg" and column[1] == PG_NUMERIC_OID
        )
        result = ResultStream(
            columns=columns,
            cursor=cursor,
            batch_size=batch_size,
            source=source,
            number_text=number_text,
            float_columns=float_positions(driver, cursor.description),
            cancel=connection.cancel_safe if driver == "psycopg" else None,
        )
        try:
            yield result
        finally:
            result.close()
    finally:
        # Read-only work: ending the transaction releases the server-side cursor. A broken connection
        # must not mask the error that broke it, so only closing is mandatory.
        with suppress(Exception):
            connection.rollback()
        connection.close()

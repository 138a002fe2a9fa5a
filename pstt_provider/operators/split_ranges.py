"""
SplitRangesOperator: plans a parallel run, the ranges of one column the export task is mapped over.

One small read-only query, the MIN and MAX of ``split_by`` over the job's own query with its binds; the ranges
(``pstt_provider.splitting``) are the task's return value, the XCom ``SqlToKafkaOperator.partial(...).expand(
split_range=...)`` maps over. A mapped export that fails is retried on its own, with the same range: the ranges are
the split task's XCom, planned once per run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk import BaseHook, BaseOperator

from pstt_provider import ordered_read, query_file
from pstt_provider.dialects import dialect_for
from pstt_provider.exceptions import at_task_time
from pstt_provider.splitting import bounds_query, split
from pstt_provider.streaming import db_message, read_only_session, result_columns, source_query_error


class SplitRangesOperator(BaseOperator):
    """
    Returns up to ``partitions`` ranges of ``split_by`` over the rows of ``sql`` / ``sql_file`` on ``conn_id``, as
    JSON (:meth:`~pstt_provider.splitting.SplitRange.to_json`), for ``SqlToKafkaOperator``'s ``split_range``.

    :param conn_id: the source database's Airflow connection, as the export task's.
    :param split_by: a result column of numbers, dates or timestamps; ranges are even in its values.
    :param partitions: how many ranges at most (2 to 64); fewer when the column has fewer distinct values.
    :param sql: the statement, with the query-file parameter syntax (templated); give ``sql`` or ``sql_file``.
    :param sql_file: path of a query file.
    :param parameters: the query's parameter values, as the export task's (templated).
    """

    template_fields: Sequence[str] = ("sql", "parameters")
    template_ext: Sequence[str] = ()
    ui_color = "#f3ecfb"

    def __init__(
        self,
        *,
        conn_id: str,
        split_by: str,
        partitions: int,
        sql: str | None = None,
        sql_file: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (sql is None) == (sql_file is None):
            raise query_file.QueryParameterError(f"{self.task_id}: give exactly one of sql or sql_file")
        self.conn_id = conn_id
        self.split_by = ordered_read.check_identifier(split_by, "parallel.split_by")
        self.partitions = partitions
        self.sql = sql
        self.sql_file = sql_file
        self.parameters = dict(parameters or {})

    def execute(self, context: Mapping[str, Any]) -> list[dict[str, Any]]:
        try:
            query = query_file.load_query(self.sql, self.sql_file)
            values = query.bind_values(self.parameters)
            low, high, nulls = self._bounds(query, values)
            ranges = split(self.split_by, low, high, self.partitions, nulls=nulls)
        except (query_file.QueryFileError, ordered_read.OrderedReadError) as err:
            raise at_task_time(err) from None
        self.log.info(
            "%s from %r to %r in %d part(s): %s",
            self.split_by,
            low,
            high,
            len(ranges),
            "; ".join(map(str, ranges)),
        )
        return [part.to_json() for part in ranges]

    def _bounds(self, query: query_file.QueryFile, values: Mapping[str, Any]) -> tuple[Any, Any, bool]:
        db_hook = BaseHook.get_connection(self.conn_id).get_hook()
        dialect = dialect_for(db_hook, self.conn_id)
        connection = db_hook.get_conn()
        paramstyle = dialect.paramstyle(connection)
        with read_only_session(dialect, connection, query.source):
            described = ordered_read.columns_query(query).statement(paramstyle)
            names = result_columns(connection, described.sql, described.bind(values), query.source)
            column = ordered_read.quoted_column(names, self.split_by, "parallel.split_by", dialect)
            statement = bounds_query(query, column).statement(paramstyle)
            cursor = connection.cursor()
            try:
                cursor.execute(statement.sql, statement.bind(values))
                low, high, nulls = cursor.fetchone()
            except Exception as err:
                raise source_query_error(
                    f"{query.source}: the database rejected the split query: {db_message(err)}", err
                ) from err
            finally:
                cursor.close()
            return low, high, bool(nulls)

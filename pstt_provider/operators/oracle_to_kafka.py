"""OracleToKafkaOperator: SqlToKafkaOperator with the Oracle connection and fetch tuning as defaults."""

from __future__ import annotations

from typing import Any, ClassVar

from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator

ORACLE_BATCH_SIZE = 10_000


class OracleToKafkaOperator(SqlToKafkaOperator):
    """
    Same arguments and behaviour as ``SqlToKafkaOperator``; defaults suited to python-oracledb.

    ``conn_id`` defaults to ``oracle_default``; ``batch_size`` (the cursor's ``arraysize``) to 10,000 rows
    per round trip, with ``prefetch_rows`` (default ``batch_size + 1``) so the first batch arrives with the
    execute. NUMBER columns with a scale arrive as exact decimals and CLOB/BLOB as str/bytes
    (``pstt_provider.oracle.output_type_handler``).
    """

    default_conn_id: ClassVar[str | None] = "oracle_default"
    ui_color = "#fbe9e7"

    def __init__(self, *, batch_size: int = ORACLE_BATCH_SIZE, **kwargs: Any) -> None:
        super().__init__(batch_size=batch_size, **kwargs)

"""OracleToKafkaOperator: SqlToKafkaOperator with the Oracle connection as its default, for DAGs written by hand."""

from __future__ import annotations

from typing import ClassVar

from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator


class OracleToKafkaOperator(SqlToKafkaOperator):
    """
    Same arguments and behaviour as ``SqlToKafkaOperator``, ``conn_id`` defaulting to ``oracle_default``.

    The Oracle dialect (``pstt_provider.dialects.oracle``) reads 10,000 rows per round trip unless ``batch_size``
    says otherwise, the first batch with the execute (``prefetch_rows``), NUMBER columns with a scale as exact
    decimals and CLOB/BLOB as str/bytes; any Oracle connection gets that through ``SqlToKafkaOperator`` as well.
    """

    default_conn_id: ClassVar[str | None] = "oracle_default"
    ui_color = "#fbe9e7"

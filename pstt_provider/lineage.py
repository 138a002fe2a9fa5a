"""
What an export tells OpenLineage (apache-airflow-providers-openlineage, an optional extra): the source tables the
query reads, in the database connection's namespace, and the topic it writes, in the ``kafka://<server>`` namespace
of Airflow's Kafka provider, with the try's message count and bytes.

The tables come from parsing the query (the provider's ``SQLParser``, with the binds written ``:NAME``, which it
reads); the database is not asked for their schemas, so lineage costs the export no query. A database whose hook
gives no OpenLineage namespace (SQLite) is named ``<connection type>://<host>``. Without the provider installed
there is nothing to report to, and nothing is imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pstt_provider import assets, query_file

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

    from pstt_provider.summary import DeliverySummary


_FALLBACK_SCHEMA = {"sqlite": "main"}
"""The schema a table named without one is in, for databases whose hook does not say: SQLite's is ``main``."""


def export_lineage(
    *,
    conn_id: str,
    sql: str | None,
    sql_file: str | None,
    kafka_conn_id: str,
    topic: str,
    summary: DeliverySummary | None,
) -> OperatorLineage:
    from airflow.providers.common.compat.openlineage.facet import (
        OutputDataset,
        OutputStatisticsOutputDatasetFacet,
        SQLJobFacet,
    )
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.providers.openlineage.sqlparser import DatabaseInfo, SQLParser
    from airflow.sdk import BaseHook

    statement = query_file.load_query(sql, sql_file).statement("named").sql
    connection = BaseHook.get_connection(conn_id)
    hook = connection.get_hook()
    info = _database_info(hook, connection)
    if info is None:  # no OpenLineage support in the hook: its namespace by convention, its tables as written
        info = DatabaseInfo(scheme=str(connection.conn_type), authority=connection.host or connection.conn_id)
        parser = SQLParser(dialect="generic", default_schema=_FALLBACK_SCHEMA.get(info.scheme, connection.schema))
    else:
        parser = SQLParser(
            dialect=hook.get_openlineage_database_dialect(connection),
            default_schema=hook.get_openlineage_default_schema(),
        )
    parsed = parser.generate_openlineage_metadata_from_sql(
        sql=statement, hook=hook, database_info=info, use_connection=False
    )
    output_facets: dict[str, Any] = {}
    if summary is not None:
        output_facets["outputStatistics"] = OutputStatisticsOutputDatasetFacet(
            rowCount=summary.messages_sent, size=summary.bytes
        )
    server = assets.connection_server(kafka_conn_id)  # None: as for the Asset, no made-up namespace
    outputs = [] if server is None else [OutputDataset(f"kafka://{server}", topic, outputFacets=output_facets)]
    return OperatorLineage(
        inputs=parsed.inputs,
        outputs=outputs,
        run_facets=parsed.run_facets,
        job_facets={"sql": SQLJobFacet(query=parser.normalize_sql(statement)), **parsed.job_facets},
    )


def _database_info(hook: Any, connection: Any) -> Any:
    """What the hook tells OpenLineage of its database (namespace, name), None when it tells nothing."""
    try:
        return hook.get_openlineage_database_info(connection)
    except AttributeError:
        return None

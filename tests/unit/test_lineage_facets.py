"""
The OpenLineage facets an export reports, built without running it: the tables the query file names (its binds
in any of the query-file spellings), the topic in the Kafka provider's namespace, the try's counts, the SQL facet.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from helpers.summaries import tried

from pstt_provider.lineage import export_lineage

QUERY = """\
define GIORNO='2026-01-19' --Obbligatorio: giorno
SELECT t.BARCODE, s.NAME FROM TRACES t JOIN SHOPS s ON s.ID = t.SHOP_ID WHERE t.DAY = '&GIORNO';
"""


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    source = tmp_path / "source.db"
    monkeypatch.setenv("AIRFLOW_CONN_LINEAGE_SQLITE", json.dumps({"conn_type": "sqlite", "host": str(source)}))
    extra = {"bootstrap.servers": "broker-1.example:9092,broker-2.example:9092"}
    monkeypatch.setenv("AIRFLOW_CONN_LINEAGE_KAFKA", json.dumps({"conn_type": "kafka", "extra": extra}))
    return source


def lineage(query: Path, summary=None):  # type: ignore[no-untyped-def]
    return export_lineage(
        conn_id="lineage_sqlite",
        sql=None,
        sql_file=str(query),
        kafka_conn_id="lineage_kafka",
        topic="pstt-traces",
        summary=summary,
    )


def test_the_tables_of_the_query_file_are_the_inputs_in_the_databases_namespace(
    connections: Path, tmp_path: Path
) -> None:
    query = tmp_path / "Q-001--Traces.sql"
    query.write_text(QUERY)

    reported = lineage(query)

    assert sorted((dataset.namespace, dataset.name) for dataset in reported.inputs) == [
        (f"sqlite://{connections}", "main.SHOPS"),
        (f"sqlite://{connections}", "main.TRACES"),
    ]
    assert ":GIORNO" in reported.job_facets["sql"].query


def test_the_topic_is_the_output_with_what_the_try_delivered(connections: Path, tmp_path: Path) -> None:
    query = tmp_path / "Q-001--Traces.sql"
    query.write_text(QUERY)
    summary = dataclasses.replace(tried("d", "pstt-traces", 40, 0, []), bytes=4096)

    [output] = lineage(query, summary).outputs

    assert (output.namespace, output.name) == ("kafka://broker-1.example:9092", "pstt-traces")
    statistics = output.outputFacets["outputStatistics"]
    assert (statistics.rowCount, statistics.size) == (40, 4096)

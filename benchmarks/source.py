"""
The benchmark's source table: N shipment-trace rows shaped like the seed's traces, built by PostgreSQL itself.

``generate_series`` builds a million rows in seconds, and a table already holding the requested shape and row count
is reused, so repeated ``make bench`` runs only pay for what they measure.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import psycopg

SHAPE_VERSION = 3
"""3: TRACE_ID, a numeric column in the table's physical order, for the parallel variants' split."""
SPLIT_COLUMN = "TRACE_ID"
"""pstt_parallel_N's split_by: BARCODE, the key, is text, and a split needs numbers, dates or timestamps."""

PG = {
    "host": os.environ.get("PSTT_PG_HOST", "127.0.0.1"),
    "port": int(os.environ.get("PSTT_PG_PORT", "5432")),
    "user": os.environ.get("PSTT_PG_USER", "pstt"),
    "password": os.environ.get("PSTT_PG_PASSWORD", "pstt"),
    "dbname": os.environ.get("PSTT_PG_DB", "pstt"),
}

_COLUMNS = """
    "BARCODE" varchar(20) NOT NULL,
    "TRKDATE" date NOT NULL,
    "ARRIVETIMESTAMP" timestamp NOT NULL,
    "STATUS" varchar(16) NOT NULL,
    "OFFICE_CODE" varchar(8) NOT NULL,
    "CUSTOMER_ID" integer NOT NULL,
    "WEIGHT_KG" numeric(9, 3) NOT NULL,
    "AMOUNT_EUR" numeric(10, 2) NOT NULL,
    "PIECES" smallint NOT NULL,
    "IS_RETURN" boolean NOT NULL,
    "DEST_ZIP" char(5) NOT NULL,
    "NOTE" text,
    "TRACE_ID" bigint NOT NULL
"""

# Modulo is written %% because the statement carries the bind parameter %(rows)s.
_ROWS = """
SELECT
    'PS' || lpad(i::text, 12, '0'),
    date '2026-01-01' + (i %% 60)::int,
    timestamp '2026-01-01 06:00:00' + (i %% 60) * interval '1 day' + (i * 7919 %% 50400000) * interval '1 millisecond',
    (ARRAY['ACCETTATO', 'IN_TRANSITO', 'IN_CONSEGNA', 'CONSEGNATO', 'GIACENZA', 'RESO'])[1 + i %% 6],
    'UP' || lpad((i %% 3000)::text, 5, '0'),
    (i * 13 %% 250000)::int,
    round((i * 37 %% 50000) / 1000.0 + 0.1, 3),
    round((i * 7919 %% 100000) / 100.0, 2),
    (1 + i %% 5)::smallint,
    i %% 17 = 0,
    lpad((i * 31 %% 100000)::text, 5, '0'),
    CASE WHEN i %% 5 = 0 THEN NULL ELSE 'Citofono ' || (i %% 97) END,
    i
FROM generate_series(1::bigint, %(rows)s) AS i
"""


@dataclass(frozen=True)
class SourceTable:
    name: str
    rows: int

    @property
    def select(self) -> str:
        return f"SELECT * FROM {self.name}"


def table_name(rows: int) -> str:
    return f"pstt_bench_traces_{rows}"


def _marker(rows: int) -> str:
    return f"pstt-bench shape v{SHAPE_VERSION} rows={rows}"


def ensure_table(rows: int) -> SourceTable:
    """The table of ``rows`` rows, created (or recreated when its shape or size is stale) only when needed."""
    name = table_name(rows)
    with psycopg.connect(**PG) as conn:
        comment = conn.execute("SELECT obj_description(to_regclass(%s), 'pg_class')", (name,)).fetchone()[0]
        if comment == _marker(rows):
            return SourceTable(name, rows)
        conn.execute(f"DROP TABLE IF EXISTS {name}")
        conn.execute(f"CREATE TABLE {name} ({_COLUMNS})")
        conn.execute(f"INSERT INTO {name} {_ROWS}", {"rows": rows})
        # After the rows, so it is built once instead of row by row. The variants' SELECT * still scans the
        # table; pstt_exactly_once_checkpointed's ORDER BY "BARCODE" reads this index, streaming from its first
        # row as a job ordered by its key does, instead of sorting the whole table before it.
        conn.execute(f'ALTER TABLE {name} ADD PRIMARY KEY ("BARCODE")')
        # Each pstt_parallel_N part reads one range of it: through this index, a contiguous stretch of the table.
        conn.execute(f'CREATE INDEX {name}_trace_id ON {name} ("{SPLIT_COLUMN}")')
        conn.execute(f"COMMENT ON TABLE {name} IS '{_marker(rows)}'")
        conn.execute(f"ANALYZE {name}")
    return SourceTable(name, rows)


def row_json_bytes(table: SourceTable, sample: int = 2_000) -> float:
    """Mean size of a row as a JSON object: the byte basis of fetch_only's MB/s."""
    import orjson

    with psycopg.connect(**PG) as conn:
        cursor = conn.execute(f"{table.select} LIMIT {int(sample)}")
        columns = [d.name for d in cursor.description]
        sizes = [len(orjson.dumps(dict(zip(columns, row, strict=True)), default=str)) for row in cursor]
    return sum(sizes) / len(sizes)

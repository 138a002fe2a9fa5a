"""
Builds the demo source database: a SQLite EXPORT_TABLE of generated shipment traces.

Rows cover the ten days up to today, so the demo job (which reads the day before its run) always finds data.
Re-running keeps an existing database.
"""

from __future__ import annotations

import random
import sqlite3
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

ROWS_PER_DAY = 400
STATUSES = ["ACCETTATO", "IN_TRANSITO", "IN_CONSEGNA", "CONSEGNATO", "GIACENZA"]
CITIES = [("Forlì", "47121"), ("Milano", "20121"), ("Roma", "00184"), ("Napoli", "80133"), ("Aosta", "11100")]
SERVICES = ["STD", "EXP", "PRI", "RAC"]


def build(path: Path) -> int:
    if path.exists():
        with sqlite3.connect(path) as db:
            return db.execute("SELECT COUNT(*) FROM EXPORT_TABLE").fetchone()[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(20260120)
    rows = []
    today = date.today()
    for back in range(10, -1, -1):
        day = today - timedelta(days=back)
        for n in range(ROWS_PER_DAY):
            city, zip_code = rng.choice(CITIES)
            arrived = datetime(day.year, day.month, day.day) + timedelta(seconds=rng.randrange(86_400))
            rows.append(
                (
                    f"RR{day:%y%m%d}{n:05d}IT",
                    day.isoformat(),
                    arrived.isoformat(sep=" "),
                    rng.choice(STATUSES),
                    rng.choice(SERVICES),
                    city,
                    zip_code,
                    rng.randint(1, 5),
                    round(rng.uniform(0.1, 30.0), 3),
                    f"{rng.randint(0, 50_000) / 100:.2f}",
                    f"CP{rng.randint(100, 999)}",
                    None if rng.random() < 0.7 else "Consegna al portiere",
                    "N" if rng.random() < 0.98 else "Y",
                )
            )
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    with sqlite3.connect(tmp) as db:
        db.execute(
            """CREATE TABLE EXPORT_TABLE (
                BARCODE TEXT PRIMARY KEY, TRKDATE TEXT NOT NULL, ARRIVETIMESTAMP TEXT NOT NULL,
                STATUS TEXT NOT NULL, SERVICE_CODE TEXT, DEST_CITY TEXT, DEST_ZIP TEXT, PIECES INTEGER,
                WEIGHT_KG REAL, COD_AMOUNT TEXT, SCAN_POINT TEXT, NOTE TEXT, TEST_FLAG TEXT NOT NULL)"""
        )
        db.execute("CREATE INDEX EXPORT_TABLE_TRKDATE ON EXPORT_TABLE (TRKDATE)")
        db.executemany("INSERT INTO EXPORT_TABLE VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    tmp.rename(path)
    return len(rows)


if __name__ == "__main__":
    target = (
        Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / ".cache/demo/traces.db"
    )
    print(f"demo database: {target} ({build(target)} traces)")

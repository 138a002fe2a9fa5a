"""
Airflow homes of the tests' own, so no test's runs mix into another's metrics: each gets a copy of one
metadata DB that ``airflow db migrate`` made once per session (a migration costs seconds, a copy nothing).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.engine import Engine


def airflow_env(home: Path) -> dict[str, str]:
    """This process's environment pointed at another Airflow home and its SQLite DB."""
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }


def migrate(home: Path) -> Path:
    """Runs ``airflow db migrate`` on ``home``; returns its metadata DB."""
    home.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True, env=airflow_env(home)
    )
    return home / "airflow.db"


def copy_home(migrated_db: Path, home: Path) -> Path:
    """
    Makes ``home`` an Airflow home (``dags/`` and a copy of ``migrated_db``); returns it. The copy goes through
    SQLite's backup API, so it is whole even where a process of the session already has the target open.
    """
    (home / "dags").mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(migrated_db) as source, sqlite3.connect(home / "airflow.db") as target:
        source.backup(target)
    return home


def metadata_engine(home: Path) -> Engine:
    return create_engine(f"sqlite:///{home}/airflow.db")

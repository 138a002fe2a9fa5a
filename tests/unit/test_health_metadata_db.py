"""
How ``pstt health`` finds the metadata database before importing Airflow, as the ``airflow`` command would:
the environment over airflow.cfg over the default SQLite file, and a missing or empty database named in one
line without creating anything.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pstt_provider import metadata_db


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No AIRFLOW_* variable (the session's test settings removed) and a HOME of the test's own."""
    import os

    for name in [name for name in os.environ if name.startswith("AIRFLOW")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def airflow_db(path: Path, tables: tuple[str, ...] = ("alembic_version", "dag")) -> Path:
    with sqlite3.connect(path) as connection:
        for table in tables:
            connection.execute(f"CREATE TABLE {table} (x)")
    return path


def test_the_default_is_the_sqlite_file_in_the_default_airflow_home(clean_env):
    home = metadata_db.airflow_home()
    assert home == clean_env / "airflow"
    assert (
        metadata_db.configured_sql_alchemy_conn(home, metadata_db.airflow_config(home))
        == f"sqlite:///{home}/airflow.db"
    )


def test_the_environment_wins_over_airflow_cfg_which_wins_over_the_default(clean_env, monkeypatch):
    home = clean_env / "af"
    home.mkdir()
    (home / "airflow.cfg").write_text("[database]\nsql_alchemy_conn = sqlite:///$HOME/from-cfg.db\n")
    monkeypatch.setenv("AIRFLOW_HOME", str(home))
    config = metadata_db.airflow_config(metadata_db.airflow_home())
    assert metadata_db.configured_sql_alchemy_conn(home, config) == f"sqlite:///{clean_env}/from-cfg.db"
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql://u@db/airflow")
    assert metadata_db.configured_sql_alchemy_conn(home, config) == "postgresql://u@db/airflow"


@pytest.mark.parametrize(
    ("env", "cfg"),
    [
        ({"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD": "cat /run/secret"}, ""),
        ({}, "[database]\nsql_alchemy_conn_secret = airflow-db\n"),
        ({}, "[database]\nsql_alchemy_conn = sqlite:///{AIRFLOW_HOME}/airflow.db\n"),
    ],
    ids=["cmd-in-env", "secret-in-cfg", "template"],
)
def test_a_url_given_indirectly_is_left_to_airflow(clean_env, monkeypatch, env, cfg):
    home = clean_env / "af"
    home.mkdir()
    if cfg:
        (home / "airflow.cfg").write_text(cfg)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert metadata_db.configured_sql_alchemy_conn(home, home / "airflow.cfg") is None


def test_a_missing_database_is_one_line_naming_what_to_set_and_nothing_is_created(clean_env):
    problem = metadata_db.metadata_db_problem()
    assert problem == (
        f"no Airflow metadata database at {clean_env / 'airflow' / 'airflow.db'} (AIRFLOW_HOME is not set, so "
        f"{clean_env / 'airflow'}, without airflow.cfg): {metadata_db.WHAT_TO_SET}"
    )
    assert "\n" not in problem
    assert list(clean_env.iterdir()) == []


def test_an_uninitialised_sqlite_file_is_named_and_left_as_it_was(clean_env, monkeypatch):
    path = airflow_db(clean_env / "other.db", tables=("something_else",))
    before = path.read_bytes()
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{path}")
    problem = metadata_db.metadata_db_problem()
    assert problem.startswith(f"{path} is not an initialised Airflow metadata database")
    assert "airflow db migrate" in problem
    assert path.read_bytes() == before
    assert sorted(item.name for item in clean_env.iterdir()) == ["other.db"]  # no journal, no WAL left behind


def test_an_initialised_sqlite_database_passes_and_a_server_url_is_checked_through_airflow(clean_env, monkeypatch):
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{airflow_db(clean_env / 'ok.db')}")
    assert metadata_db.metadata_db_problem() is None
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql+psycopg2://u:p@127.0.0.1:1/airflow")
    assert metadata_db.metadata_db_problem() is None

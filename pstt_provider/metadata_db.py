"""
Where Airflow's metadata database is and whether it is there, found as the ``airflow`` command finds it
(``AIRFLOW_HOME``, default ``~/airflow``, its ``airflow.cfg`` or ``AIRFLOW_CONFIG``, and
``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` over both), so that ``pstt health`` can refuse in one line.

Importing Airflow creates ``$AIRFLOW_HOME/logs`` and connecting to a missing SQLite file creates that file, so
:func:`metadata_db_problem` imports no Airflow and reads SQLite read-only; :func:`database_problem` is the check
once Airflow may be imported.
"""

from __future__ import annotations

import configparser
import os
import sqlite3
from contextlib import closing
from pathlib import Path
from urllib.parse import quote

WHAT_TO_SET = (
    "set AIRFLOW_HOME to the Airflow home whose airflow.cfg names the metadata database, "
    "or AIRFLOW__DATABASE__SQL_ALCHEMY_CONN to the database's URL"
)


def _expand(value: str) -> str:
    """As Airflow expands its settings: environment variables, then ``~``."""
    return os.path.expanduser(os.path.expandvars(value))


def airflow_home() -> Path:
    return Path(_expand(os.environ.get("AIRFLOW_HOME", "~/airflow")))


def airflow_config(home: Path) -> Path:
    return Path(_expand(os.environ["AIRFLOW_CONFIG"])) if os.environ.get("AIRFLOW_CONFIG") else home / "airflow.cfg"


_INDIRECT = ("_cmd", "_secret")


def configured_sql_alchemy_conn(home: Path, config: Path) -> str | None:
    """
    The metadata DB URL Airflow will use, found without importing Airflow: the environment over airflow.cfg
    over the default SQLite file in AIRFLOW_HOME. None when it is given indirectly (``_cmd``, ``_secret``) or
    the file cannot be read: then Airflow itself resolves it.
    """
    for section in ("DATABASE", "CORE"):  # [core] sql_alchemy_conn is the deprecated spelling Airflow still reads
        name = f"AIRFLOW__{section}__SQL_ALCHEMY_CONN"
        if os.environ.get(name):
            return os.environ[name]
        if any(os.environ.get(name + suffix.upper()) for suffix in _INDIRECT):
            return None
    if config.is_file():
        parser = configparser.RawConfigParser(strict=False)
        try:
            parser.read(config, encoding="utf-8")
        except (configparser.Error, OSError, UnicodeDecodeError):
            return None
        for section in ("database", "core"):
            if not parser.has_section(section):
                continue
            if parser.get(section, "sql_alchemy_conn", fallback=""):
                value = _expand(parser.get(section, "sql_alchemy_conn"))
                return None if "{" in value else value
            if any(parser.get(section, "sql_alchemy_conn" + suffix, fallback="") for suffix in _INDIRECT):
                return None
    return f"sqlite:///{home}/airflow.db"


def _where(home: Path, config: Path) -> str:
    """Where the database was looked for, as the user set it (or did not)."""
    where = f"AIRFLOW_HOME={home}" if "AIRFLOW_HOME" in os.environ else f"AIRFLOW_HOME is not set, so {home}"
    if "AIRFLOW_CONFIG" in os.environ:
        where += f", AIRFLOW_CONFIG={config}"
    return where if config.is_file() else f"{where}, without {config.name}"


def _sqlite_problem(url: str, where: str) -> str | None:
    """Whether a SQLite URL names an initialised Airflow DB, looked at read-only (nothing is created)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        database = make_url(url).database
    except ArgumentError:
        return None  # Airflow will say what is wrong with it
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    path = Path(database)
    if not path.is_file():
        return f"no Airflow metadata database at {path} ({where}): {WHAT_TO_SET}"
    try:
        with closing(sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)) as connection:
            tables = {
                name
                for (name,) in connection.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('alembic_version', 'dag')"
                )
            }
    except sqlite3.Error as error:
        return f"cannot read the Airflow metadata database {path}: {error} ({where}): {WHAT_TO_SET}"
    if tables != {"alembic_version", "dag"}:
        return (
            f"{path} is not an initialised Airflow metadata database ({where}): run `airflow db migrate`, or "
            f"{WHAT_TO_SET}"
        )
    return None


def metadata_db_problem() -> str | None:
    """
    Why there is no Airflow metadata database to read, in one line, or None. Checked before Airflow is imported
    (importing it creates ``$AIRFLOW_HOME/logs``) and read-only, so a check run in the wrong place creates no file.
    """
    home = airflow_home()
    config = airflow_config(home)
    url = configured_sql_alchemy_conn(home, config)
    if url is None or not url.startswith("sqlite"):
        return None  # a server database: checked through Airflow (connecting to it creates nothing)
    return _sqlite_problem(url, _where(home, config))


def database_problem() -> str | None:
    """With Airflow configured: whether its metadata database answers and is initialised, in one line."""
    from airflow import settings
    from sqlalchemy import inspect
    from sqlalchemy.exc import SQLAlchemyError

    engine = settings.get_engine()
    where = _where(airflow_home(), airflow_config(airflow_home()))
    if engine.url.get_backend_name() == "sqlite":
        problem = _sqlite_problem(engine.url.render_as_string(hide_password=False), where)
        if problem:
            return problem
    try:
        with engine.connect() as connection:
            initialised = inspect(connection).has_table("alembic_version")
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        return f"cannot reach the Airflow metadata database {engine.url!r}: {reason} ({where}): {WHAT_TO_SET}"
    if not initialised:
        return f"{engine.url!r} is not an initialised Airflow metadata database: run `airflow db migrate`"
    return None

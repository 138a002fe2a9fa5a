"""
``pstt import-connections --create``: the plan handed to ``airflow connections import``'s own function.

Airflow's importer parses the file into ``Connection`` objects, checks each id, writes them and records the
command in its audit log, so a connection created here is exactly one the documented two-step migration would
create. It runs in this process: a second ``airflow`` process would only add its start-up time.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pstt_provider.connections import ConnectionImportError

# What the importer prints per connection (airflow/cli/commands/connection_command.py, _import_helper).
IMPORTED = "Imported connection {conn_id}"
ALREADY_EXISTS = "Could not import connection {conn_id}: connection already exists."


def import_connections(connections: Mapping[str, Mapping[str, Any]], *, overwrite: bool) -> list[str]:
    """
    Creates the connections in Airflow's metadata DB, replacing existing ones only with ``overwrite``; returns one
    line per connection: created, replaced or kept.

    The file Airflow reads holds the passwords, so it is private to this user (0600, in a 0700 directory) and
    deleted as soon as the import returns.
    """
    from airflow.cli.commands.connection_command import connections_import

    existing = _existing(list(connections))
    printed = io.StringIO()
    with tempfile.TemporaryDirectory(prefix="pstt-import-connections-") as folder:
        path = Path(folder) / "connections.json"
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as file:
            json.dump(connections, file)
        with contextlib.redirect_stdout(printed):
            connections_import(argparse.Namespace(file=str(path), overwrite=overwrite))
    return _report(connections, existing, printed.getvalue().splitlines())


def _existing(conn_ids: list[str]) -> set[str]:
    """The ids already in the metadata DB: the importer's own output does not tell created from replaced."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select
    from sqlalchemy.exc import OperationalError, ProgrammingError

    try:
        with create_session() as session:
            return set(session.scalars(select(Connection.conn_id).where(Connection.conn_id.in_(conn_ids))))
    except (OperationalError, ProgrammingError) as error:
        raise ConnectionImportError(
            f"cannot read Airflow's connections ({error.orig}): create the metadata database first with "
            "`airflow db migrate`, with the same AIRFLOW_HOME and AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
        ) from None


def _report(connections: Mapping[str, Mapping[str, Any]], existing: set[str], printed: list[str]) -> list[str]:
    report = []
    missing = []
    for conn_id, fields in connections.items():
        if IMPORTED.format(conn_id=conn_id) in printed:
            report.append(f"{'replaced' if conn_id in existing else 'created'} {conn_id} ({fields['conn_type']})")
        elif ALREADY_EXISTS.format(conn_id=conn_id) in printed:
            report.append(f"kept {conn_id}: it already exists (--overwrite replaces it)")
        else:
            missing.append(conn_id)
    expected = {line.format(conn_id=conn_id) for conn_id in connections for line in (IMPORTED, ALREADY_EXISTS)}
    for line in printed:
        if line not in expected:
            print(f"airflow connections import: {line}", file=sys.stderr)
    if missing:
        raise ConnectionImportError(
            f"Airflow's importer did not import {', '.join(missing)} (its output is above); "
            f"done so far: {'; '.join(report) or 'nothing'}"
        )
    return report

"""
``pstt import-connections FILE [--env-file .env] [--create [--overwrite]] [--show-secrets]``.

Without ``--create`` it prints the connections as the JSON ``airflow connections import FILE`` reads, so a
migration can also be two commands; the passwords in it are masked unless ``--show-secrets`` asks for them.
Problems are one line on standard error and exit status 1; notes about what was not carried over go to standard
error too, so standard output stays the file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pstt_provider.connections import ConnectionImportError
from pstt_provider.connections.plan import build_plan

MASK = "***"
_SECRET_WORDS = ("password", "secret")


def _masked_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {key: MASK if any(word in key.lower() for word in _SECRET_WORDS) else value for key, value in fields.items()}


def masked(connections: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """A copy with every password and secret, also those in the extra, replaced by ``***``."""
    result = {}
    for conn_id, connection in connections.items():
        copy = _masked_fields(connection)
        if isinstance(connection.get("extra"), dict):
            copy["extra"] = _masked_fields(connection["extra"])
        result[conn_id] = copy
    return result


def main(args: argparse.Namespace) -> int:
    try:
        plan = build_plan(Path(args.file), Path(args.env_file) if args.env_file else None, os.environ)
        for note in plan.notes:
            print(f"note: {note}", file=sys.stderr)
        if args.create:
            from pstt_provider.connections.airflow_import import import_connections

            for line in import_connections(plan.connections, overwrite=args.overwrite):
                print(line)
            return 0
    except ConnectionImportError as error:
        print(f"pstt import-connections: {error}", file=sys.stderr)
        return 1
    connections = plan.connections if args.show_secrets else masked(plan.connections)
    print(json.dumps(connections, indent=2))
    if not args.show_secrets and connections != plan.connections:
        print(
            "note: secrets are shown as ***; for a file `airflow connections import` can load, add --show-secrets "
            "(and keep the file private), or create them directly with --create",
            file=sys.stderr,
        )
    return 0

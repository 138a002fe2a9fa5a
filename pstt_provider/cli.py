"""
The ``pstt`` command.

Each subcommand lives in the module that owns its subject; this file only parses arguments, so that
``pstt validate`` never imports the plugin and ``pstt health`` never imports the factory.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pstt", description="PSTT jobs on Apache Airflow: specs, connections, health."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser("validate", help="check job specs and their query files")
    validate.add_argument("paths", nargs="*", metavar="PATH", help="spec files or folders (default: $PSTT_JOBS_DIR)")

    render = commands.add_parser("render", help="show the DAG a spec becomes, without touching any DB or broker")
    render.add_argument("spec", metavar="SPEC")
    render.add_argument("--json", action="store_true", help="machine-readable output")
    render.add_argument(
        "--logical-date",
        metavar="WHEN",
        help="render the parameters for a run at WHEN (ISO 8601; no offset = the job's timezone; default: now)",
    )

    commands.add_parser("schema", help="print the JSON Schema of a job spec")

    imports = commands.add_parser(
        "import-connections", help="turn PSTT Tool's connections.json into Airflow connections"
    )
    imports.add_argument("file", metavar="FILE", help="PSTT Tool connections.json")
    imports.add_argument("--env-file", help="a .env file whose KAFKA_* variables configure the Kafka connections")
    imports.add_argument("--create", action="store_true", help="create the connections in Airflow instead of printing")
    imports.add_argument("--show-secrets", action="store_true", help="print passwords instead of masking them")
    imports.add_argument("--overwrite", action="store_true", help="with --create: replace connections that exist")

    health = commands.add_parser("health", help="the daily health check: exit 0 ok, 1 warning, 2 critical")
    health.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in ("validate", "render", "schema"):
        from pstt_provider.factory import commands

        return getattr(commands, args.command)(args)
    if args.command == "import-connections":
        from pstt_provider import connections

        return connections.main(args)
    from pstt_provider import health

    return health.main(args)


if __name__ == "__main__":
    sys.exit(main())

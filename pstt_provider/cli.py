"""
The ``pstt`` command.

Each subcommand lives in the module that owns its subject; this file only parses arguments, so that
``pstt validate`` never imports the plugin and ``pstt health`` never imports the factory.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

# What a shell reports for a program killed by SIGPIPE (128 + 13): `pstt health | head` must not read as "warning".
EXIT_BROKEN_PIPE = 141


def _logical_date(value: str) -> str:
    """
    Checks ``--logical-date`` as ``pstt render`` will read it, so a typo is a usage error and not a traceback;
    the text itself is kept, because a value without an offset means the job's timezone, known only later.
    """
    import pendulum

    try:
        parsed = pendulum.parse(value, tz="UTC")
    except (ValueError, OverflowError):
        parsed = None
    if not isinstance(parsed, pendulum.DateTime):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a date and time; expected ISO 8601 such as 2026-01-21T02:00:00, "
            "2026-01-21T02:00:00+01:00 or 2026-01-21"
        )
    return value


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
        type=_logical_date,
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
    try:
        try:
            return _run(_parser().parse_args(argv))
        finally:
            sys.stdout.flush()  # here, not at exit, so a closed pipe is caught below (also after --help)
    except BrokenPipeError:
        # The reader went away (`pstt render --json | head -1`): stop quietly. Python would flush stdout again at
        # exit and print "Exception ignored ... BrokenPipeError", so what is left goes to /dev/null instead.
        _silence_stdout()
        return EXIT_BROKEN_PIPE


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass  # stdout is not a file descriptor (an embedding or a test's capture): nothing will flush it at exit


def _run(args: argparse.Namespace) -> int:
    if args.command in ("validate", "render", "schema"):
        from pstt_provider.factory import commands

        return getattr(commands, args.command)(args)
    if args.command == "import-connections":
        from pstt_provider.connections import cli as connections_cli

        return connections_cli.main(args)
    from pstt_provider import health

    return health.main(args)


if __name__ == "__main__":
    sys.exit(main())

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

    _state_parser(commands)
    return parser


def _seconds(value: str) -> float:
    """``--timeout``: a usage error, not a traceback, for what is not a finite number of seconds above 0."""
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds above 0")
    return seconds


def _state_parser(commands: argparse._SubParsersAction) -> None:
    """``pstt state show|set|reset SPEC``: the stored position of an incremental (or checkpointed) job."""
    job = argparse.ArgumentParser(add_help=False)
    job.add_argument("spec", metavar="SPEC", help="the job spec file, e.g. dags/jobs/traces.json")
    job.add_argument(
        "--timeout", type=_seconds, default=30.0, metavar="SECONDS", help="wait for Kafka this long (default: 30)"
    )
    writes = argparse.ArgumentParser(add_help=False)
    writes.add_argument(
        "--force",
        action="store_true",
        help="write even when Airflow's metadata database cannot be found to check that no run is active",
    )
    state = commands.add_parser(
        "state", help="show, set or reset a job's position (where its next incremental run starts)"
    )
    actions = state.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser("show", parents=[job], help="print the position stored for the job")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    move = actions.add_parser(
        "set", parents=[job, writes], help="move the position: the next run reads the rows after it"
    )
    move.add_argument(
        "--to",
        required=True,
        metavar="VALUE[,TIEBREAKER]",
        help="one value per order column (incremental column[,tiebreaker], or order_by), split on commas, so a "
        "value cannot contain one; typed like the stored value, e.g. 2026-01-20T10:00:00+00:00,1500",
    )
    actions.add_parser(
        "reset", parents=[job, writes], help="clear the position: the next run starts from incremental.initial"
    )


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
    if args.command == "state":
        from pstt_provider import state_commands

        return state_commands.main(args)
    if args.command == "import-connections":
        from pstt_provider.connections import cli as connections_cli

        return connections_cli.main(args)
    from pstt_provider import health

    return health.main(args)


if __name__ == "__main__":
    sys.exit(main())

"""
What `pstt` says for bad arguments, for a reader that goes away and for `render --json` of a broken spec: one line,
a JSON document or nothing, never a traceback.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pstt_provider import cli

ROOT = Path(__file__).resolve().parents[2]
PSTT = str(Path(sys.executable).with_name("pstt"))
BROKEN_SPEC = "tests/fixtures/specs/broken/unknown_template.json"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PSTT, *args], capture_output=True, text=True, cwd=ROOT, timeout=300, env=os.environ)


@pytest.mark.parametrize(
    "args",
    [("render", "dags/jobs/demo_traces.json", "--json"), ("render", "dags/jobs/demo_traces.json"), ("schema",)],
)
def test_a_reader_that_stops_early_ends_the_command_quietly(args):
    process = subprocess.Popen(
        [PSTT, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=os.environ, text=True
    )
    process.stdout.close()  # like `| head -1` exiting before pstt has written anything
    stderr = process.stderr.read()
    assert process.wait(timeout=300) == 141
    assert stderr == ""


def test_a_logical_date_that_is_not_a_date_is_one_error_line_and_exit_2():
    result = run("render", "dags/jobs/demo_traces.json", "--logical-date", "notadate")

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "pstt render: error: argument --logical-date: 'notadate' is not a date and time; expected ISO 8601 such as "
        "2026-01-21T02:00:00, 2026-01-21T02:00:00+01:00 or 2026-01-21"
    )


def test_render_json_of_a_broken_spec_prints_its_problems_as_json_and_exits_1():
    result = run("render", BROKEN_SPEC, "--json")

    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["valid"] is False
    assert document["problems"][0]["file"] == BROKEN_SPEC
    assert document["problems"][0]["field"] == "parameters.DATA"
    assert document["problems"][0]["reason"].startswith("unknown template {dat-1}")


def test_render_of_a_broken_spec_without_json_keeps_one_line_per_problem():
    result = run("render", BROKEN_SPEC)

    assert result.returncode == 1
    assert result.stdout.startswith(f"{BROKEN_SPEC}: parameters.DATA: unknown template")


@pytest.mark.parametrize("value", ["notadate", "P1D", "2026-13-45", "99999-01-01"])
def test_a_logical_date_that_is_not_a_date_and_time_is_a_usage_error_naming_it(capsys, value):
    with pytest.raises(SystemExit) as info:
        cli.main(["render", "any.json", "--logical-date", value])

    assert info.value.code == 2
    error = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("usage:")]
    assert error == [
        f"pstt render: error: argument --logical-date: {value!r} is not a date and time; expected ISO 8601 such as "
        "2026-01-21T02:00:00, 2026-01-21T02:00:00+01:00 or 2026-01-21"
    ]


@pytest.mark.parametrize(
    "value", ["2026-01-21T02:00:00", "2026-01-21T02:00:00+01:00", "2026-01-21", "2026-01-21 02:00"]
)
def test_a_logical_date_pendulum_reads_is_passed_on_unchanged(value):
    args = cli._parser().parse_args(["render", "any.json", "--logical-date", value])

    assert args.logical_date == value


class ClosedPipe(io.StringIO):
    """A stdout whose reader has gone away, as after `| head -1`."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


@pytest.mark.parametrize("flush_only", [False, True])
def test_a_closed_stdout_ends_any_subcommand_quietly_with_141(monkeypatch, capsys, flush_only):
    pipe = ClosedPipe()
    if flush_only:  # the output fitted in the buffer: the error comes with the final flush
        monkeypatch.setattr(pipe, "write", lambda text: len(text))
    monkeypatch.setattr("sys.stdout", pipe)

    assert cli.main(["schema"]) == cli.EXIT_BROKEN_PIPE
    assert capsys.readouterr().err == ""

"""``pstt state set --to``: one value per order column, each typed like the stored position's when there is one."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from pstt_provider.cli import _parser
from pstt_provider.job_state import JobState
from pstt_provider.state_commands import Job, StateCommandError, parse_position

COLUMNS = ("updated_at", "id")
AWARE = dt.datetime(2026, 1, 20, 10, 0, tzinfo=dt.UTC)


def stored(columns=COLUMNS, position=(AWARE, 41)) -> JobState:
    return JobState(columns=columns, position=position, run_id="manual__1")


def test_without_a_stored_position_values_are_typed_as_they_read():
    assert parse_position("2026-01-20T10:00:00+00:00, 1500", COLUMNS, None) == (AWARE, 1500)
    assert parse_position("2026-01-20", ("day",), None) == (dt.date(2026, 1, 20),)
    assert parse_position("12.50", ("amount",), None) == (Decimal("12.50"),)
    assert parse_position("RR-17", ("code",), None) == ("RR-17",)


def test_values_are_typed_like_the_stored_values_of_the_same_columns():
    # 1500 reads as an integer, but the stored tiebreaker is text: it stays text, and compares as text.
    assert parse_position(
        "2026-01-21T00:00:00+00:00,1500", ("UPDATED_AT", "code"), stored(("updated_at", "code"), (AWARE, "RR1"))
    ) == (
        dt.datetime(2026, 1, 21, tzinfo=dt.UTC),
        "1500",
    )


def test_a_timestamp_without_the_stored_offset_is_refused():
    with pytest.raises(StateCommandError, match=r"updated_at: .* timestamps are with a time zone offset"):
        parse_position("2026-01-20T10:00:00,5", COLUMNS, stored())


def test_a_record_for_other_columns_does_not_type_the_new_ones():
    assert parse_position("7", ("id",), stored(("updated_at",), (AWARE,))) == (7,)


@pytest.mark.parametrize("text", ["2026-01-20T10:00:00+00:00", "2026-01-20T10:00:00+00:00,5,6"])
def test_the_number_of_values_must_match_the_order_columns(text):
    with pytest.raises(StateCommandError, match=r"the job orders by 2 \(updated_at, id\): give UPDATED_AT,ID"):
        parse_position(text, COLUMNS, None)


def test_an_empty_value_is_refused():
    with pytest.raises(StateCommandError, match="the value of id is empty"):
        parse_position("2026-01-20T10:00:00+00:00, ", COLUMNS, None)


def test_a_number_that_is_not_one_is_refused_naming_the_column():
    with pytest.raises(StateCommandError, match="id: 'x1' is not a valid integer"):
        parse_position("2026-01-20T10:00:00+00:00,x1", COLUMNS, stored())


@pytest.mark.parametrize(
    ("job", "said"),
    [
        (Job("d", "t", "k", "at_least_once", ("id",), True, 3), "starts from incremental.initial (3, inclusive)"),
        (Job("d", "t", "k", "at_least_once", ("id",), True), "starts from the first row"),
        (Job("d", "t", "k", "at_least_once", ("id", "n"), False), "reads every row (in order of id, n)"),
    ],
)
def test_where_the_next_run_starts_without_a_position(job, said):
    assert said in job.next_start()


def test_the_command_line_keeps_the_issue_s_names():
    show = _parser().parse_args(["state", "show", "dags/jobs/x.json", "--json"])
    move = _parser().parse_args(["state", "set", "dags/jobs/x.json", "--to", "2026-01-20T10:00:00,7", "--force"])
    reset = _parser().parse_args(["state", "reset", "dags/jobs/x.json", "--timeout", "5"])

    assert (show.action, show.spec, show.json, show.timeout) == ("show", "dags/jobs/x.json", True, 30.0)
    assert (move.action, move.to, move.force) == ("set", "2026-01-20T10:00:00,7", True)
    assert (reset.action, reset.force, reset.timeout) == ("reset", False, 5.0)


@pytest.mark.parametrize(
    "argv", [["set", "x.json"], ["show", "x.json", "--force"], ["reset", "x.json", "--timeout", "inf"]]
)
def test_usage_errors_exit_2(argv):
    with pytest.raises(SystemExit) as exit_:
        _parser().parse_args(["state", *argv])
    assert exit_.value.code == 2

"""PSTT parameter templates -> Jinja, rendered the way Airflow renders them (StrictUndefined, the job's zone)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import jinja2
import pendulum
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pstt_provider.factory import templates


def render(value: str, timezone: str, *, logical_date=None, run_after=None) -> str:
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined)  # noqa: S701 - text for SQL binds, not HTML
    environment.globals[templates.RUN_TIME_MACRO] = templates.run_time
    context = {"dag_run": SimpleNamespace(run_after=run_after or logical_date)}
    if logical_date is not None:
        context["logical_date"] = logical_date
    expression = templates.translate(value, timezone).expression
    return environment.from_string("{{ " + expression + " }}").render(context)


AT_1030_UTC = pendulum.datetime(2026, 1, 20, 10, 30, tz="UTC")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("{date}", "2026-01-20"),
        ("{date-1}", "2026-01-19"),
        ("{date-7}", "2026-01-13"),
        ("{date+1}", "2026-01-21"),
        ("{datetime}", "2026-01-20 10:30:00"),
        ("{timestamp}", "1768905000"),
        ("{year}", "2026"),
        ("{month}", "01"),
        ("{day}", "20"),
        ("{year}-{month}-01", "2026-01-01"),
        ("traces_{date}.csv", "traces_2026-01-20.csv"),
        ("no template", "no template"),
        ("", ""),
    ],
)
def test_the_design_table_renders_for_a_run_at_1030_utc(value: str, expected: str) -> None:
    assert render(value, "UTC", logical_date=AT_1030_UTC) == expected


def test_a_run_at_0030_in_rome_is_the_20th_although_utc_is_still_the_19th() -> None:
    fired = pendulum.datetime(2026, 1, 20, 0, 30, tz="Europe/Rome")
    assert fired.in_timezone("UTC").day == 19
    assert render("{date}", "Europe/Rome", logical_date=fired) == "2026-01-20"
    assert render("{date-1}", "Europe/Rome", logical_date=fired) == "2026-01-19"
    assert render("{datetime}", "Europe/Rome", logical_date=fired) == "2026-01-20 00:30:00"


def test_timestamp_is_unix_seconds_whatever_the_zone() -> None:
    assert render("{timestamp}", "Europe/Rome", logical_date=AT_1030_UTC) == "1768905000"


def test_a_manual_run_without_logical_date_uses_run_after() -> None:
    queued = pendulum.datetime(2026, 3, 1, 23, 30, tz="UTC").naive().replace(tzinfo=pendulum.UTC)
    assert render("{date}", "Europe/Rome", run_after=queued) == "2026-03-02"


def test_offsets_cross_month_and_year_boundaries() -> None:
    new_year = pendulum.datetime(2026, 1, 1, 2, tz="UTC")
    assert render("{date-1}", "UTC", logical_date=new_year) == "2025-12-31"
    assert render("{date+31}", "UTC", logical_date=new_year) == "2026-02-01"


@pytest.mark.parametrize("text", ["it's", "back\\slash", "{{ 7*7 }}x", "{% raw %}"])
def test_literal_text_never_becomes_template_code(text: str) -> None:
    if "{" in text:
        with pytest.raises(templates.TemplateError):
            templates.translate(text, "UTC")
    else:
        assert render(text, "UTC", logical_date=AT_1030_UTC) == text


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        ("{dat-1}", "did you mean {date-1}?"),
        ("{yaer}", "did you mean {year}?"),
        ("{today}", "unknown template {today}"),
        ("{date-x}", "unknown template {date-x}"),
        ("{}", "unknown template {}"),
    ],
)
def test_anything_else_in_braces_is_named_with_a_suggestion(value: str, hint: str) -> None:
    with pytest.raises(templates.TemplateError, match=hint.replace("{", r"\{").replace("?", r"\?")):
        templates.check(value)


@pytest.mark.parametrize("value", ["{date", "date}", "{date}}", "x{y{date}"])
def test_unbalanced_braces_are_errors(value: str) -> None:
    with pytest.raises(templates.TemplateError, match="unbalanced brace"):
        templates.check(value)


def test_only_values_with_templates_are_dynamic() -> None:
    assert templates.translate("{date}", "UTC").dynamic
    assert not templates.translate("2026-01-20", "UTC").dynamic


@settings(max_examples=60, deadline=None)
@given(
    moment=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)),
    zone=st.sampled_from(["UTC", "Europe/Rome", "America/New_York", "Asia/Kolkata", "Pacific/Auckland"]),
    days=st.integers(min_value=-400, max_value=400),
)
def test_date_offsets_agree_with_calendar_arithmetic_in_any_zone(moment: datetime, zone: str, days: int) -> None:
    local = moment.astimezone(ZoneInfo(zone))
    template = "{date" + (f"+{days}" if days >= 0 else str(days)) + "}"
    expected = (local.date() + timedelta(days=days)).isoformat()
    assert render(template, zone, logical_date=pendulum.instance(moment)) == expected
    assert render("{year}{month}{day}", zone, logical_date=pendulum.instance(moment)) == local.strftime("%Y%m%d")

"""The [pstt] options: declared once in pstt_provider.options, published in the provider info, read only through it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from airflow.providers_manager import _create_provider_info_schema_validator

from pstt_provider import options
from pstt_provider.get_provider_info import get_provider_info
from pstt_provider.health import Backlog, Thresholds

PACKAGE = Path(options.__file__).resolve().parent


def test_the_provider_info_publishes_every_option_with_its_type_and_default():
    section = get_provider_info()["config"]["pstt"]

    assert {name: (declared["type"], declared["default"]) for name, declared in section["options"].items()} == {
        option.name: (option.kind, options.default_text(option)) for option in options.OPTIONS
    }
    assert all(declared["description"] for declared in section["options"].values())


def test_the_provider_info_is_valid_for_airflows_providers_manager():
    _create_provider_info_schema_validator().validate(get_provider_info())


def test_an_option_set_in_the_environment_is_read_at_call_time(monkeypatch):
    monkeypatch.setenv("AIRFLOW__PSTT__FAILED_RUNS_WARNING", "4")
    monkeypatch.setenv("AIRFLOW__PSTT__LATENCY_P99_CRITICAL_MS", "2500.5")

    limits = Thresholds.from_config()

    assert (limits.failed_runs_warning, limits.p99_critical_ms) == (4, 2500.5)


@pytest.mark.parametrize("option", options.OPTIONS, ids=lambda option: option.name)
def test_an_unset_option_reads_as_its_declared_default(option, monkeypatch):
    monkeypatch.delenv(f"AIRFLOW__PSTT__{option.name.upper()}", raising=False)

    assert option.get() == option.default
    assert type(option.get()) is type(option.default)


def test_the_health_checks_defaults_are_the_declared_ones():
    assert Thresholds() == Thresholds(
        success_rate_warning=options.SUCCESS_RATE_WARNING.default,
        success_rate_critical=options.SUCCESS_RATE_CRITICAL.default,
        p99_warning_ms=options.LATENCY_P99_WARNING_MS.default,
        p99_critical_ms=options.LATENCY_P99_CRITICAL_MS.default,
        failed_runs_warning=options.FAILED_RUNS_WARNING.default,
        failed_runs_critical=options.FAILED_RUNS_CRITICAL.default,
    )
    assert Backlog().interval_s == options.MAINTENANCE_INTERVAL_S.default


def _reads_of_the_pstt_section(path: Path) -> list[str]:
    """``conf.get*("pstt", ...)`` calls (any receiver, any getter) in one module, as ``file:line``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr.startswith("get")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and node.args[0].value == options.SECTION
        ):
            found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    return found


def test_no_module_but_the_options_module_reads_the_pstt_section_itself():
    modules = [path for path in PACKAGE.rglob("*.py") if path != Path(options.__file__).resolve()]

    assert [read for path in modules for read in _reads_of_the_pstt_section(path)] == []

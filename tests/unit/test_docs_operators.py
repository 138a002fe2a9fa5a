"""The argument table of docs/operators.md lists exactly the operator's arguments, with their real defaults."""

from __future__ import annotations

import inspect
import re

from helpers import ROOT

from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator

PAGE = ROOT / "docs" / "operators.md"


def documented() -> dict[str, str]:
    section = PAGE.read_text().split("## `SqlToKafkaOperator` arguments", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `(\w+)` \| `?([^|`]+?)`? \|", section, re.MULTILINE))


def test_the_documented_arguments_and_defaults_are_the_operators():
    parameters = {
        name: "required" if parameter.default is inspect.Parameter.empty else repr(parameter.default)
        for name, parameter in inspect.signature(SqlToKafkaOperator.__init__).parameters.items()
        if name not in {"self", "kwargs"}
    }
    assert documented() == parameters


def test_the_documented_producer_defaults_are_the_hooks():
    from pstt_provider.hooks.kafka import SAFE_PRODUCER_DEFAULTS

    section = PAGE.read_text().split("## The hook", 1)[1]
    rows = dict(re.findall(r"^\| `([a-z.]+)` \| `([^`]+)` \|", section, re.MULTILINE))
    expected = {key: str(value).lower() for key, value in SAFE_PRODUCER_DEFAULTS.items()}
    assert rows == expected

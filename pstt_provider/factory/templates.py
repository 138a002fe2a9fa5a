"""
PSTT Tool's parameter templates (``{date-1}``, ``{year}-{month}-01``, ...) translated to Jinja.

The translation happens once, at parse time, so a bad template is a validation error and the rendered
value is visible in Airflow ("Rendered Template", ``airflow tasks render``). At run time the Jinja reads
the run's logical date — the moment a cron run was scheduled to fire, or for a manual run without one,
``dag_run.run_after`` — converted to the job's time zone: Airflow's ``ds`` is UTC and would give the
previous day for a 00:30 Europe/Rome run.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pendulum
from jinja2 import pass_context

RUN_TIME_MACRO = "pstt_run_time"
PARAM_MACRO = "pstt_param"
NAMES = ("date", "datetime", "timestamp", "year", "month", "day")
MAX_OFFSET_DAYS = 36_600
_TOKEN = re.compile(r"\{([^{}]*)\}")
_DATE_OFFSET = re.compile(r"^date\s*([+-])\s*(\d+)$")
_FORMATS = {
    "date": "%Y-%m-%d",
    "datetime": "%Y-%m-%d %H:%M:%S",
    "year": "%Y",
    "month": "%m",
    "day": "%d",
}


class TemplateError(ValueError):
    """A parameter value with something in braces that is not a known template."""


@dataclass(frozen=True)
class Translation:
    """A spec value as a Jinja expression (without ``{{ }}``); ``dynamic`` when it depends on the run time."""

    expression: str
    dynamic: bool


def translate(value: str, timezone: str) -> Translation:
    """``"{year}-{month}-01"`` -> a Jinja expression that yields e.g. ``"2026-01-01"`` for the run."""
    parts: list[str] = []
    dynamic = False
    position = 0
    moment = f"{RUN_TIME_MACRO}({literal(timezone)})"
    for match in _TOKEN.finditer(value):
        if match.start() > position:
            parts.append(literal(_plain(value[position : match.start()])))
        parts.append(_token_expression(match.group(1), moment))
        dynamic = True
        position = match.end()
    if position < len(value) or not parts:
        parts.append(literal(_plain(value[position:])))
    return Translation(" ~ ".join(parts), dynamic)


def check(value: str) -> None:
    """Raise :class:`TemplateError` for anything in braces that is not a template (used by validation)."""
    translate(value, "UTC")


@pass_context
def run_time(context: Any, timezone: str) -> pendulum.DateTime:
    """
    The run's logical date in ``timezone``; for runs without one (manual runs), when the run was queued.

    A Jinja macro (``pstt_run_time``) because a template cannot test for a missing ``logical_date`` under
    Airflow's StrictUndefined, and ``dag_run.run_after`` is a plain datetime without ``in_timezone``.
    """
    moment: datetime | None = context.get("logical_date")
    if moment is None:
        moment = context["dag_run"].run_after
    return pendulum.instance(moment).in_timezone(timezone)


@pass_context
def param(context: Any, name: str) -> Any:
    """
    The run's value of the query parameter ``name``, a Jinja macro (``pstt_param``). Spec parameters match
    query defines in any case, so a trigger's ``--conf`` may too: ``{"data": ...}`` sets ``DATA``. Two
    spellings of one name in the same conf are refused rather than one picked.
    """
    conf = getattr(context.get("dag_run"), "conf", None) or {}
    spellings = sorted(key for key in conf if isinstance(key, str) and key.upper() == name.upper())
    if len(spellings) > 1:
        raise TemplateError(f"the run's conf sets {name} more than once ({', '.join(spellings)}): keep one")
    if spellings and spellings[0] != name:
        return conf[spellings[0]]
    return context["params"][name]


def _token_expression(token: str, moment: str) -> str:
    name = token.strip()
    if name in _FORMATS:
        return f"{moment}.strftime({literal(_FORMATS[name])})"
    if name == "timestamp":
        return f"{moment}.int_timestamp"
    offset = _DATE_OFFSET.match(name)
    if offset:
        if len(offset.group(2)) > len(str(MAX_OFFSET_DAYS)) or int(offset.group(2)) > MAX_OFFSET_DAYS:
            raise TemplateError(f"{{{token}}}: an offset is at most {MAX_OFFSET_DAYS:,} days (100 years)")
        days = int(offset.group(2)) * (-1 if offset.group(1) == "-" else 1)
        return f"{moment}.add(days={days}).strftime({literal(_FORMATS['date'])})"
    raise TemplateError(_unknown(token))


def _unknown(token: str) -> str:
    name = token.strip()
    number = re.search(r"\d+", name)
    offsets = [f"date-{number.group()}", f"date+{number.group()}"] if number else ["date-1", "date+1"]
    close = difflib.get_close_matches(name, [*NAMES, *offsets], n=1, cutoff=0.6)
    hint = f"; did you mean {{{close[0]}}}?" if close else ""
    known = ", ".join(f"{{{name}}}" for name in (*NAMES[:1], "date-N", "date+N", *NAMES[1:]))
    return f"unknown template {{{token}}}{hint} (known: {known})"


def _plain(text: str) -> str:
    if "{" in text or "}" in text:
        raise TemplateError(f"unbalanced brace in {text!r}: templates look like {{date}} or {{date-1}}")
    return text


def literal(text: str) -> str:
    """`text` as a Jinja string literal, so spec text can never turn into template code."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"

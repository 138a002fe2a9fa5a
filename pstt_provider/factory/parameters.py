"""
A spec's ``parameters`` against its query's ``define`` lines: one DAG Param per define (what the trigger
form shows) and the Jinja the operator's ``parameters`` render from at run time. A value typed in the
trigger form wins; otherwise a templated spec value (``{date-1}``) is evaluated per run in the job's
time zone, and a define the spec leaves out falls back to the query file's default.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from pstt_provider.factory import templates
from pstt_provider.factory.models import JobSpec
from pstt_provider.factory.problems import Report
from pstt_provider.query_file import QueryFile, QueryParam


@dataclass(frozen=True)
class ParamConfig:
    """A query ``define`` as a DAG Param: ``default`` is what the trigger form shows (the spec's value if any)."""

    name: str
    default: str | None
    required: bool
    description: str
    spec_value: str | None
    templated: bool


def compile_parameters(
    spec: JobSpec, query: QueryFile, timezone: str, scheduled: bool, report: Report
) -> tuple[tuple[ParamConfig, ...], dict[str, str]]:
    """Params for the trigger form and the Jinja per define name; what cannot be compiled is reported."""
    values = _spec_values(spec, query, report)
    params: list[ParamConfig] = []
    parameters: dict[str, str] = {}
    for define in query.params.values():
        compiled = _compile(define, values.get(define.name), timezone, scheduled, report)
        if compiled is not None:
            params.append(compiled[0])
            parameters[define.name] = "{{ " + compiled[1] + " }}"
    return tuple(params), parameters


def _spec_values(spec: JobSpec, query: QueryFile, report: Report) -> dict[str, str]:
    """The spec's values by define name (matched case-insensitively); names the query lacks are reported."""
    defines = {name.upper(): param for name, param in query.params.items()}
    values: dict[str, str] = {}
    for name, value in spec.parameters.items():
        define = defines.get(name.upper())
        if define is None:
            close = difflib.get_close_matches(name.upper(), list(defines), n=1, cutoff=0.6)
            hint = f"; did you mean {defines[close[0]].name}?" if close else ""
            known = ", ".join(param.name for param in query.params.values()) or "none"
            report(f"parameters.{name}", f"the query defines no parameter {name}{hint} (it defines: {known})")
            continue
        values[define.name] = str(value)
    return values


def _compile(
    define: QueryParam, spec_value: str | None, timezone: str, scheduled: bool, report: Report
) -> tuple[ParamConfig, str] | None:
    """The Param and the Jinja expression for one define, or None when a problem was reported."""
    reference = f"{templates.PARAM_MACRO}({templates.literal(define.name)})"
    field = f"parameters.{define.name}"
    what = f"{define.name} ({define.description or 'no description'})"
    if spec_value is None:
        default = define.default if define.default not in (None, "") or not define.required else None
        if define.required and default is None and scheduled:
            report(field, f"the query requires {what} and has no default: give it a value")
            return None
        param = ParamConfig(define.name, default, define.required, define.description, None, False)
        return param, f"{reference} if {reference} is not none else ''"
    if define.required and not spec_value.strip():
        report(field, f"the query requires {what}: an empty value would fail every run; give it a value or remove it")
        return None
    try:
        translation = templates.translate(spec_value, timezone)
    except templates.TemplateError as err:
        report(field, str(err))
        return None
    param = ParamConfig(define.name, spec_value, define.required, define.description, spec_value, translation.dynamic)
    if not translation.dynamic:
        return param, reference
    return param, f"{reference} if {reference} != {templates.literal(spec_value)} else ({translation.expression})"

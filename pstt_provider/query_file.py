"""
SQL*Plus-style query files, as PSTT Tool users write them, turned into bind-variable SQL.

A file looks like::

    -- comment
    define DATA='2026-01-20'  --Obbligatorio: Data di estrazione
    define STATUS='OK'        --Opzionale: Stato
    SELECT * FROM EXPORT_TABLE WHERE TRKDATE = TO_DATE('&DATA', 'YYYY-MM-DD') AND STATUS = :STATUS;

``define`` lines declare the parameters (the DAG's Params). Every reference in the body (``&NAME``,
``&&NAME``, ``&NAME.``, ``'&NAME'`` or ``:NAME``) becomes a bind variable in the driver's paramstyle:
values never enter the SQL text, so quotes, semicolons or comment markers in a value are only data
(:mod:`pstt_provider.sql_scanner` finds them, leaving comments and quoted text alone).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pstt_provider.sql_scanner import Layout, Paramstyle, QueryFileError, Reference, scan

REQUIRED_MARKER = "obbligatorio"
INLINE_SQL = "<inline sql>"

_DEFINE = re.compile(
    r"""^\s*def(?:ine)?\s+(?P<name>[A-Za-z_][A-Za-z0-9_$#]*)\s*=\s*
        (?:'(?P<quoted>(?:[^']|'')*)'|"(?P<dquoted>[^"]*)"|(?P<bare>[^\s-]\S*))?
        \s*(?:--\s*(?P<comment>.*))?$""",
    re.IGNORECASE | re.VERBOSE,
)
_SQLPLUS_COMMAND = re.compile(r"^\s*(?:set|prompt|spool|undefine|whenever)\b.*$|^\s*/\s*$", re.IGNORECASE)
# SQL*Plus abbreviates DEFINE down to DEF; SCAN is its obsolete ON/OFF-only synonym. SET takes several options a line.
_SET_DEFINE = re.compile(
    r"^\s*set\s+(?:.*\s)?(?P<option>def(?:i(?:n(?:e)?)?)?|scan)\s+(?P<value>[^\s;]+)", re.IGNORECASE
)


class QueryParameterError(QueryFileError):
    """Values that do not fit the query's parameters: one it does not use, or a required one without a value."""


@dataclass(frozen=True)
class QueryParam:
    name: str
    default: str | None
    required: bool
    description: str


@dataclass(frozen=True)
class BoundStatement:
    """SQL text with placeholders plus the parameter names in the order the driver expects them."""

    sql: str
    names: tuple[str, ...]
    paramstyle: Paramstyle

    def bind(self, values: Mapping[str, Any]) -> dict[str, Any] | list[Any]:
        missing = [name for name in dict.fromkeys(self.names) if name not in values]
        if missing:
            raise QueryFileError(f"no value for query parameter(s) {', '.join(missing)}")
        if self.paramstyle in ("named", "pyformat"):
            return {name: values[name] for name in dict.fromkeys(self.names)}
        if self.paramstyle == "numeric":
            return [values[name] for name in dict.fromkeys(self.names)]
        return [values[name] for name in self.names]


@dataclass(frozen=True)
class QueryFile:
    source: str
    body: str
    params: Mapping[str, QueryParam]
    references: tuple[str, ...]
    occurrences: tuple[Reference, ...] = ()
    layout: Layout = field(default_factory=Layout)

    @property
    def undeclared(self) -> tuple[str, ...]:
        """Names referenced in the body that no ``define`` line declares."""
        return tuple(name for name in dict.fromkeys(self.references) if name not in self.params)

    @property
    def undeclared_references(self) -> tuple[Reference, ...]:
        """The first use of each undeclared name, spelt as in the file (``:x`` stays ``:x``) with its line."""
        undeclared = set(self.undeclared)
        first: dict[str, Reference] = {}
        for reference in self.occurrences:
            if reference.name in undeclared:
                first.setdefault(reference.name, reference)
        return tuple(first.values())

    def statement(self, paramstyle: Paramstyle) -> BoundStatement:
        text, names, _ = scan(self.body, self._canonical_names(), self.source, paramstyle, self.layout)
        return BoundStatement(sql=text, names=tuple(names), paramstyle=paramstyle)

    def bind_values(self, parameters: Mapping[str, Any]) -> dict[str, Any]:
        """
        The value of every parameter at run time: the ``define`` defaults, overridden by ``parameters`` (names
        matched case-insensitively).

        An optional parameter (``--Opzionale``) left empty binds NULL, as SQL*Plus users expect of a blank
        optional filter; a required one, or a reference no ``define`` line declares, left empty is an error.
        """
        by_upper = self._canonical_names()
        for name in self.references:
            by_upper.setdefault(name.upper(), name)
        unknown = [name for name in parameters if name.upper() not in by_upper]
        if unknown:
            raise QueryParameterError(
                f"{self.source}: parameter(s) {', '.join(unknown)} not used by the query "
                f"(it knows: {', '.join(by_upper.values()) or 'none'})"
            )
        values: dict[str, Any] = {
            name: param.default for name, param in self.params.items() if param.default is not None
        }
        for name, value in parameters.items():
            values[by_upper[name.upper()]] = value
        optional = {name for name, param in self.params.items() if not param.required}
        for name in optional:
            if values.get(name) in (None, ""):
                values[name] = None
        required = dict.fromkeys([*self.references, *(name for name, param in self.params.items() if param.required)])
        missing = [name for name in required if name not in optional and values.get(name) in (None, "")]
        if missing:
            raise QueryParameterError(f"{self.source}: no value for required parameter(s) {', '.join(missing)}")
        return values

    def _canonical_names(self) -> dict[str, str]:
        return {name.upper(): name for name in self.params}


def load_query(sql: str | None, sql_file: str | None) -> QueryFile:
    """An operator's query: the file ``sql_file``, else the statement ``sql`` (named ``<inline sql>``)."""
    if sql_file:
        return parse_query_file(sql_file)
    return parse_query_text(sql or "", source=INLINE_SQL)


def parse_query_file(path: str | Path) -> QueryFile:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as err:
        raise QueryFileError(f"{path}: cannot read query file: {err.strerror or err}") from err
    except UnicodeDecodeError as err:
        raise QueryFileError(f"{path}: query file is not UTF-8 text ({err.reason} at byte {err.start})") from err
    return parse_query_text(text, source=str(path))


def parse_query_text(text: str, source: str = "<sql>") -> QueryFile:
    params: dict[str, QueryParam] = {}
    body_lines: list[str] = []
    file_lines: list[int] = []
    define_off: set[int] = set()
    substituting = True
    for number, line in enumerate(text.splitlines(), start=1):
        if re.match(r"^\s*def(?:ine)?\s", line, re.IGNORECASE):
            param = _parse_define(line, source, number)
            if param.name.upper() in (name.upper() for name in params):
                raise QueryFileError(f"{source}:{number}: parameter {param.name} is defined twice")
            params[param.name] = param
        elif _SQLPLUS_COMMAND.match(line):
            substituting = _set_define(line, source, number, substituting)
        else:
            body_lines.append(line)
            file_lines.append(number)
            if not substituting:
                define_off.add(number)
    body = _strip_terminator("\n".join(body_lines))
    if not body.strip() or not _has_code(body):
        raise QueryFileError(f"{source}: query file has no SQL statement")
    _check_is_a_query(body, source)
    canonical = {name.upper(): name for name in params}
    layout = Layout(tuple(file_lines), frozenset(define_off))
    _, names, occurrences = scan(body, canonical, source, "named", layout)
    return QueryFile(
        source=source,
        body=body,
        params=params,
        references=tuple(names),
        occurrences=tuple(occurrences),
        layout=layout,
    )


def to_bind_sql(
    sql: str, paramstyle: Paramstyle, canonical: Mapping[str, str] | None = None, source: str = "<sql>"
) -> BoundStatement:
    text, names, _ = scan(_strip_terminator(sql), canonical or {}, source, paramstyle, Layout())
    return BoundStatement(sql=text, names=tuple(names), paramstyle=paramstyle)


def _set_define(line: str, source: str, number: int, substituting: bool) -> bool:
    """
    Whether ``&`` substitution is on after this SQL*Plus command line: ``SET DEFINE OFF`` (or ``SET SCAN OFF``)
    makes every later ``&`` plain text, as in SQL*Plus, and ``SET DEFINE ON`` undoes it. Another substitution
    character would silently change what is a reference, so it is refused.
    """
    match = _SET_DEFINE.match(line)
    if not match:
        return substituting
    value = match["value"].strip("'\"").lower()
    if value == "off":
        return False
    if value in ("on", "&"):
        return True
    option = match["option"].upper()
    raise QueryFileError(
        f"{source}:{number}: SET {option} {match['value']} is not supported"
        + (
            "; SET SCAN takes ON or OFF"
            if option == "SCAN"
            else ": only & marks a substitution variable here; write the references as &NAME (or :NAME), "
            "or use SET DEFINE OFF to keep every & as text"
        )
    )


def _parse_define(line: str, source: str, number: int) -> QueryParam:
    match = _DEFINE.match(line)
    if not match:
        raise QueryFileError(
            f"{source}:{number}: cannot read define line {line.strip()!r}; "
            "expected: define NAME='default' --Obbligatorio: description"
        )
    default = match["quoted"]
    if default is not None:
        default = default.replace("''", "'")
    else:
        default = match["dquoted"] if match["dquoted"] is not None else match["bare"]
    comment = (match["comment"] or "").strip()
    kind, _, description = comment.partition(":")
    required = kind.strip().lower() == REQUIRED_MARKER
    return QueryParam(
        name=match["name"],
        default=default,
        required=required,
        description=description.strip() if description else comment,
    )


def _strip_terminator(sql: str) -> str:
    """Drop the trailing ``;`` or SQL*Plus ``/`` line: drivers execute one statement without a terminator."""
    previous = None
    while previous != sql:
        previous = sql
        sql = re.sub(r"(?:;|(?:^|\n)[ \t]*/)\s*$", "", sql.rstrip()).rstrip()
    return sql


def _has_code(sql: str) -> bool:
    return bool(_without_comments(sql).strip())


def _without_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*|/\*.*?\*/", "", sql, flags=re.S)


def _check_is_a_query(body: str, source: str) -> None:
    """
    A query file holds one query: it starts with SELECT or WITH (or a parenthesis). Sources also run
    read-only, but Oracle commits DDL before any read-only transaction can refuse it, so DDL, DML and
    PL/SQL blocks are refused here, at validation, before any database sees them.
    """
    first = re.match(r"\s*\(*\s*(\w+)", _without_comments(body))
    keyword = first.group(1).upper() if first else ""
    if keyword not in ("SELECT", "WITH"):
        raise QueryFileError(
            f"{source}: the statement starts with {keyword or 'nothing'}, not SELECT or WITH: a query file holds "
            "one query that reads (no DDL, DML or PL/SQL)"
        )

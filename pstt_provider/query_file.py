"""
SQL*Plus-style query files, as PSTT Tool users write them, turned into bind-variable SQL.

A file looks like::

    -- comment
    define DATA='2026-01-20'  --Obbligatorio: Data di estrazione
    define STATUS='OK'        --Opzionale: Stato
    SELECT * FROM EXPORT_TABLE WHERE TRKDATE = TO_DATE('&DATA', 'YYYY-MM-DD') AND STATUS = :STATUS;

``define`` lines declare the parameters (the DAG's Params). Every reference in the body (``&NAME``,
``&&NAME``, ``&NAME.``, ``'&NAME'`` or ``:NAME``) becomes a bind variable in the driver's paramstyle:
values never enter the SQL text, so quotes, semicolons or comment markers in a value are only data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Paramstyle = Literal["named", "pyformat", "qmark", "numeric", "format"]

REQUIRED_MARKER = "obbligatorio"

_DEFINE = re.compile(
    r"""^\s*def(?:ine)?\s+(?P<name>[A-Za-z_][A-Za-z0-9_$#]*)\s*=\s*
        (?:'(?P<quoted>(?:[^']|'')*)'|"(?P<dquoted>[^"]*)"|(?P<bare>[^\s-]\S*))?
        \s*(?:--\s*(?P<comment>.*))?$""",
    re.IGNORECASE | re.VERBOSE,
)
_AMP_REF = re.compile(r"&&?(?P<name>[A-Za-z_][A-Za-z0-9_$#]*)\.?")
_COLON_REF = re.compile(r"(?<![:\w]):(?P<name>[A-Za-z_][A-Za-z0-9_$#]*)")
_WHOLE_LITERAL_REF = re.compile(r"^&&?(?P<name>[A-Za-z_][A-Za-z0-9_$#]*)\.?$")
_SQLPLUS_COMMAND = re.compile(r"^\s*(?:set|prompt|spool|undefine|whenever)\b.*$|^\s*/\s*$", re.IGNORECASE)


class QueryFileError(ValueError):
    """A query file that cannot be turned into a bind-variable statement; the message names the file."""


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

    @property
    def undeclared(self) -> tuple[str, ...]:
        """Names referenced in the body that no ``define`` line declares."""
        return tuple(name for name in dict.fromkeys(self.references) if name not in self.params)

    def statement(self, paramstyle: Paramstyle) -> BoundStatement:
        return to_bind_sql(self.body, paramstyle, self._canonical_names(), self.source)

    def _canonical_names(self) -> dict[str, str]:
        return {name.upper(): name for name in self.params}


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
    for number, line in enumerate(text.splitlines(), start=1):
        if re.match(r"^\s*def(?:ine)?\s", line, re.IGNORECASE):
            param = _parse_define(line, source, number)
            if param.name.upper() in (name.upper() for name in params):
                raise QueryFileError(f"{source}:{number}: parameter {param.name} is defined twice")
            params[param.name] = param
        elif _SQLPLUS_COMMAND.match(line):
            continue
        else:
            body_lines.append(line)
    body = _strip_terminator("\n".join(body_lines))
    if not body.strip() or not _has_code(body):
        raise QueryFileError(f"{source}: query file has no SQL statement")
    canonical = {name.upper(): name for name in params}
    references = tuple(_scan(body, canonical, source, "named")[1])
    return QueryFile(source=source, body=body, params=params, references=references)


def to_bind_sql(
    sql: str, paramstyle: Paramstyle, canonical: Mapping[str, str] | None = None, source: str = "<sql>"
) -> BoundStatement:
    text, names = _scan(_strip_terminator(sql), canonical or {}, source, paramstyle)
    return BoundStatement(sql=text, names=tuple(names), paramstyle=paramstyle)


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
    without_comments = re.sub(r"--[^\n]*|/\*.*?\*/", "", sql, flags=re.S)
    return bool(without_comments.strip())


def _placeholder(name: str, paramstyle: Paramstyle, position: int) -> str:
    if paramstyle == "named":
        return f":{name}"
    if paramstyle == "pyformat":
        return f"%({name})s"
    if paramstyle == "numeric":
        return f":{position}"
    if paramstyle == "format":
        return "%s"
    return "?"


def _scan(sql: str, canonical: Mapping[str, str], source: str, paramstyle: Paramstyle) -> tuple[str, list[str]]:
    """
    Walk the SQL once, leaving comments, quoted identifiers and string literals alone except for
    substitution references inside literals, which become concatenated binds ('A-&X' -> 'A-' || :X).
    """
    out: list[str] = []
    names: list[str] = []
    numeric_positions: dict[str, int] = {}
    escape_percent = paramstyle in ("pyformat", "format")

    def emit_bind(raw_name: str) -> str:
        name = canonical.get(raw_name.upper(), raw_name)
        names.append(name)
        position = numeric_positions.setdefault(name, len(numeric_positions) + 1)
        return _placeholder(name, paramstyle, position)

    def plain(text: str) -> str:
        return text.replace("%", "%%") if escape_percent else text

    def code(segment: str) -> str:
        pieces: list[str] = []
        last = 0
        for match in re.finditer(
            f"{_AMP_REF.pattern}|{_COLON_REF.pattern.replace('(?P<name>', '(?P<cname>')}", segment
        ):
            pieces.append(plain(segment[last : match.start()]))
            pieces.append(emit_bind(match["name"] or match["cname"]))
            last = match.end()
        pieces.append(plain(segment[last:]))
        return "".join(pieces)

    def literal(body: str) -> str:
        whole = _WHOLE_LITERAL_REF.match(body)
        if whole:
            return emit_bind(whole["name"])
        parts: list[str] = []
        last = 0
        for match in _AMP_REF.finditer(body):
            if match.start() > last:
                parts.append(plain("'" + body[last : match.start()] + "'"))
            parts.append(emit_bind(match["name"]))
            last = match.end()
        if not parts:
            return plain("'" + body + "'")
        if last < len(body):
            parts.append(plain("'" + body[last:] + "'"))
        return "(" + " || ".join(parts) + ")"

    i = 0
    start = 0
    length = len(sql)
    while i < length:
        char = sql[i]
        if (
            char == "'"
            or (char == "-" and sql.startswith("--", i))
            or (char == "/" and sql.startswith("/*", i))
            or char == '"'
        ):
            out.append(code(sql[start:i]))
            if char == "'":
                end = i + 1
                while True:
                    end = sql.find("'", end)
                    if end == -1:
                        raise QueryFileError(f"{source}: unterminated string literal starting at {_where(sql, i)}")
                    if sql.startswith("''", end):
                        end += 2
                        continue
                    break
                out.append(literal(sql[i + 1 : end]))
                i = end + 1
            elif char == '"':
                end = sql.find('"', i + 1)
                if end == -1:
                    raise QueryFileError(f"{source}: unterminated quoted identifier starting at {_where(sql, i)}")
                out.append(plain(sql[i : end + 1]))
                i = end + 1
            elif char == "-":
                end = sql.find("\n", i)
                end = length if end == -1 else end
                out.append(plain(sql[i:end]))
                i = end
            else:
                end = sql.find("*/", i + 2)
                if end == -1:
                    raise QueryFileError(f"{source}: unterminated comment starting at {_where(sql, i)}")
                out.append(plain(sql[i : end + 2]))
                i = end + 2
            start = i
        else:
            i += 1
    out.append(code(sql[start:]))
    return "".join(out), names


def _where(sql: str, index: int) -> str:
    line = sql.count("\n", 0, index) + 1
    column = index - (sql.rfind("\n", 0, index) + 1) + 1
    return f"line {line}, column {column}"

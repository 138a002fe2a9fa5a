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

Text the database reads as data is left alone: comments, ``"identifiers"``, PostgreSQL ``$$...$$`` /
``$tag$...$tag$`` strings, and ``:NAME`` inside string literals. ``&NAME`` inside ``'...'`` and Oracle's
``q'[...]'`` literals is a reference, as SQL*Plus substitutes it there too, unless ``SET DEFINE OFF`` is in force.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
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
_CODE_REF = re.compile(f"{_AMP_REF.pattern}|{_COLON_REF.pattern.replace('(?P<name>', '(?P<cname>')}")
_WHOLE_LITERAL_REF = re.compile(r"^&&?(?P<name>[A-Za-z_][A-Za-z0-9_$#]*)\.?$")
_SQLPLUS_COMMAND = re.compile(r"^\s*(?:set|prompt|spool|undefine|whenever)\b.*$|^\s*/\s*$", re.IGNORECASE)
# SQL*Plus abbreviates DEFINE down to DEF; SCAN is its obsolete ON/OFF-only synonym. SET takes several options a line.
_SET_DEFINE = re.compile(
    r"^\s*set\s+(?:.*\s)?(?P<option>def(?:i(?:n(?:e)?)?)?|scan)\s+(?P<value>[^\s;]+)", re.IGNORECASE
)
# Oracle's alternative quoting q'[...]' (or nq'...'), not when the q ends an identifier such as ``seq'``.
_Q_QUOTE = re.compile(r"(?<![\w$#])[nN]?[qQ]'")
_Q_CLOSERS = {"[": "]", "{": "}", "<": ">", "(": ")"}
# PostgreSQL's $$...$$ and $tag$...$tag$; a $ after a letter is part of an Oracle name such as V$SESSION.
_DOLLAR_QUOTE = re.compile(r"(?<![\w$#])\$(?:[^\W\d]\w*)?\$")


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
class Reference:
    """One reference as the file spells it, so that messages quote the user's own text (``:x``, not ``&x``)."""

    name: str
    written: str
    line: int

    def __str__(self) -> str:
        return f"{self.written} (line {self.line})"


@dataclass(frozen=True)
class Layout:
    """
    Where the body's lines come from in the file, and where ``SET DEFINE OFF`` made ``&`` plain text.

    The body leaves out ``define`` and SQL*Plus command lines, so without this every line number in a message
    would be off by the lines above it.
    """

    file_lines: tuple[int, ...] = ()
    define_off: frozenset[int] = frozenset()

    def file_line(self, body_line: int) -> int:
        return self.file_lines[body_line - 1] if body_line <= len(self.file_lines) else body_line

    def substitutes(self, file_line: int) -> bool:
        return file_line not in self.define_off


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
        text, names, _ = _scan(self.body, self._canonical_names(), self.source, paramstyle, self.layout)
        return BoundStatement(sql=text, names=tuple(names), paramstyle=paramstyle)

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
    _, names, occurrences = _scan(body, canonical, source, "named", layout)
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
    text, names, _ = _scan(_strip_terminator(sql), canonical or {}, source, paramstyle, Layout())
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


def _scan(
    sql: str, canonical: Mapping[str, str], source: str, paramstyle: Paramstyle, layout: Layout
) -> tuple[str, list[str], list[Reference]]:
    """
    Walk the SQL once, leaving comments, quoted identifiers, dollar-quoted strings and string literals alone except
    for substitution references inside literals, which become concatenated binds ('A-&X' -> 'A-' || :X).
    """
    out: list[str] = []
    names: list[str] = []
    occurrences: list[Reference] = []
    numeric_positions: dict[str, int] = {}
    escape_percent = paramstyle in ("pyformat", "format")
    line_starts = [0, *(newline.end() for newline in re.finditer("\n", sql))]

    def line_at(index: int) -> int:
        return layout.file_line(bisect_right(line_starts, index))

    def where(index: int) -> str:
        column = index - line_starts[bisect_right(line_starts, index) - 1] + 1
        return f"line {line_at(index)}, column {column}"

    def emit_bind(raw_name: str, written: str, index: int) -> str:
        name = canonical.get(raw_name.upper(), raw_name)
        names.append(name)
        occurrences.append(Reference(name, written.rstrip("."), line_at(index)))
        position = numeric_positions.setdefault(name, len(numeric_positions) + 1)
        return _placeholder(name, paramstyle, position)

    def plain(text: str) -> str:
        return text.replace("%", "%%") if escape_percent else text

    def code(segment: str, offset: int) -> str:
        pieces: list[str] = []
        last = 0
        for match in _CODE_REF.finditer(segment):
            if match["name"] and not layout.substitutes(line_at(offset + match.start())):
                continue
            pieces.append(plain(segment[last : match.start()]))
            pieces.append(emit_bind(match["name"] or match["cname"], match[0], offset + match.start()))
            last = match.end()
        pieces.append(plain(segment[last:]))
        return "".join(pieces)

    def literal(body: str, offset: int, opening: str, closing: str) -> str:
        """``body`` is the text between ``opening`` and ``closing`` (``'`` and ``'``, or ``q'[`` and ``]'``)."""
        references = [match for match in _AMP_REF.finditer(body) if layout.substitutes(line_at(offset + match.start()))]
        if not references:
            return plain(opening + body + closing)
        whole = _WHOLE_LITERAL_REF.match(body)
        if whole:
            return emit_bind(whole["name"], whole[0], offset)
        parts: list[str] = []
        last = 0
        for match in references:
            if match.start() > last:
                parts.append(plain(opening + body[last : match.start()] + closing))
            parts.append(emit_bind(match["name"], match[0], offset + match.start()))
            last = match.end()
        if last < len(body):
            parts.append(plain(opening + body[last:] + closing))
        return "(" + " || ".join(parts) + ")"

    i = 0
    start = 0
    length = len(sql)
    while i < length:
        char = sql[i]
        q_quote = _Q_QUOTE.match(sql, i) if char in "nNqQ" else None
        dollar = _DOLLAR_QUOTE.match(sql, i) if char == "$" else None
        if not (
            q_quote
            or dollar
            or char in "'\""
            or (char == "-" and sql.startswith("--", i))
            or (char == "/" and sql.startswith("/*", i))
        ):
            i += 1
            continue
        out.append(code(sql[start:i], start))
        if q_quote:
            delimiter = sql[q_quote.end()] if q_quote.end() < length else ""
            if not delimiter or delimiter.isspace():
                raise QueryFileError(
                    f"{source}: q-quoted literal at {where(i)} needs a delimiter right after the quote, as in q'[text]'"
                )
            opening = sql[i : q_quote.end() + 1]
            closing = _Q_CLOSERS.get(delimiter, delimiter) + "'"
            end = sql.find(closing, q_quote.end() + 1)
            if end == -1:
                raise QueryFileError(
                    f"{source}: unterminated q-quoted literal starting at {where(i)}: it ends with {closing}"
                )
            out.append(literal(sql[q_quote.end() + 1 : end], q_quote.end() + 1, opening, closing))
            i = end + len(closing)
        elif dollar:
            end = sql.find(dollar[0], dollar.end())
            if end == -1:
                raise QueryFileError(
                    f"{source}: unterminated dollar-quoted string starting at {where(i)}: it ends with {dollar[0]}"
                )
            out.append(plain(sql[i : end + len(dollar[0])]))
            i = end + len(dollar[0])
        elif char == "'":
            end = i + 1
            while True:
                end = sql.find("'", end)
                if end == -1:
                    raise QueryFileError(f"{source}: unterminated string literal starting at {where(i)}")
                if sql.startswith("''", end):
                    end += 2
                    continue
                break
            out.append(literal(sql[i + 1 : end], i + 1, "'", "'"))
            i = end + 1
        elif char == '"':
            end = sql.find('"', i + 1)
            if end == -1:
                raise QueryFileError(f"{source}: unterminated quoted identifier starting at {where(i)}")
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
                raise QueryFileError(f"{source}: unterminated comment starting at {where(i)}")
            out.append(plain(sql[i : end + 2]))
            i = end + 2
        start = i
    out.append(code(sql[start:], start))
    return "".join(out), names, occurrences

"""
The one walk over a statement's text that turns every substitution reference into a bind placeholder.

Text the database reads as data is left alone: comments, ``"identifiers"``, PostgreSQL ``$$...$$`` /
``$tag$...$tag$`` strings, and ``:NAME`` inside string literals. ``&NAME`` inside ``'...'`` and Oracle's
``q'[...]'`` literals is a reference, as SQL*Plus substitutes it there too, unless ``SET DEFINE OFF`` is in force
(the :class:`Layout` says where). Values never enter the SQL text, so quotes, semicolons or comment markers in a
value are only data.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Literal

Paramstyle = Literal["named", "pyformat", "qmark", "numeric", "format"]

_AMP_REF = re.compile(r"&&?(?P<name>[A-Za-z_][A-Za-z0-9_$#]*)\.?")
_COLON_REF = re.compile(r"(?<![:\w]):(?P<name>[A-Za-z_][A-Za-z0-9_$#]*)")
_CODE_REF = re.compile(f"{_AMP_REF.pattern}|{_COLON_REF.pattern.replace('(?P<name>', '(?P<cname>')}")
_WHOLE_LITERAL_REF = re.compile(r"^&&?(?P<name>[A-Za-z_][A-Za-z0-9_$#]*)\.?$")
# Oracle's alternative quoting q'[...]' (or nq'...'), not when the q ends an identifier such as ``seq'``.
_Q_QUOTE = re.compile(r"(?<![\w$#])[nN]?[qQ]'")
_Q_CLOSERS = {"[": "]", "{": "}", "<": ">", "(": ")"}
# PostgreSQL's $$...$$ and $tag$...$tag$; a $ after a letter is part of an Oracle name such as V$SESSION.
_DOLLAR_QUOTE = re.compile(r"(?<![\w$#])\$(?:[^\W\d]\w*)?\$")

Token = Callable[[], tuple[str, int]]
"""Reads a quoted text or comment: its translation and the index after it."""


class QueryFileError(ValueError):
    """A query file that cannot be turned into a bind-variable statement; the message names the file."""


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


def scan(
    sql: str, canonical: Mapping[str, str], source: str, paramstyle: Paramstyle, layout: Layout
) -> tuple[str, list[str], list[Reference]]:
    """
    ``sql`` with every reference a placeholder in ``paramstyle``, the bound names in placeholder order and each
    reference as written. References inside literals become concatenated binds ('A-&X' -> 'A-' || :X); names
    take the case of their ``canonical`` spelling (keyed by upper case).
    """
    scanner = _Scanner(sql, canonical, source, paramstyle, layout)
    text = scanner.translate()
    return text, scanner.names, scanner.occurrences


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


class _Scanner:
    """One translation: the names and references it found accumulate as it goes, in the order of the text."""

    def __init__(
        self, sql: str, canonical: Mapping[str, str], source: str, paramstyle: Paramstyle, layout: Layout
    ) -> None:
        self.sql = sql
        self.canonical = canonical
        self.source = source
        self.paramstyle = paramstyle
        self.layout = layout
        self.names: list[str] = []
        self.occurrences: list[Reference] = []
        self._positions: dict[str, int] = {}
        self._escape_percent = paramstyle in ("pyformat", "format")
        self._line_starts = [0, *(newline.end() for newline in re.finditer("\n", sql))]

    def translate(self) -> str:
        out: list[str] = []
        start = i = 0
        while i < len(self.sql):
            token = self._token_at(i)
            if token is None:
                i += 1
                continue
            out.append(self._code(self.sql[start:i], start))  # first: its binds come before the token's
            text, i = token()
            out.append(text)
            start = i
        out.append(self._code(self.sql[start:], start))
        return "".join(out)

    def _token_at(self, i: int) -> Token | None:
        """What reads the quoted text or comment starting at ``i``; None inside code."""
        sql, char = self.sql, self.sql[i]
        if char in "nNqQ" and (q_quote := _Q_QUOTE.match(sql, i)):
            return partial(self._q_quoted, i, q_quote.end())
        if char == "$" and (dollar := _DOLLAR_QUOTE.match(sql, i)):
            tag = dollar[0]
            return partial(self._verbatim, i, dollar.end(), tag, "dollar-quoted string", f": it ends with {tag}")
        if char == "'":
            return partial(self._string, i)
        if char == '"':
            return partial(self._verbatim, i, i + 1, '"', "quoted identifier")
        if sql.startswith("--", i):
            return partial(self._line_comment, i)
        if sql.startswith("/*", i):
            return partial(self._verbatim, i, i + 2, "*/", "comment")
        return None

    def _verbatim(self, i: int, search_from: int, closing: str, what: str, hint: str = "") -> tuple[str, int]:
        """Text the database reads as data or ignores, up to and with ``closing``."""
        end = self.sql.find(closing, search_from)
        if end == -1:
            raise QueryFileError(f"{self.source}: unterminated {what} starting at {self._where(i)}{hint}")
        end += len(closing)
        return self._plain(self.sql[i:end]), end

    def _line_comment(self, i: int) -> tuple[str, int]:
        end = self.sql.find("\n", i)
        end = len(self.sql) if end == -1 else end
        return self._plain(self.sql[i:end]), end

    def _string(self, i: int) -> tuple[str, int]:
        end = i + 1
        while True:
            end = self.sql.find("'", end)
            if end == -1:
                raise QueryFileError(f"{self.source}: unterminated string literal starting at {self._where(i)}")
            if not self.sql.startswith("''", end):
                return self._literal(self.sql[i + 1 : end], i + 1, "'", "'"), end + 1
            end += 2

    def _q_quoted(self, i: int, quote_end: int) -> tuple[str, int]:
        sql = self.sql
        delimiter = sql[quote_end] if quote_end < len(sql) else ""
        if not delimiter or delimiter.isspace():
            raise QueryFileError(
                f"{self.source}: q-quoted literal at {self._where(i)} needs a delimiter right after the quote, "
                "as in q'[text]'"
            )
        closing = _Q_CLOSERS.get(delimiter, delimiter) + "'"
        end = sql.find(closing, quote_end + 1)
        if end == -1:
            raise QueryFileError(
                f"{self.source}: unterminated q-quoted literal starting at {self._where(i)}: it ends with {closing}"
            )
        opening = sql[i : quote_end + 1]
        return self._literal(sql[quote_end + 1 : end], quote_end + 1, opening, closing), end + len(closing)

    def _code(self, segment: str, offset: int) -> str:
        pieces: list[str] = []
        last = 0
        for match in _CODE_REF.finditer(segment):
            if match["name"] and not self.layout.substitutes(self._line_at(offset + match.start())):
                continue
            pieces.append(self._plain(segment[last : match.start()]))
            pieces.append(self._bind(match["name"] or match["cname"], match[0], offset + match.start()))
            last = match.end()
        pieces.append(self._plain(segment[last:]))
        return "".join(pieces)

    def _literal(self, body: str, offset: int, opening: str, closing: str) -> str:
        """``body`` is the text between ``opening`` and ``closing`` (``'`` and ``'``, or ``q'[`` and ``]'``)."""
        references = [
            match for match in _AMP_REF.finditer(body) if self.layout.substitutes(self._line_at(offset + match.start()))
        ]
        if not references:
            return self._plain(opening + body + closing)
        whole = _WHOLE_LITERAL_REF.match(body)
        if whole:
            return self._bind(whole["name"], whole[0], offset)
        parts: list[str] = []
        last = 0
        for match in references:
            if match.start() > last:
                parts.append(self._plain(opening + body[last : match.start()] + closing))
            parts.append(self._bind(match["name"], match[0], offset + match.start()))
            last = match.end()
        if last < len(body):
            parts.append(self._plain(opening + body[last:] + closing))
        return "(" + " || ".join(parts) + ")"

    def _bind(self, raw_name: str, written: str, index: int) -> str:
        name = self.canonical.get(raw_name.upper(), raw_name)
        self.names.append(name)
        self.occurrences.append(Reference(name, written.rstrip("."), self._line_at(index)))
        position = self._positions.setdefault(name, len(self._positions) + 1)
        return _placeholder(name, self.paramstyle, position)

    def _plain(self, text: str) -> str:
        return text.replace("%", "%%") if self._escape_percent else text

    def _line_at(self, index: int) -> int:
        return self.layout.file_line(bisect_right(self._line_starts, index))

    def _where(self, index: int) -> str:
        column = index - self._line_starts[bisect_right(self._line_starts, index) - 1] + 1
        return f"line {self._line_at(index)}, column {column}"

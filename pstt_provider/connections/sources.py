"""
Reading PSTT Tool's files strictly: connections.json and the .env, and the ``${NAME}`` references in their values.

Where a lenient reader would guess (a repeated JSON key, a .env line python-dotenv cannot parse, a Latin-1 file),
these refuse with the file and line, so what the producer gets is what the files say.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dotenv.parser import parse_stream

from pstt_provider.connections import ConnectionImportError

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ENV_NAME = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][\w.-]*)\s*=")


def _read_text(path: Path) -> str:
    """The file as UTF-8 text (a BOM allowed), or an error naming the file and the first byte that is not."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConnectionImportError(f"{path}: cannot read it: {error.strerror or error}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ConnectionImportError(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[error.start]:02x}; Windows editors often save Latin-1 "
            "as 'ANSI'): save the file as UTF-8 and run the command again"
        ) from None


def read_env_file(path: Path) -> dict[str, str | None]:
    """
    The .env's variables as python-dotenv reads them, but a line it cannot parse is an error naming the file and
    line: python-dotenv would only log "could not parse statement starting at line N" and drop the setting.
    """
    if not path.is_file():
        raise ConnectionImportError(f"{path}: no such .env file")
    values: dict[str, str | None] = {}
    for binding in parse_stream(io.StringIO(_read_text(path))):
        if binding.error:
            named = _ENV_NAME.match(binding.original.string)
            what = f"the value of {named[1]}" if named else "this line"
            raise ConnectionImportError(
                f"{path}:{binding.original.line}: cannot parse {what}; expected NAME=value, where a quoted value "
                "needs its closing quote and nothing after it but a # comment"
            )
        if binding.key is not None:
            values[binding.key] = binding.value
    return values


def read_connections_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConnectionImportError(f"{path}: no such file")
    text = _read_text(path)
    repeated: dict[int, tuple[str, int]] = {}

    def remember_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        document = dict(pairs)
        if len(document) < len(pairs):
            keys = [key for key, _ in pairs]
            first = next(key for key in keys if keys.count(key) > 1)
            repeated[id(document)] = (first, keys.count(first))
        return document

    try:
        document = json.loads(text, object_pairs_hook=remember_repeats)
    except json.JSONDecodeError as error:
        hint = " (JSON allows no comments: delete the '//' lines)" if "//" in text else ""
        raise ConnectionImportError(f"{path}:{error.lineno}:{error.colno}: {error.msg}{hint}") from None
    except RecursionError:
        raise ConnectionImportError(
            f"{path}: the JSON is nested too deeply (a connections file is three levels deep)"
        ) from None
    except ValueError as error:  # e.g. a number of more than 4300 digits
        raise ConnectionImportError(f"{path}: not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise ConnectionImportError(f"{path}: expected a JSON object with 'connections' and/or 'kafka_connections'")
    if repeated:
        _refuse_repeated_keys(document, repeated, path)
    return document


def _refuse_repeated_keys(document: dict[str, Any], repeated: Mapping[int, tuple[str, int]], path: Path) -> None:
    """
    A key given twice in one object: JSON readers keep the last one without a word, so which server or password
    PSTT Tool used is anybody's guess. The walk is iterative: the document may be as deep as json allows.
    """
    pending: list[tuple[str, Any]] = [("", document)]
    while pending:
        where, value = pending.pop()
        if isinstance(value, dict):
            if id(value) in repeated:
                key, count = repeated[id(value)]
                times = "twice" if count == 2 else f"{count} times"
                raise ConnectionImportError(
                    f"{path}: {where + '.' if where else ''}{key} appears {times}; keep one "
                    "(a JSON reader would silently use the last)"
                )
            children = [(f"{where}.{key}" if where else key, child) for key, child in value.items()]
        elif isinstance(value, list):
            children = [(f"{where}[{index}]", child) for index, child in enumerate(value)]
        else:
            continue
        pending.extend(reversed(children))


class Variables:
    """Resolves ``${NAME}`` references from the environment first, then from the .env file itself."""

    def __init__(self, env_file: Mapping[str, str | None], environ: Mapping[str, str]) -> None:
        self._file = {name: value or "" for name, value in env_file.items()}
        self._environ = environ

    def resolve(self, value: str, origin: str, _seen: frozenset[str] = frozenset()) -> str:
        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in self._environ:
                return self._environ[name]
            if name in self._file and name not in _seen:
                return self.resolve(self._file[name], origin, _seen | {name})
            raise ConnectionImportError(
                f"{origin} refers to ${{{name}}}, which is not set: export {name} or define it in the .env file"
            )

        return _REFERENCE.sub(substitute, value)

    def referenced(self) -> set[str]:
        return {name for value in self._file.values() for name in _REFERENCE.findall(value)}

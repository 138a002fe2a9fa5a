"""
Stage 1: spec files -> raw dicts. Only syntax is checked here, with the line and column of a mistake.

Specs are ``*.json``, ``*.yaml`` or ``*.yml`` anywhere below the jobs folder; files named ``_defaults.*``
hold folder defaults (see :class:`~pstt_provider.factory.models.FolderDefaults`), hidden files are ignored.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from pstt_provider.factory.problems import SpecError

SPEC_SUFFIXES = (".json", ".yaml", ".yml")
DEFAULTS_STEM = "_defaults"
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def jobs_dir(anchor: Path) -> Path:
    """``$PSTT_JOBS_DIR``, else ``dags/jobs`` below ``anchor`` (the repo root)."""
    return Path(os.environ.get("PSTT_JOBS_DIR") or anchor / "dags" / "jobs")


def queries_dir(anchor: Path) -> Path:
    """``$PSTT_QUERIES_DIR``, else ``queries`` below ``anchor`` (the repo root)."""
    return Path(os.environ.get("PSTT_QUERIES_DIR") or anchor / "queries")


def find_specs(root: Path) -> list[Path]:
    """Spec files below ``root`` (or ``root`` itself when it is a file), sorted for stable output."""
    if root.is_file():
        return [root]
    return sorted(_walk(root))


def _walk(root: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(root):
        dirs[:] = [name for name in dirs if not name.startswith((".", "__"))]
        for name in files:
            path = Path(folder, name)
            if path.suffix in SPEC_SUFFIXES and not name.startswith(".") and path.stem != DEFAULTS_STEM:
                yield path


def defaults_files(folder: Path, root: Path) -> list[Path]:
    """The ``_defaults.*`` files that apply to specs in ``folder`` (both resolved), outermost first."""
    try:
        relative = folder.relative_to(root)
    except ValueError:
        relative, root = Path(), folder
    folders = [root, *(root / Path(*relative.parts[: i + 1]) for i in range(len(relative.parts)))]
    return [
        folder / f"{DEFAULTS_STEM}{suffix}"
        for folder in folders
        for suffix in SPEC_SUFFIXES
        if (folder / f"{DEFAULTS_STEM}{suffix}").is_file()
    ]


def load(path: Path, display: str) -> dict[str, Any]:
    """The file's top-level mapping; :class:`SpecError` with line and column for bad JSON or YAML."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError.single(display, "-", f"cannot read the file: {err}") from None
    data = _load_json(text, display) if path.suffix == ".json" else _load_yaml(text, display)
    if not isinstance(data, dict):
        raise SpecError.single(display, "-", f"expected an object at the top level, found {type(data).__name__}")
    return data


def _load_json(text: str, display: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as err:
        raise SpecError.single(
            display, "-", f"invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}"
        ) from None
    except _DuplicateKey as err:
        raise SpecError.single(display, str(err), "appears twice in the same object") from None


def _load_yaml(text: str, display: str) -> Any:
    try:
        return yaml.load(text, Loader=_YAML_LOADER)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SpecError.single(display, "-", f"invalid YAML{where}: {err.problem or err.context}") from None
    except yaml.YAMLError as err:
        raise SpecError.single(display, "-", f"invalid YAML: {err}") from None


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``, recursively for objects; lists and scalars are replaced."""
    result = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = value
    return result

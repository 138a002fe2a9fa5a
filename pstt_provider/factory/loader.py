"""
Stage 1: spec files -> raw dicts. Only syntax is checked here, with the line and column of a mistake.

Specs are ``*.json``, ``*.yaml`` or ``*.yml`` anywhere below the jobs folder; files named ``_defaults.*``
hold folder defaults (see :class:`~pstt_provider.factory.models.FolderDefaults`), hidden files are ignored.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Generator, Hashable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import yaml

from pstt_provider.factory.problems import Problem, SpecError

SPEC_SUFFIXES = (".json", ".yaml", ".yml")
DEFAULTS_STEM = "_defaults"
if TYPE_CHECKING:
    _YamlBase = yaml.SafeLoader
else:  # libyaml's parser when PyYAML was built with it: the same safe constructors, parsed in C
    _YamlBase = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def jobs_dir(anchor: Path) -> Path:
    """``$PSTT_JOBS_DIR``, else ``dags/jobs`` below ``anchor`` (the repo root)."""
    return Path(os.environ.get("PSTT_JOBS_DIR") or anchor / "dags" / "jobs")


def queries_dir(anchor: Path) -> Path:
    """``$PSTT_QUERIES_DIR``, else ``queries`` below ``anchor`` (the repo root)."""
    return Path(os.environ.get("PSTT_QUERIES_DIR") or anchor / "queries")


def find_specs(root: Path) -> list[Path]:
    """Spec files below ``root`` (or ``root`` itself when it is a file), sorted; linked folders among them."""
    if root.is_file():
        return [root]
    return sorted(_walk(root))


def _walk(root: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(root):
        dirs[:] = [name for name in dirs if not name.startswith((".", "__"))]
        # os.walk does not descend into linked folders; yielding them makes each one a reported problem.
        yield from (Path(folder, name) for name in dirs if os.path.islink(Path(folder, name)))
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
    try:
        data = _load_json(text, display) if path.suffix == ".json" else _load_yaml(text, display)
    except RecursionError:
        raise SpecError.single(display, "-", "nested too deeply to be a job spec") from None
    if not isinstance(data, dict):
        raise SpecError.single(display, "-", f"expected an object at the top level, found {type(data).__name__}")
    duplicates = list(_duplicates(data, ()))
    if duplicates:
        raise SpecError([Problem(display, field, reason) for field, reason in duplicates])
    return data


def _load_json(text: str, display: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_Mapping.from_pairs)
    except json.JSONDecodeError as err:
        raise SpecError.single(
            display, "-", f"invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}"
        ) from None


def _load_yaml(text: str, display: str) -> Any:
    try:
        return yaml.load(text, Loader=_Yaml12Loader)  # noqa: S506 (a SafeLoader subclass: YAML 1.2 scalars only)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SpecError.single(display, "-", f"invalid YAML{where}: {err.problem or err.context}") from None
    except yaml.YAMLError as err:
        raise SpecError.single(display, "-", f"invalid YAML: {err}") from None


class _Mapping(dict[Hashable, Any]):
    """A loaded object that remembers the keys it held twice (and where, for YAML), to report with their path."""

    repeated: list[tuple[str, str]]

    @classmethod
    def from_pairs(cls, pairs: Sequence[tuple[Hashable, Any]], where: list[str] | None = None) -> _Mapping:
        mapping = cls()
        mapping.repeated = []
        for index, (key, value) in enumerate(pairs):
            if key in mapping:
                mapping.repeated.append((str(key), where[index] if where else ""))
            mapping[key] = value
        return mapping


def _duplicates(value: Any, path: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    """(field path, reason) for every key given twice in one object, however deep."""
    if isinstance(value, _Mapping):
        for key, where in value.repeated:
            yield ".".join((*path, key)), f"appears twice in the same object{where}; keep one"
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _duplicates(child, (*path, str(key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _duplicates(child, (*path, str(index)))


class _Yaml12Loader(_YamlBase):
    """
    Plain YAML scalars read as YAML 1.2's core schema, not PyYAML's 1.1: ``NO``, ``on`` and ``12:30`` stay
    text and only ``true``/``false`` are booleans. Numbers with leading zeros (``0012``) stay text too, so
    codes keep their zeros; quote anything else meant as text. Duplicate keys are recorded, not last-wins.
    """

    # PyYAML keeps the resolvers on the class (add_implicit_resolver copies them into the subclass); its stubs
    # declare them as an instance variable.
    yaml_implicit_resolvers: ClassVar[dict[str | None, list[tuple[str, re.Pattern[str]]]]] = {}  # type: ignore[misc]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> _Mapping:
        self.flatten_mapping(node)
        pairs = []
        where = []
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark, "found a key that is not text", key_node.start_mark
                )
            pairs.append((key, self.construct_object(value_node, deep=deep)))
            where.append(f" (line {key_node.start_mark.line + 1})")
        return _Mapping.from_pairs(pairs, where)

    def construct_yaml_map(self, node: yaml.MappingNode) -> Generator[_Mapping]:
        yield self.construct_mapping(node, deep=True)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        text = str(self.construct_scalar(node))
        if text[:2] in ("0o", "0x"):
            return int(text[2:], 8 if text[1] == "o" else 16)
        return int(text)

    def construct_yaml_float(self, node: yaml.ScalarNode) -> float:
        text = str(self.construct_scalar(node)).lower()
        return float(text.replace(".inf", "inf").replace(".nan", "nan"))


_Yaml12Loader.add_constructor("tag:yaml.org,2002:map", _Yaml12Loader.construct_yaml_map)
_Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _Yaml12Loader.construct_yaml_int)
_Yaml12Loader.add_constructor("tag:yaml.org,2002:float", _Yaml12Loader.construct_yaml_float)
for _tag, _pattern, _first in (
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?(?:0|[1-9][0-9]*)|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:\.[0-9]+|(?:0|[1-9][0-9]*)(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        list("-+0123456789."),
    ),
    ("tag:yaml.org,2002:merge", r"^<<$", ["<"]),
):
    _Yaml12Loader.add_implicit_resolver(_tag, re.compile(_pattern), _first)


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``, recursively for objects; lists and scalars are replaced."""
    result = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = value
    return result

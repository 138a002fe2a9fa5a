"""
Regenerates the parts of docs/ that are facts of the code, so they never drift from it:

- docs/job-spec.md: the field reference, from the JSON Schema of the spec models (what ``pstt schema``
  prints); which spec field becomes which task argument, from ``pstt_provider.factory.task_arguments``;
  the producer properties a spec may set, from ``pstt_provider.factory.producer_settings``;
- docs/operators.md: ``SqlToKafkaOperator``'s arguments, from its signature (names, defaults) and the
  ``:param NAME:`` lines of its class docstring (meanings);
- docs/coming-from-pstt-tool.md: the .env variable tables, from ``pstt_provider.connections.settings``;
- docs/metrics-api.md: the ``[pstt]`` options of airflow.cfg, from ``pstt_provider.options``.

Each generated part sits between ``<!-- generated: NAME -->`` and ``<!-- end generated: NAME -->``.
Usage: ``.venv/bin/python scripts/gen_docs.py`` rewrites them; ``--check`` exits 1 naming each stale page.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
# Reading the operator imports Airflow, which writes a config into its home: the project's, as scripts/airflow.sh.
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".cache" / "airflow"))
COMMAND = ".venv/bin/python scripts/gen_docs.py"
_PARAM_LINE = re.compile(r"^:param (\w+):\s*(.*)$")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _type(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        return "object: " + prop["$ref"].rsplit("/", 1)[1]
    if "enum" in prop:
        return " \\| ".join(f"`{json.dumps(value)}`" for value in prop["enum"])
    if "anyOf" in prop:
        return " or ".join(_type(option) for option in prop["anyOf"] if option.get("type") != "null")
    kind = prop.get("type", "any")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind == "array":
        return f"list of {_type(prop.get('items', {}))}"
    if kind == "object" and "additionalProperties" in prop:
        return f"object of {_type(prop['additionalProperties'])}"
    return kind


def _field_rows(schema: dict[str, Any], defs: dict[str, Any], prefix: str) -> list[str]:
    rows = []
    required = set(schema.get("required", []))
    for name, prop in schema["properties"].items():
        default = "" if name in required or "default" not in prop else f"`{json.dumps(prop['default'])}`"
        rows.append(
            f"| `{prefix}{name}` | {_type(prop)} | {'yes' if name in required else 'no'} | {default} "
            f"| {_cell(prop.get('description', ''))} |"
        )
        refs = [prop] if "$ref" in prop else [option for option in prop.get("anyOf", []) if "$ref" in option]
        for ref in refs:
            nested = defs[ref["$ref"].rsplit("/", 1)[1]]
            rows.extend(_field_rows(nested, defs, f"{prefix}{name}."))
    return rows


def job_spec_table() -> str:
    from pstt_provider.factory.models import job_schema

    schema = job_schema()
    header = ["| field | type | required | default | description |", "| --- | --- | --- | --- | --- |"]
    return "\n".join(header + _field_rows(schema, schema.get("$defs", {}), ""))


def task_arguments_table() -> str:
    from pstt_provider.factory.task_arguments import TASK_ARGUMENTS

    lines = ["| spec field | task argument | in `pstt render --json` |", "| --- | --- | --- |"]
    lines += [f"| `{arg.spec_field}` | `{arg.name}` | `{arg.key}` |" for arg in TASK_ARGUMENTS]
    return "\n".join(lines)


def docstring_params(doc: str) -> dict[str, str]:
    """``:param NAME: text`` lines of a docstring (indented lines continue one), RST ``code`` as Markdown."""
    params: dict[str, str] = {}
    current = None
    for line in inspect.cleandoc(doc).splitlines():
        match = _PARAM_LINE.match(line)
        if match:
            current = match[1]
            params[current] = match[2]
        elif current and line[:1].isspace() and line.strip():
            params[current] += " " + line.strip()
        else:
            current = None
    return {name: text.replace("``", "`").removesuffix(".") for name, text in params.items()}


def operator_arguments_table() -> str:
    from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator

    meanings = docstring_params(SqlToKafkaOperator.__doc__ or "")
    lines = ["| argument | default | meaning |", "| --- | --- | --- |"]
    for name, parameter in inspect.signature(SqlToKafkaOperator.__init__).parameters.items():
        if name == "self" or parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
            continue
        if name not in meanings:
            raise SystemExit(f"gen_docs: SqlToKafkaOperator's docstring has no ':param {name}:' line")
        default = "required" if parameter.default is parameter.empty else f"`{parameter.default!r}`"
        lines.append(f"| `{name}` | {default} | {_cell(meanings[name])} |")
    return "\n".join(lines)


def kafka_variables_table() -> str:
    from pstt_provider.connections.settings import KAFKA_SETTINGS, NOT_LIBRDKAFKA, OTHER_SETTINGS

    scopes = {"any": "every connection", "sasl": "SASL_* protocols", "ssl": "SSL, SASL_SSL"}
    lines = [
        "| PSTT Tool `.env` variable | connections.json key | librdkafka property (connection extra) | applies to |",
        "| --- | --- | --- | --- |",
    ]
    for setting in KAFKA_SETTINGS:
        lines.append(f"| `{setting.env}` | `{setting.name}` | `{setting.property}` | {scopes[setting.scope]} |")
    lines += ["", "| PSTT Tool `.env` variable | not a producer setting: where it lives now |", "| --- | --- |"]
    lines += [f"| `{name}` | {_cell(where)} |" for name, where in {**NOT_LIBRDKAFKA, **OTHER_SETTINGS}.items()]
    return "\n".join(lines)


def producer_settings_table() -> str:
    from pstt_provider.factory.producer_settings import ALLOWED

    lines = ["| property | values | what it tunes |", "| --- | --- | --- |"]
    lines += [f"| `{key}` | {_cell(setting.kind)} | {_cell(setting.what)} |" for key, setting in ALLOWED.items()]
    return "\n".join(lines)


def airflow_options_table() -> str:
    from pstt_provider.options import OPTIONS, default_text

    lines = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    lines += [
        f"| `{option.name}` | {option.kind} | {default_text(option)} | {_cell(option.description)} |"
        for option in OPTIONS
    ]
    return "\n".join(lines)


GENERATED: dict[str, tuple[str, Callable[[], str]]] = {
    "job-spec-fields": ("job-spec.md", job_spec_table),
    "task-arguments": ("job-spec.md", task_arguments_table),
    "producer-settings": ("job-spec.md", producer_settings_table),
    "operator-arguments": ("operators.md", operator_arguments_table),
    "pstt-tool-variables": ("coming-from-pstt-tool.md", kafka_variables_table),
    "airflow-options": ("metrics-api.md", airflow_options_table),
}


def render(text: str, name: str, content: str) -> str:
    pattern = re.compile(rf"(<!-- generated: {name} -->\n)(?:.*?\n)?(<!-- end generated: {name} -->)", re.DOTALL)
    if not pattern.search(text):
        raise SystemExit(f"gen_docs: no '<!-- generated: {name} -->' ... '<!-- end generated: {name} -->' block")
    return pattern.sub(lambda match: match.group(1) + content + "\n" + match.group(2), text)


def regenerate(docs: Path) -> dict[Path, str]:
    """Every page with a generated part whose text changes: page -> its new text."""
    pages: dict[Path, str] = {}
    for name, (page, make) in GENERATED.items():
        path = docs / page
        current = pages.get(path) or path.read_text()
        pages[path] = render(current, name, make())
    return {path: text for path, text in pages.items() if text != path.read_text()}


def main(argv: list[str], docs: Path = DOCS) -> int:
    changed = regenerate(docs)
    if "--check" in argv:
        for path in changed:
            shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
            print(f"{shown}: a generated section is out of date: run {COMMAND} (make docs)", file=sys.stderr)
        return 1 if changed else 0
    for path, text in changed.items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

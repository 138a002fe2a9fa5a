"""
Regenerates the parts of docs/ that are facts of the code, so they never drift from it:

- docs/job-spec.md: the field reference, from the JSON Schema that ``pstt schema`` prints, and the
  producer properties a spec may set, from ``pstt_provider.factory.producer_settings``;
- docs/coming-from-pstt-tool.md: the .env variable tables, from ``pstt_provider.connections``.

Each generated part sits between ``<!-- generated: NAME -->`` and ``<!-- end generated: NAME -->``.
Usage: ``python scripts/gen_docs.py`` rewrites them; ``--check`` exits 1 when a page is out of date.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _schema() -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "pstt_provider.cli", "schema"], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return json.loads(result.stdout)


def _type(prop: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in prop:
        return "object: " + prop["$ref"].rsplit("/", 1)[1]
    if "enum" in prop:
        return " \\| ".join(f"`{json.dumps(value)}`" for value in prop["enum"])
    if "anyOf" in prop:
        kinds = [_type(option, defs) for option in prop["anyOf"] if option.get("type") != "null"]
        return " or ".join(kinds)
    kind = prop.get("type", "any")
    if kind == "array":
        return f"list of {_type(prop.get('items', {}), defs)}"
    if kind == "object" and "additionalProperties" in prop:
        return f"object of {_type(prop['additionalProperties'], defs)}"
    return kind


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _rows(schema: dict[str, Any], defs: dict[str, Any], prefix: str) -> list[str]:
    rows = []
    required = set(schema.get("required", []))
    for name, prop in schema["properties"].items():
        default = "" if name in required or "default" not in prop else f"`{json.dumps(prop['default'])}`"
        rows.append(
            f"| `{prefix}{name}` | {_type(prop, defs)} | {'yes' if name in required else 'no'} | {default} "
            f"| {_cell(prop.get('description', ''))} |"
        )
        refs = [prop] if "$ref" in prop else [option for option in prop.get("anyOf", []) if "$ref" in option]
        for ref in refs:
            nested = defs[ref["$ref"].rsplit("/", 1)[1]]
            rows.extend(_rows(nested, defs, f"{prefix}{name}."))
    return rows


def job_spec_table() -> str:
    schema = _schema()
    header = ["| field | type | required | default | description |", "| --- | --- | --- | --- | --- |"]
    return "\n".join(header + _rows(schema, schema.get("$defs", {}), ""))


def kafka_variables_table() -> str:
    from pstt_provider.connections import KAFKA_SETTINGS, NOT_LIBRDKAFKA, OTHER_SETTINGS

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


GENERATED: dict[str, tuple[str, Callable[[], str]]] = {
    "job-spec-fields": ("job-spec.md", job_spec_table),
    "producer-settings": ("job-spec.md", producer_settings_table),
    "pstt-tool-variables": ("coming-from-pstt-tool.md", kafka_variables_table),
}


def render(text: str, name: str, content: str) -> str:
    pattern = re.compile(rf"(<!-- generated: {name} -->\n)(?:.*?\n)?(<!-- end generated: {name} -->)", re.DOTALL)
    if not pattern.search(text):
        raise SystemExit(f"gen_docs: no '<!-- generated: {name} -->' ... '<!-- end generated: {name} -->' block")
    return pattern.sub(lambda match: match.group(1) + content + "\n" + match.group(2), text)


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name, (page, make) in GENERATED.items():
        path = DOCS / page
        text = path.read_text()
        updated = render(text, name, make())
        if updated != text:
            stale.append(page)
            if not check:
                path.write_text(updated)
    if check and stale:
        print(f"out of date (run python scripts/gen_docs.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

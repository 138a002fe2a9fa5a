"""
Every command in docs/*.md runs here or is checked against the real thing, so the docs cannot rot.

The convention, by the info string of a fenced block:

- ```bash        executed, in order, with ``bash -euo pipefail`` in a scratch copy of the repo (one per page, so a
                 page's blocks share the files they create) set up as after ``make demo``: the SQLite demo database
                 built, an Airflow metadata DB of the docs tests' own, the local broker; every block must exit 0.
- ```bash check  not executed, because it needs Docker, a running Airflow or a remote host. Every command in it is
                 checked: ``airflow`` and ``pstt`` arguments must parse with the real CLI parsers, ``make`` targets
                 must exist (``make -n``), ``curl`` URLs must be routes of Airflow's REST API (its OpenAPI spec), of
                 its token endpoint or of the /pstt plugin app with that method, ``docker compose`` must name
                 services of docker-compose.yaml, ``python`` scripts and test paths must exist. Any other command
                 fails the test.
- ```bash manual shown only (administration of the host, e.g. ``sudo install``); the line above the fence must say
                 why: ``<!-- docs-test: manual: REASON -->``.
- anything else (json, yaml, sql, text, powershell, ...) is not a command.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from helpers import ROOT

DOCS = ROOT / "docs"
SCRATCH_COPY = (
    "dags",
    "queries",
    "scripts",
    "docker",
    "tests/fixtures/seed",
    "docker-compose.yaml",
    "Makefile",
    "pyproject.toml",
)
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
FILTERS = {"jq", "grep", "head", "tail", "sort", "wc"}
AIRFLOW_TOKEN_PATH = ("POST", "/auth/token")


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    info: str
    body: str

    @property
    def where(self) -> str:
        return f"docs/{self.page}:{self.line}"


def blocks(page: Path) -> list[Block]:
    text = page.read_text()
    return [
        Block(page.name, text.count("\n", 0, match.start()) + 1, match.group(1).strip(), match.group(2))
        for match in FENCE.finditer(text)
    ]


def pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def pages_with(info: str) -> list[Path]:
    return [page for page in pages() if any(block.info == info for block in blocks(page))]


# ------------------------------------------------------------------ executed blocks


@pytest.fixture(scope="module")
def docs_airflow_home(tmp_path_factory: pytest.TempPathFactory, airflow_home) -> dict[str, str]:
    """A migrated metadata DB of the docs tests' own, so their DAG runs never show up in other tests' metrics."""
    home = airflow_home(tmp_path_factory.mktemp("docs-airflow"))
    return {"AIRFLOW_HOME": str(home), "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db"}


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    for name in SCRATCH_COPY:
        source = ROOT / name
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    subprocess.run(["python", "scripts/demo_db.py"], cwd=tmp_path, env=shell_env({}), check=True, capture_output=True)
    return tmp_path


def shell_env(airflow: dict[str, str]) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PSTT_")}
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env['PATH']}"
    return {**env, **airflow}


@pytest.mark.parametrize("page", pages_with("bash"), ids=lambda page: page.name)
def test_the_commands_of_each_page_run(page, scratch, docs_airflow_home, kafka_bootstrap):
    for block in blocks(page):
        if block.info != "bash":
            continue
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block.body],
            cwd=scratch,
            env=shell_env(docs_airflow_home),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, f"{block.where} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"


# ------------------------------------------------------------------- checked blocks


def commands(body: str) -> list[list[str]]:
    """Each command of a block as words: lines joined, comments and redirections dropped, pipelines split."""
    joined = re.sub(r"\\\n\s*", " ", body)
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        substitution = re.fullmatch(r"[A-Z_][A-Z0-9_]*=\$\((.*)\)", line)
        if substitution:
            line = substitution.group(1)
        lexer = shlex.shlex(line, posix=True, punctuation_chars="|;&<>")
        lexer.whitespace_split = True
        words: list[str] = []
        redirected = False
        for word in lexer:
            if word in {"|", ";", "&&", "||"}:
                result.append(words)
                words = []
            elif word in {">", ">>", "<"}:
                redirected = True
            elif redirected:
                redirected = False
            else:
                words.append(word)
        result.append(words)
    return [words for words in result if words]


@cache
def airflow_parser():
    from airflow.cli.cli_parser import get_parser

    return get_parser()


def check_airflow(args: list[str]) -> None:
    parser = airflow_parser()
    try:
        # Some arguments are argparse file types, opened while parsing: keep those files out of the repo.
        with tempfile.TemporaryDirectory() as scratch, contextlib.chdir(scratch):
            parser.parse_args(args)
    except SystemExit as exit_:
        if exit_.code:
            raise AssertionError(f"airflow {' '.join(args)}: not a valid Airflow command") from None


def check_pstt(args: list[str]) -> None:
    from pstt_provider.cli import _parser

    try:
        _parser().parse_args(args)
    except SystemExit as exit_:
        if exit_.code:
            raise AssertionError(f"pstt {' '.join(args)}: not a valid pstt command") from None


def check_make(args: list[str]) -> None:
    for target in (arg for arg in args if not arg.startswith("-")):
        result = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"make {target}: {result.stderr}"


@cache
def compose_services() -> frozenset[str]:
    return frozenset(yaml.safe_load((ROOT / "docker-compose.yaml").read_text())["services"])


def check_docker(args: list[str]) -> None:
    assert args[:1] == ["compose"], f"docker {' '.join(args)}: only `docker compose` is documented"
    sub, rest = args[1], [arg for arg in args[2:] if not arg.startswith("-")]
    if sub in {"exec", "run"}:
        assert rest, f"docker compose {sub}: no service named"
        assert rest[0] in compose_services(), f"docker compose {sub}: unknown service in {rest}"
        command = args[args.index(rest[0]) + 1 :]
        if command[:1] == ["airflow"]:
            check_airflow(command[1:])
        if command[:1] == ["pstt"]:
            check_pstt(command[1:])
    else:
        assert sub in {"up", "down", "ps", "build", "pull", "config", "logs", "restart", "stop", "start"}, sub
        assert set(rest) <= compose_services(), f"docker compose {sub}: unknown services {set(rest)}"


@cache
def routes() -> frozenset[tuple[str, str]]:
    """(METHOD, path pattern) of Airflow's REST API, its token endpoint and the /pstt plugin app."""
    import airflow.api_fastapi.core_api.openapi as openapi

    spec = yaml.safe_load((Path(openapi.__file__).parent / "v2-rest-api-generated.yaml").read_text())
    found = {(method.upper(), path) for path, item in spec["paths"].items() for method in item}
    from pstt_provider.plugins.api import create_app
    from pstt_provider.plugins.metrics import URL_PREFIX

    for route in create_app().routes:
        for method in getattr(route, "methods", None) or ():
            found.add((method, URL_PREFIX + route.path))
    found.add(AIRFLOW_TOKEN_PATH)
    return frozenset(found)


def check_curl(args: list[str]) -> None:
    url = next(arg for arg in args if arg.startswith("http"))
    method = args[args.index("-X") + 1] if "-X" in args else ("POST" if {"-d", "--data"} & set(args) else "GET")
    path = urlparse(url).path
    for known_method, pattern in routes():
        regex = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(pattern)) + "/?$"
        if known_method == method and re.match(regex, path):
            return
    raise AssertionError(f"curl {method} {path}: no such route in Airflow's REST API or the /pstt plugin")


def check_python(args: list[str]) -> None:
    """``python -m pytest PATH...``, ``python -m pstt_provider.cli ...`` or ``python SCRIPT``: the files exist."""
    if args[:2] == ["-m", "pytest"]:
        paths = [arg.split("::")[0] for arg in args[2:] if not arg.startswith("-")]
    elif args[:2] == ["-m", "pstt_provider.cli"]:
        check_pstt(args[2:])
        return
    else:
        paths = args[:1]
    assert paths, f"python {' '.join(args)}: nothing to check"
    for path in paths:
        assert (ROOT / path).exists(), f"python {' '.join(args)}: {path} does not exist"


CHECKERS = {
    "airflow": check_airflow,
    "pstt": check_pstt,
    "make": check_make,
    "docker": check_docker,
    "curl": check_curl,
    "python": check_python,
    ".venv/bin/python": check_python,
}


SCRIPT_ACTIONS = {
    "scripts/airflow.sh": {"run", "up", "up-cluster", "down", "env"},
    "scripts/kafka.sh": {"install", "start", "stop", "status", "reset", "cluster"},
    "scripts/postgres.sh": {"start", "stop", "status"},
    "scripts/redis.sh": {"start", "stop", "status"},
    "scripts/schema-registry.sh": {"start", "stop", "status"},
}
CLUSTER_ACTIONS = {"start", "stop", "status", "bootstrap", "kill", "stop-broker", "start-broker", "reset"}


def check_command(words: list[str]) -> None:
    if words[0] in SCRIPT_ACTIONS:
        assert words[1] in SCRIPT_ACTIONS[words[0]], f"{words[0]} {words[1]}: not an action of the script"
        if words[1] == "run":
            check_airflow(words[2:])
        if words[1] == "cluster":
            assert words[2] in CLUSTER_ACTIONS, f"{words[0]} cluster {words[2]}: not an action of the script"
        return
    if words[0] in FILTERS:
        return
    checker = CHECKERS.get(words[0])
    assert checker is not None, f"{words[0]}: not a command the docs test can check (run it in a ```bash block)"
    checker(words[1:])


CHECKED = [block for page in pages() for block in blocks(page) if block.info == "bash check"]


@pytest.mark.parametrize("block", CHECKED, ids=lambda block: block.where)
def test_each_command_that_cannot_run_here_is_checked_against_the_real_cli(block):
    for words in commands(block.body):
        try:
            check_command(words)
        except AssertionError as error:
            raise AssertionError(f"{block.where}: {error}") from None


def test_shell_blocks_are_run_or_checked_or_say_why_not():
    loose = []
    for page in pages():
        lines = page.read_text().splitlines()
        for block in blocks(page):
            if block.info.split(" ")[0] not in {"sh", "shell", "console", "bash"} or block.info in {
                "bash",
                "bash check",
            }:
                continue
            reason = lines[block.line - 2] if block.line >= 2 else ""
            if block.info != "bash manual" or not re.fullmatch(r"<!-- docs-test: manual: .+ -->", reason):
                loose.append(block.where)
    assert loose == [], "use ```bash (run), ```bash check (checked) or a ```bash manual block with its reason"

"""
docker-compose.yaml cannot run here (no Docker engine), so it is checked instead: it parses, it is the stack the
docs describe (services, images, ports, environment), and what it mounts and connects fits together.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
SERVICES = COMPOSE["services"]
DOC = (ROOT / "docs" / "docker-compose.md").read_text()
AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
}


def doc_table(heading: str) -> list[list[str]]:
    """The rows of the first table under ``## heading`` in docs/docker-compose.md, cells without backticks."""
    section = DOC.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")][2:]
    return [[cell.strip().strip("`") for cell in row.strip("|").split("|")] for row in rows]


def airflow_env() -> dict[str, str]:
    return {name: str(value) for name, value in SERVICES["airflow-apiserver"]["environment"].items()}


def host_paths(service: dict) -> list[str]:
    return [volume.split(":")[0] for volume in service.get("volumes", []) if volume.startswith("./")]


def test_the_services_are_the_ones_the_docs_list_with_their_images_and_ports():
    documented = {row[0]: row for row in doc_table("Services")}
    assert set(documented) == set(SERVICES)
    for name, service in SERVICES.items():
        assert documented[name][1] == service["image"], name
        ports = [str(port).split(":")[0] for port in service.get("ports", [])]
        assert documented[name][2] == ", ".join(ports), name


def test_airflow_runs_its_four_components_from_one_image_with_this_package_installed():
    for name, command in AIRFLOW_SERVICES.items():
        assert SERVICES[name]["command"] == command
        assert SERVICES[name]["image"] == "pstt-provider-airflow:local"
    dockerfile = SERVICES["airflow-apiserver"]["build"]["dockerfile_inline"]
    assert re.search(r"^FROM apache/airflow:3\.3\.\d+$", dockerfile, re.MULTILINE)
    assert "pip install" in dockerfile
    assert "/opt/pstt" in dockerfile
    for copied in re.findall(r"^COPY \S+ (.+) /opt/pstt/", dockerfile, re.MULTILINE):
        for path in copied.split():
            assert (ROOT / path).exists(), path


def test_airflow_uses_postgres_for_its_metadata():
    env = airflow_env()
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://airflow:airflow@postgres:5432/")
    assert SERVICES["postgres"]["environment"]["POSTGRES_USER"] == "airflow"
    assert SERVICES["airflow-scheduler"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_every_airflow_environment_variable_is_documented_with_its_value():
    documented = {row[0]: row[1] for row in doc_table("Environment of the Airflow services")}
    env = airflow_env()
    assert set(documented) == set(env)
    for name, value in env.items():
        assert documented[name] == (value or "empty"), name


def test_kafka_is_version_4_in_kraft_mode_and_the_kafka_connection_points_at_its_internal_listener():
    kafka = SERVICES["kafka"]
    assert re.match(r"apache/kafka:4\.\d+\.\d+$", kafka["image"])
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert not any("ZOOKEEPER" in name for name in env)
    advertised = dict(item.split("://") for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    extra = json.loads(airflow_env()["AIRFLOW_CONN_KAFKA_DEFAULT"])["extra"]
    assert extra["bootstrap.servers"] == advertised[env["KAFKA_INTER_BROKER_LISTENER_NAME"]]


def test_oracle_free_is_seeded_with_export_table_and_its_connection_uses_the_app_user():
    oracle = SERVICES["oracle"]
    assert oracle["image"].startswith("gvenzl/oracle-free:")
    init = next(path for path in host_paths(oracle))
    assert any("CREATE TABLE EXPORT_TABLE" in script.read_text() for script in (ROOT / init).iterdir())
    connection = json.loads(airflow_env()["AIRFLOW_CONN_PSTT_DEMO_ORACLE"])
    assert connection["host"] == "oracle"
    assert connection["login"] == oracle["environment"]["APP_USER"]
    assert connection["password"] == oracle["environment"]["APP_USER_PASSWORD"]
    assert connection["extra"]["service_name"] == "FREEPDB1"


def test_every_mounted_host_path_exists_in_the_repo():
    for name, service in SERVICES.items():
        for path in host_paths(service):
            assert (ROOT / path).exists(), f"{name}: {path}"


def test_every_connection_is_json_with_only_airflow_connection_fields():
    fields = {"conn_type", "description", "host", "login", "password", "schema", "port", "extra"}
    for name, value in airflow_env().items():
        if name.startswith("AIRFLOW_CONN_"):
            connection = json.loads(value)
            assert set(connection) <= fields, name
            assert connection["conn_type"] in {"kafka", "sqlite", "oracle"}, name


def mounted_specs() -> list[Path]:
    mounts = [volume.split(":") for volume in SERVICES["airflow-scheduler"].get("volumes", [])]
    jobs_dir = airflow_env()["PSTT_JOBS_DIR"]
    return [ROOT / host for host, container, *_ in mounts if container.startswith(jobs_dir + "/")]


def test_the_mounted_jobs_use_only_connections_the_compose_file_sets():
    specs = mounted_specs()
    assert {path.name for path in specs} == {"demo_traces.json", "oracle_traces.json"}
    connections = {name.removeprefix("AIRFLOW_CONN_").lower() for name in airflow_env() if "AIRFLOW_CONN_" in name}
    for path in specs:
        spec = json.loads(path.read_text())
        assert spec["connection"] in connections, path
        assert spec["kafka_config"]["connection_name"] in connections, path


def test_the_mounted_jobs_are_valid_with_the_compose_connections():
    env = {**os.environ, **{k: v for k, v in airflow_env().items() if k.startswith("AIRFLOW_CONN_")}}
    env.pop("PSTT_JOBS_DIR", None)
    env.pop("PSTT_QUERIES_DIR", None)
    result = subprocess.run(
        [sys.executable, "-m", "pstt_provider.cli", "validate", *map(str, mounted_specs())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 job spec file(s) valid" in result.stdout

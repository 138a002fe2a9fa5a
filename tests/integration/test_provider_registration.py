from __future__ import annotations

import json
import os
import subprocess
import sys


def _airflow(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "airflow", *args, "--output", "json"],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ.copy(),
    )
    return result.stdout


def test_airflow_lists_pstt_provider_among_installed_providers():
    providers = json.loads(_airflow("providers", "list"))

    assert "pstt-provider" in {provider["package_name"] for provider in providers}


def test_airflow_lists_the_pstt_plugin(airflow_db):
    plugins = json.loads(_airflow("plugins"))

    assert "pstt" in {plugin["name"] for plugin in plugins}


def test_the_plugin_loads_once_without_import_errors_with_the_plugins_folder_in_place(airflow_db):
    from pathlib import Path

    plugins_folder = Path(__file__).resolve().parents[2] / "plugins"
    probe = (
        "import json; from airflow import plugins_manager as pm; plugins, errors = pm._get_plugins(); "
        "print(json.dumps({'names': [p.name for p in plugins], 'errors': errors}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins_folder)},
    )
    loaded = json.loads(result.stdout.strip().splitlines()[-1])

    assert loaded["errors"] == {}
    assert loaded["names"].count("pstt") == 1

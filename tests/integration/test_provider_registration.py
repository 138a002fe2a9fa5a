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

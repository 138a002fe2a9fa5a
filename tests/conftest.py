"""
What every test gets: an isolated Airflow home, and the ``integration``, ``slow`` and ``serial`` markers put on
by where the test is and what it uses.

AIRFLOW_HOME is set before anything imports Airflow, so no test ever touches a developer's own Airflow. The
services (Kafka, PostgreSQL, a migrated Airflow DB, API servers) are fixtures of tests/integration/conftest.py
only, so a test under tests/unit or tests/property cannot ask for one: ``make unit`` runs with none of them.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from helpers import ROOT

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="pstt-airflow-"))
atexit.register(shutil.rmtree, _AIRFLOW_HOME, ignore_errors=True)
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME}/airflow.db"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")

INTEGRATION = ROOT / "tests" / "integration"
SLOW_FIXTURES = frozenset({"private_broker", "no_auto_create_broker", "kafka_cluster"})
SLOW_HELPERS = frozenset({"ApiServer", "Standalone", "measure_extraction"})
"""A test is slow when it starts processes of its own: it asks for a private broker, or its module imports what
starts an API server, an ``airflow standalone`` or an extraction in a fresh process (tests/helpers)."""
SERIAL_HELPERS = frozenset({"measure_extraction"})
"""A test is serial when what it measures (a process's peak memory) depends on what else the machine runs."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION in item.path.parents:
            item.add_marker(pytest.mark.integration)
        module_names = vars(item.module).keys() if item.module is not None else set()
        if SLOW_FIXTURES.intersection(item.fixturenames) or SLOW_HELPERS.intersection(module_names):
            item.add_marker(pytest.mark.slow)
        if SERIAL_HELPERS.intersection(module_names):
            item.add_marker(pytest.mark.serial)

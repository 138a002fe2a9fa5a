"""
What the tests share besides fixtures: service endpoints, Kafka reading, task contexts, Airflow homes and servers.

``tests/`` is on ``sys.path`` through ``pythonpath`` in pytest's configuration, so tests import these as
``from helpers.kafka import consume_all``; a helper run in a child process (``python -m helpers.memory``) gets
the same path from ``child_env``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
ROOT = TESTS.parent


def child_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with tests/ first on PYTHONPATH, so ``python -m helpers.<module>`` finds this package."""
    path = [str(TESTS), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    return {**env, "PYTHONPATH": os.pathsep.join(path)}

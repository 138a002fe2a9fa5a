"""
Airflow DAG file: one DAG per PSTT job spec under $PSTT_JOBS_DIR (default dags/jobs), queries from
$PSTT_QUERIES_DIR (default queries/ next to dags/).

Invalid specs are skipped here, so they never hide the valid ones; pstt_jobs_validation.py reports them
as an import error in the Airflow UI and ``pstt validate`` prints them.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pstt_provider.factory.builder import build_dags

_dags, _problems = build_dags(Path(__file__).resolve().parent.parent)
for _problem in _problems:
    logging.getLogger(__name__).warning("PSTT job spec skipped: %s", _problem)
globals().update(_dags)

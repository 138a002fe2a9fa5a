"""
Airflow DAG file that builds no DAG: it fails to import, listing ``file: field: reason`` for every invalid
PSTT job spec, and for every valid spec Airflow rejects when building its DAG, so that each problem is
visible among the Airflow UI's DAG import errors. With only valid specs it imports cleanly. pstt_jobs.py
builds the valid DAGs.
"""

from __future__ import annotations

from pathlib import Path

from pstt_provider.factory.builder import check_folder

check_folder(Path(__file__).resolve().parent.parent)

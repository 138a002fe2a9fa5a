"""The pstt Airflow plugin: delivery metrics and health endpoints served by the Airflow API server."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin


class PsttPlugin(AirflowPlugin):
    name = "pstt"

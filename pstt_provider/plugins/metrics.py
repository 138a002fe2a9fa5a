"""The pstt Airflow plugin: delivery metrics and health endpoints served by the Airflow API server."""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

from pstt_provider.plugins.api import create_app

URL_PREFIX = "/pstt"


class PsttPlugin(AirflowPlugin):
    name = "pstt"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [
        {"app": create_app(), "url_prefix": URL_PREFIX, "name": "PSTT Kafka metrics"}
    ]
    external_views: ClassVar[list[dict[str, Any]]] = [
        {
            "name": "PSTT Kafka",
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "url_route": "pstt",
            "category": "browse",
        }
    ]

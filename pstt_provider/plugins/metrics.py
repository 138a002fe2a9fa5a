"""The pstt Airflow plugin: delivery metrics and health endpoints served by the Airflow API server."""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/pstt"


class DeferredApp:
    """
    ASGI app that builds the real FastAPI app on its first request.

    Every Airflow process loads plugins (task processes too, for macros) but only the API server serves
    them: importing FastAPI and Airflow's API security module here would slow down every task start.
    """

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self._app is None:
            from pstt_provider.plugins.api import create_app

            self._app = create_app()
        await self._app(scope, receive, send)


class PsttPlugin(AirflowPlugin):
    name = "pstt"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [
        {"app": DeferredApp(), "url_prefix": URL_PREFIX, "name": "PSTT Kafka metrics"}
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

"""The pstt Airflow plugin: delivery metrics and health endpoints served by the Airflow API server."""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin  # noqa: TID253 (its base class, in every Airflow process)

URL_PREFIX = "/pstt"


class _LazyFastApiApps:
    """
    The plugin's ``fastapi_apps``, built when the API server asks for them.

    Every Airflow process loads plugins (task processes too, for macros) but only the API server mounts
    their apps: importing FastAPI and Airflow's API security module at plugin load would slow down every
    task start. The app is a real FastAPI instance so that the API server runs its lifespan, which starts
    the metrics writer (see ``pstt_provider.plugins.api``).
    """

    _apps: list[dict[str, Any]] | None = None

    def __get__(self, instance: Any, owner: Any) -> list[dict[str, Any]]:
        if _LazyFastApiApps._apps is None:
            from pstt_provider.plugins.api import create_app

            _LazyFastApiApps._apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "PSTT Kafka metrics"}]
        return _LazyFastApiApps._apps


class PsttPlugin(AirflowPlugin):
    name = "pstt"
    fastapi_apps = _LazyFastApiApps()
    external_views: list[Any] = [  # noqa: RUF012 (declared so by AirflowPlugin, which reads it from the class)
        {
            "name": "PSTT Kafka",
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "url_route": "pstt",
            "category": "browse",
        }
    ]

"""
The ``/pstt`` FastAPI app mounted into the Airflow API server: the seed's /api/kafka/* endpoints, the daily
health check (``/api/health``, the report of ``pstt health --json``) and the dashboard.

Airflow does not authenticate plugin apps, so every route declares its own dependency from Airflow's
security module (fail closed: no route without one). Reads need read access to DAG runs; cleanup needs
the right to delete DAG runs; /test and /send need write access to the named Kafka connection.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from airflow.api_fastapi.auth.managers.models.resource_details import ConnectionDetails, DagAccessEntity
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import FileResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from pstt_provider import health as daily_check
from pstt_provider import options
from pstt_provider.metrics import aggregate, kafka_health, prometheus, store
from pstt_provider.summary import DeliverySummary

if TYPE_CHECKING:
    from pstt_provider.hooks.kafka import PsttKafkaHook

STATIC = Path(__file__).resolve().parent / "static"
STATIC_FILES = {
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
    "chart.umd.min.js": "text/javascript",
}

log = logging.getLogger(__name__)
CanReadRuns = Depends(requires_access_dag("GET", DagAccessEntity.RUN))
CanDeleteRuns = Depends(requires_access_dag("DELETE", DagAccessEntity.RUN))


class ConnectionRequest(BaseModel):
    """Names a configured Airflow Kafka connection; hosts and credentials are never accepted from a request."""

    model_config = ConfigDict(extra="forbid")

    connection_id: str = Field(min_length=1, max_length=250)


class SendRequest(ConnectionRequest):
    topic: str = Field(min_length=1, max_length=249)
    key: str | None = None
    value: Any
    headers: dict[str, str] = Field(default_factory=dict)


def _now() -> datetime:
    return store.utcnow()


def _tries(**filters: Any) -> list[DeliverySummary]:
    """Stored tries; reading never writes (the background task in :func:`maintenance` is the writer)."""
    from airflow.utils.session import create_session

    with create_session() as session:
        return store.tries(session, **filters)


def _retired() -> list[store.TrySums]:
    """What retention deleted, summed, for the lifetime counters."""
    from airflow.utils.session import create_session

    with create_session() as session:
        return store.retired(session)


def _tries_for_people(**filters: Any) -> list[dict[str, Any]]:
    """Stored tries as JSON, each with its job's display name (the summary's, else the DAG's in Airflow)."""
    from airflow.utils.session import create_session

    with create_session() as session:
        tries = store.tries(session, **filters)
        names = daily_check.dag_display_names(session, {item.dag_id for item in tries if not item.display_name})
    return [
        {**item.to_dict(), "display_name": item.display_name or names.get(item.dag_id) or item.dag_id} for item in tries
    ]


def _jobs() -> list[dict[str, str]]:
    """Every DAG with stored tries and its display name, for the dashboard's job filter (reads only)."""
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    table = store.tries_table
    with create_session() as session:
        if not store.tables_exist(session.get_bind()):
            return []
        rows = session.execute(select(table.c.dag_id, func.max(table.c.display_name)).group_by(table.c.dag_id)).all()
        names = daily_check.dag_display_names(session, [dag_id for dag_id, name in rows if not name])
    jobs = [{"dag_id": dag_id, "display_name": name or names.get(dag_id) or dag_id} for dag_id, name in rows]
    return sorted(jobs, key=lambda job: (job["display_name"].casefold(), job["dag_id"]))


def _timezone_name() -> str:
    """Airflow's ``[core] default_timezone``, by its IANA name, which the dashboard shows its times in."""
    from airflow import settings

    return getattr(settings.TIMEZONE, "name", None) or str(settings.TIMEZONE)


def _authorize_connection_write(user: Any, conn_id: str) -> None:
    from airflow.api_fastapi.app import get_auth_manager

    if not get_auth_manager().is_authorized_connection(
        method="POST", details=ConnectionDetails(conn_id=conn_id), user=user
    ):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Forbidden: using a Kafka connection needs edit rights")


def _kafka_hook(conn_id: str) -> PsttKafkaHook:
    try:
        return kafka_health.kafka_hook(conn_id)
    except kafka_health.KafkaConnectionNotFoundError as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from error
    except kafka_health.NotAKafkaConnectionError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(error)) from error


def _health_payload() -> dict[str, Any]:
    results = kafka_health.check_all()
    return {
        "status": kafka_health.overall_status(results),
        "connected": bool(results) and all(result.reachable for result in results),
        "checked_at": _now().isoformat(),
        "connections": [result.as_dict() for result in results],
    }


async def _maintain_forever(interval_s: float) -> None:
    """The metrics writer: every ``interval_s``, bring tries' summaries in and apply retention."""
    from airflow.utils.session import create_session

    def one_round() -> None:
        with create_session() as session:
            store.maintain(session)

    while True:
        try:
            await asyncio.to_thread(one_round)
        except Exception:  # a database hiccup must not end the writer; the next round retries
            log.exception("pstt metrics maintenance failed; retrying in %.0f s", interval_s)
        await asyncio.sleep(interval_s)


@asynccontextmanager
async def maintenance(app: FastAPI) -> AsyncIterator[None]:
    """The API server's background task that is the only writer of the pstt tables (reads never write)."""
    task = asyncio.create_task(_maintain_forever(options.MAINTENANCE_INTERVAL_S.get()))
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


def create_app() -> FastAPI:
    app = FastAPI(
        lifespan=maintenance,
        title="pstt",
        description="PSTT Kafka delivery metrics and health",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    _add_pages(app)
    _add_kafka_routes(app)
    _add_metrics_routes(app)
    return app


def _add_pages(app: FastAPI) -> None:
    """The dashboard and its files, and the daily check's report."""

    @app.exception_handler(HTTPException)
    async def login_redirect_for_pages(request: Request, error: HTTPException) -> Response:
        """A person opening the dashboard without a session goes to Airflow's login; APIs get the error."""
        if error.status_code == status.HTTP_401_UNAUTHORIZED and request.url.path.rstrip("/").endswith("/pstt"):
            from airflow.api_fastapi.app import get_auth_manager

            return RedirectResponse(get_auth_manager().get_url_login(next_url=str(request.url)))
        return await http_exception_handler(request, error)

    @app.get("/", dependencies=[CanReadRuns], include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(STATIC / "dashboard.html", media_type="text/html")

    @app.get("/static/{name}", dependencies=[CanReadRuns], include_in_schema=False)
    def static_file(name: str) -> FileResponse:
        if name not in STATIC_FILES:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no static file {name!r}")
        return FileResponse(STATIC / name, media_type=STATIC_FILES[name])

    @app.get("/api/health", dependencies=[CanReadRuns])
    def daily_health() -> dict[str, Any]:
        """The same report as ``pstt health --json``: status, checks, metrics, failures, connections."""
        return daily_check.report()


def _add_kafka_routes(app: FastAPI) -> None:
    """The Kafka connections: their health, a probe and a test message (these two need connection write access)."""

    @app.get("/api/kafka/health", dependencies=[CanReadRuns])
    def health() -> dict[str, Any]:
        return _health_payload()

    @app.post("/api/kafka/test")
    def test_connection(body: ConnectionRequest, user: GetUserDep) -> dict[str, Any]:
        _authorize_connection_write(user, body.connection_id)
        _kafka_hook(body.connection_id)
        result = kafka_health.probe(body.connection_id, options.KAFKA_PROBE_TIMEOUT_S.get())
        return {
            "status": "success" if result.reachable else "error",
            "connected": result.reachable,
            **result.as_dict(),
            "test_timestamp": _now().isoformat(),
        }

    @app.post("/api/kafka/send")
    def send(body: SendRequest, user: GetUserDep) -> dict[str, Any]:
        _authorize_connection_write(user, body.connection_id)
        hook = _kafka_hook(body.connection_id)
        value = body.value if isinstance(body.value, str) else json.dumps(body.value, ensure_ascii=False)
        producer = hook.get_producer()
        reports: list[Any] = []
        producer.produce(
            body.topic,
            value=value.encode(),
            key=body.key.encode() if body.key is not None else None,
            headers=list(body.headers.items()),
            on_delivery=lambda error, message: reports.append((error, message)),
        )
        producer.flush(options.KAFKA_PROBE_TIMEOUT_S.get() * 2)
        if not reports:
            raise HTTPException(status.HTTP_504_GATEWAY_TIMEOUT, "Kafka did not acknowledge the message in time")
        error, message = reports[0]
        if error is not None:
            raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"Kafka refused the message: {error}")
        return {
            "status": "success",
            "connection_id": body.connection_id,
            "topic": message.topic(),
            "partition": message.partition(),
            "offset": message.offset(),
        }


def _add_metrics_routes(app: FastAPI) -> None:
    """The stored tries' figures, for the dashboard and Prometheus, and their cleanup."""

    @app.get("/api/kafka/metrics/summary", dependencies=[CanReadRuns])
    def summary(period: Annotated[str, Query(pattern="^(today|24h|7d|30d)$")] = "today") -> dict[str, Any]:
        from airflow import settings

        since = aggregate.period_start(period, _now(), settings.TIMEZONE)
        return {**aggregate.summary(_tries(since=since), period, since), "timezone": _timezone_name()}

    @app.get("/api/kafka/metrics/hourly", dependencies=[CanReadRuns])
    def hourly(hours: Annotated[int, Query(ge=1, le=24 * 90)] = 24) -> list[dict[str, Any]]:
        now = _now()
        since = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
        return aggregate.hourly(_tries(since=since), hours, now)

    @app.get("/api/kafka/metrics/topic/{topic}", dependencies=[CanReadRuns])
    def topic(topic: str, limit: Annotated[int, Query(ge=1, le=10_000)] = 100) -> dict[str, Any]:
        return aggregate.topic_report(topic, _tries(topic=topic, limit=limit))

    @app.get("/api/kafka/metrics/runs", dependencies=[CanReadRuns])
    def recent_runs(
        limit: Annotated[int, Query(ge=1, le=1000)] = 20,
        dag_id: Annotated[str | None, Query(min_length=1, max_length=250)] = None,
    ) -> list[dict[str, Any]]:
        """The most recent tries (of one DAG with ``dag_id``), newest first, with their jobs' display names."""
        return _tries_for_people(limit=limit, dag_id=dag_id)

    @app.get("/api/kafka/metrics/jobs", dependencies=[CanReadRuns])
    def jobs() -> list[dict[str, str]]:
        """The DAGs that have stored tries, with their display names (the dashboard's job filter)."""
        return _jobs()

    @app.post("/api/kafka/metrics/cleanup", dependencies=[CanDeleteRuns])
    def cleanup(days: Annotated[int | None, Query(ge=0)] = None) -> dict[str, Any]:
        from airflow.utils.session import create_session

        keep_days = options.METRICS_RETENTION_DAYS.get() if days is None else days
        with create_session() as session:
            store.ingest(session)
            deleted = store.cleanup(session, keep_days)
        return {"status": "success", "days": keep_days, "deleted_runs": deleted}

    @app.get("/api/kafka/metrics/prometheus", dependencies=[CanReadRuns])
    def prometheus_metrics() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        body = prometheus.exposition(_tries, _retired, kafka_health.check_all)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

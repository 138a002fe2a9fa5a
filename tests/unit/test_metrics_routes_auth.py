"""Fail closed: every route of the /pstt app resolves Airflow's authenticated user before it runs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from airflow.api_fastapi.core_api.security import get_user
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from pstt_provider.plugins.api import create_app


def calls(dependant: Dependant) -> Iterator[Any]:
    yield dependant.call
    for dependency in dependant.dependencies:
        yield from calls(dependency)


def test_every_route_depends_on_the_airflow_user():
    routes = create_app().routes
    assert routes
    assert all(isinstance(route, APIRoute) for route in routes)
    unguarded = [route.path for route in routes if get_user not in set(calls(route.dependant))]
    assert unguarded == []


def test_the_contract_paths_are_served():
    paths = {(method, route.path) for route in create_app().routes for method in route.methods}
    assert paths >= {
        ("GET", "/api/kafka/health"),
        ("POST", "/api/kafka/test"),
        ("POST", "/api/kafka/send"),
        ("GET", "/api/kafka/metrics/summary"),
        ("GET", "/api/kafka/metrics/hourly"),
        ("GET", "/api/kafka/metrics/topic/{topic}"),
        ("POST", "/api/kafka/metrics/cleanup"),
        ("GET", "/api/kafka/metrics/prometheus"),
        ("GET", "/api/kafka/metrics/runs"),
        ("GET", "/api/kafka/metrics/jobs"),
        ("GET", "/api/health"),
        ("GET", "/"),
    }

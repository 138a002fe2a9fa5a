"""
A value schema registered under its subject, once per run, before anything is produced.

When the subject has versions, the schema is first tested against the latest one, and a refusal fails the run naming
the columns that changed, the subject and its compatibility level (``SchemaCompatibilityError``); then it is
registered, which returns the id of an identical version already there. The registry's failures become the task's
errors: no answer, 5xx, 408 and 429 are retried (``SchemaRegistryUnavailableError``), any other refusal is fatal.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pstt_provider.exceptions import (
    SchemaCompatibilityError,
    SchemaRegistryRejectedError,
    SchemaRegistryUnavailableError,
)
from pstt_provider.value_schemas import changed_columns

if TYPE_CHECKING:
    from confluent_kafka.schema_registry import SchemaRegistryClient


def _transport_errors() -> tuple[type[BaseException], ...]:
    """
    The client's network errors: it runs on its own copy of httpx, reachable only through a private module; should a
    later confluent-kafka move it, its errors that are ``OSError`` still count as the registry not answering.
    """
    try:
        from confluent_kafka.schema_registry.common._httpx_compat import httpx
    except ImportError:
        return (OSError,)
    return (httpx.TransportError, OSError)


def _registry_call(subject: str, call: Callable[[], Any]) -> Any:
    """``call`` with the registry's failures as the task's errors: unreachable or 5xx retried, the rest fatal."""
    from confluent_kafka.schema_registry.error import SchemaRegistryError

    try:
        return call()
    except SchemaRegistryError as err:
        if err.http_status_code >= 500 or err.http_status_code in (408, 429):
            raise SchemaRegistryUnavailableError(f"Schema Registry failed for subject {subject}: {err}") from err
        raise SchemaRegistryRejectedError(f"Schema Registry refused subject {subject}: {err}") from err
    except _transport_errors() as err:
        raise SchemaRegistryUnavailableError(
            f"Schema Registry unreachable for subject {subject}: {type(err).__name__}: {err}"
        ) from err


def _missing(err: BaseException) -> bool:
    from confluent_kafka.schema_registry.error import SchemaRegistryError

    cause = err.__cause__
    return isinstance(cause, SchemaRegistryError) and cause.http_status_code == 404


def compatibility_level(client: SchemaRegistryClient, subject: str) -> str:
    """The subject's own compatibility level, or the registry's when the subject has none set."""
    try:
        return _registry_call(subject, lambda: client.get_compatibility(subject))
    except SchemaRegistryRejectedError as err:
        if not _missing(err):
            raise
        return _registry_call(subject, client.get_compatibility)


def register(client: SchemaRegistryClient, subject: str, schema: Mapping[str, Any], schema_type: str) -> int:
    """
    The id of ``schema`` registered under ``subject``, after testing it against the subject's latest version (when
    there is one); a refusal raises ``SchemaCompatibilityError`` naming the changed columns.
    """
    from confluent_kafka.schema_registry import Schema

    candidate = Schema(json.dumps(schema), schema_type)
    try:
        latest = _registry_call(subject, lambda: client.get_latest_version(subject))
    except SchemaRegistryRejectedError as err:
        if not _missing(err):
            raise
        latest = None
    if latest is not None and not _registry_call(subject, lambda: client.test_compatibility(subject, candidate)):
        level = compatibility_level(client, subject)
        changed = changed_columns(schema, json.loads(latest.schema.schema_str))
        raise SchemaCompatibilityError(
            f"subject {subject} (compatibility {level}) refuses the value schema of this query against its version "
            f"{latest.version}; column(s) changed: {', '.join(changed) or '(none by name)'}. Change the query back, "
            "or the subject's compatibility level, or write to a new topic"
        )
    return _registry_call(subject, lambda: client.register_schema(subject, candidate))

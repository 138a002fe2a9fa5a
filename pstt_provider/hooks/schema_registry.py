"""
Schema Registry hook: an Airflow ``http`` connection as confluent-kafka's ``SchemaRegistryClient``.

The connection's host is the registry's URL (``http://registry:8081``), or a bare host with the scheme in
``schema`` and the port in ``port``; login and password are HTTP basic auth; the extra holds the client's own
settings, e.g. ``{"ssl.ca.location": "/etc/ssl/registry-ca.pem"}`` for TLS, ``ssl.certificate.location`` and
``ssl.key.location`` for a client certificate, ``timeout``, ``max.retries``. The password only ever goes into the
client's configuration: no message of this module contains it.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook
from confluent_kafka.schema_registry import SchemaRegistryClient

from pstt_provider.exceptions import SchemaRegistryRejectedError


def registry_url(host: str, schema: str | None, port: int | None) -> str:
    """The base URL a connection's fields name: ``host`` when it is a URL already, else built from the three."""
    if "://" in host:
        return host.rstrip("/")
    scheme = schema or "http"
    return f"{scheme}://{host}" + (f":{port}" if port else "")


class SchemaRegistryHook(BaseHook):
    """The Schema Registry of an Airflow connection (type ``http``), as a ``SchemaRegistryClient``."""

    conn_name_attr = "schema_registry_conn_id"
    conn_type = "http"
    hook_name = "Schema Registry"

    def __init__(self, schema_registry_conn_id: str) -> None:
        super().__init__()
        self.schema_registry_conn_id = schema_registry_conn_id

    def client_config(self) -> dict[str, Any]:
        """The client's configuration: URL, basic auth, then the connection's extra (which may add TLS files)."""
        connection = self.get_connection(self.schema_registry_conn_id)
        if not connection.host:
            raise SchemaRegistryRejectedError(
                f"connection {self.schema_registry_conn_id!r} has no host: set it to the Schema Registry's URL"
            )
        config: dict[str, Any] = {"url": registry_url(connection.host, connection.schema, connection.port)}
        if connection.login:
            config["basic.auth.user.info"] = f"{connection.login}:{connection.password or ''}"
        config.update(connection.extra_dejson)
        return config

    def get_client(self) -> SchemaRegistryClient:
        try:
            return SchemaRegistryClient(self.client_config())
        except (ValueError, TypeError, OSError) as err:
            # The client names the setting it refuses (an unknown key, an unreadable CA file), never a value.
            raise SchemaRegistryRejectedError(
                f"connection {self.schema_registry_conn_id!r} is not a usable Schema Registry configuration: {err}"
            ) from err

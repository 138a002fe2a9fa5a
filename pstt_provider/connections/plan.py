"""
The Airflow connections that PSTT Tool's connections.json and .env describe, in ``airflow connections import``'s
format (conn_id -> {conn_type, description, host, login, password, schema, port, extra}), and the notes a user
needs about what was not carried over.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow.exceptions import AirflowException
from airflow.utils.helpers import validate_key

from pstt_provider.connections import ConnectionImportError
from pstt_provider.connections.settings import (
    KAFKA_SETTINGS,
    NOT_LIBRDKAFKA,
    OTHER_SETTINGS,
    SETTINGS_BY_ENV,
    SETTINGS_BY_NAME,
    KafkaSetting,
    port_number,
)
from pstt_provider.connections.sources import Variables, read_connections_file, read_env_file

DEFAULT_KAFKA_CONN_ID = "kafka_default"
DEFAULT_SMTP_CONN_ID = "smtp_default"
# PSTT Tool ran on kafka-python, whose SASL mechanism defaults to PLAIN; librdkafka's would be GSSAPI.
KAFKA_PYTHON_SASL_DEFAULT = "PLAIN"
# The longest id `airflow connections import` accepts (connection_command._import_helper); the table allows 250.
IMPORTER_MAX_CONN_ID_LENGTH = 200
_KAFKA_ENTRY_FIELDS = {"name", "description", "default_topic", *SETTINGS_BY_NAME}
_DB_FIELDS = {
    "name",
    "description",
    "environment",
    "type",
    "host",
    "port",
    "service_name",
    "sid",
    "dsn",
    "username",
    "password",
    "database",
}
_DB_TYPES = {"oracle": "oracle", "postgres": "postgres", "postgresql": "postgres", "sqlite": "sqlite"}
_SMTP_VARIABLES = {"SMTP_HOST", "SMTP_PORT", "SMTP_USERNAME", "SMTP_PASSWORD", "SMTP_FROM"}


@dataclass
class ImportPlan:
    """The Airflow connections to create (``airflow connections import`` format) and what the user should know."""

    connections: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, conn_id: str, connection: dict[str, Any], origin: str) -> None:
        try:
            validate_key(conn_id, max_length=IMPORTER_MAX_CONN_ID_LENGTH)
        except AirflowException as error:
            raise ConnectionImportError(
                f"{origin}: {conn_id!r} is not a valid Airflow connection id ({error}); rename it here and in the "
                "job specs that use it"
            ) from None
        if conn_id in self.connections:
            raise ConnectionImportError(f"{origin}: connection id {conn_id!r} is defined twice")
        self.connections[conn_id] = connection


def _unknown(keys: set[str], known: set[str], origin: str) -> None:
    for key in sorted(keys - known):
        close = difflib.get_close_matches(key, sorted(known), n=1)
        suggestion = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(sorted(known))})"
        raise ConnectionImportError(f"{origin}: unknown field {key!r}{suggestion}")


def _convert(setting: KafkaSetting, raw: Any, origin: str, variables: Variables) -> Any:
    text = variables.resolve(str(raw).lower() if isinstance(raw, bool) else str(raw), origin)
    try:
        return setting.convert(text)
    except ValueError as error:
        raise ConnectionImportError(f"{origin}: {error}") from None


def kafka_env_settings(env: Mapping[str, str | None], variables: Variables, env_path: str) -> dict[str, Any]:
    """The librdkafka properties the .env's KAFKA_* variables set, keyed by setting name."""
    settings: dict[str, Any] = {}
    for name, raw in env.items():
        setting = SETTINGS_BY_ENV.get(name)
        if setting is not None and raw:
            settings[setting.name] = _convert(setting, raw, f"{env_path}: {name}", variables)
    return settings


def _env_notes(env: Mapping[str, str | None], variables: Variables, env_path: str) -> list[str]:
    notes = []
    referenced = variables.referenced()
    for name in env:
        if name in NOT_LIBRDKAFKA:
            notes.append(f"{name} is not a producer setting: {NOT_LIBRDKAFKA[name]}")
        elif name in OTHER_SETTINGS:
            notes.append(f"{name}: {OTHER_SETTINGS[name]}")
        elif name.startswith("KAFKA_") and name not in SETTINGS_BY_ENV and name not in referenced:
            known = sorted([*SETTINGS_BY_ENV, *NOT_LIBRDKAFKA])
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            notes.append(f"{env_path}: {name} is not a PSTT Tool setting and was ignored{hint}")
    return notes


def _applies(setting: KafkaSetting, protocol: str) -> bool:
    if setting.scope == "sasl":
        return protocol.startswith("SASL_")
    if setting.scope == "ssl":
        return protocol in ("SSL", "SASL_SSL")
    return True


def kafka_config(
    entry_settings: Mapping[str, Any], env_settings: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """
    The librdkafka dict of one connection: the entry's own settings win over the .env's, and a SASL connection
    without a mechanism keeps the one PSTT Tool used.

    Returns the config and the names of the settings left out because the protocol does not use them.
    """
    merged = {**env_settings, **entry_settings}
    protocol = merged.get("security_protocol", "PLAINTEXT")
    if protocol.startswith("SASL_"):
        merged.setdefault("sasl_mechanism", KAFKA_PYTHON_SASL_DEFAULT)
    config: dict[str, Any] = {}
    skipped: list[str] = []
    for setting in KAFKA_SETTINGS:
        if setting.name not in merged:
            continue
        if _applies(setting, protocol):
            config[setting.property] = merged[setting.name]
        else:
            skipped.append(setting.env)
    return config, skipped


def check_librdkafka(conn_id: str, config: Mapping[str, Any]) -> list[str]:
    """
    Builds a producer from ``config`` so librdkafka itself rejects bad names, values and combinations.

    No broker is contacted: ``bootstrap.servers`` is left out. Certificate files that do not exist on this machine
    are left out too (they must exist where the tasks run) and reported instead.
    """
    from confluent_kafka import KafkaException, Producer

    notes = []
    checked = {"log_level": 0}
    for key, value in config.items():
        if key == "bootstrap.servers":
            continue
        if key.endswith(".location") and not Path(value).is_file():
            notes.append(f"{conn_id}: {key} {value} does not exist here; it must exist on every Airflow worker")
            continue
        checked[key] = value
    try:
        Producer(checked).flush(0)
    except KafkaException as error:
        raise ConnectionImportError(
            f"kafka connection {conn_id!r}: librdkafka rejects it: {error.args[0].str().strip()} "
            "(fix it in the connections.json entry or in the .env's KAFKA_* variables, passed with --env-file)"
        ) from None
    return notes


def _kafka_connection(config: dict[str, Any], description: str | None) -> dict[str, Any]:
    connection: dict[str, Any] = {"conn_type": "kafka"}
    if description:
        connection["description"] = description
    connection["extra"] = config
    return connection


def plan_kafka(
    document: Mapping[str, Any], env_settings: Mapping[str, Any], variables: Variables, origin: str, plan: ImportPlan
) -> None:
    entries = document.get("kafka_connections") or {}
    if not isinstance(entries, dict):
        raise ConnectionImportError(f"{origin}: 'kafka_connections' must be an object of name -> connection")
    for conn_id, entry in entries.items():
        where = f"{origin}: kafka_connections.{conn_id}"
        if not isinstance(entry, dict):
            raise ConnectionImportError(f"{where}: expected an object")
        _unknown(set(entry), _KAFKA_ENTRY_FIELDS, where)
        entry_settings = {
            name: _convert(SETTINGS_BY_NAME[name], value, f"{where}.{name}", variables)
            for name, value in entry.items()
            if name in SETTINGS_BY_NAME
        }
        config, skipped = kafka_config(entry_settings, env_settings)
        if "bootstrap.servers" not in config:
            raise ConnectionImportError(f"{where}: no bootstrap_servers (nor KAFKA_BOOTSTRAP_SERVERS in the .env)")
        if skipped:
            plan.notes.append(
                f"{conn_id}: {config.get('security.protocol', 'PLAINTEXT')} does not use {', '.join(skipped)}, "
                "so they were left out"
            )
        if "default_topic" in entry:
            plan.notes.append(
                f"{conn_id}: default_topic {entry['default_topic']!r} is not a connection setting; "
                "set kafka_config.topic in the jobs that use this connection"
            )
        plan.notes.extend(check_librdkafka(conn_id, config))
        plan.add(conn_id, _kafka_connection(config, entry.get("description") or entry.get("name")), where)


def _db_connection(entry: Mapping[str, Any], variables: Variables, where: str) -> dict[str, Any]:
    def text(key: str) -> str | None:
        value = entry.get(key)
        return None if value is None else variables.resolve(str(value), f"{where}.{key}")

    kind = _db_type(entry, where)
    described = [part for part in (text("description"), text("environment")) if part]
    connection: dict[str, Any] = {"conn_type": kind}
    if described:
        connection["description"] = " - ".join(described)
    if kind == "sqlite":
        if not entry.get("database"):
            raise ConnectionImportError(f"{where}: a sqlite connection needs 'database' (the file's path)")
        connection["host"] = text("database")
        return connection
    connection.update(_server_address(entry, text, where))
    if kind == "postgres":
        if entry.get("database"):
            connection["schema"] = text("database")
        return connection
    extra = {key: text(key) for key in ("service_name", "sid", "dsn") if entry.get(key)}
    if not extra.get("dsn") and not (connection.get("host") and (extra.get("service_name") or extra.get("sid"))):
        raise ConnectionImportError(f"{where}: an oracle connection needs host and service_name (or sid), or a dsn")
    if extra:
        connection["extra"] = extra
    return connection


def _db_type(entry: Mapping[str, Any], where: str) -> str:
    kind = _DB_TYPES.get(str(entry.get("type", "oracle")).lower())
    if kind is None:
        raise ConnectionImportError(
            f"{where}.type: {entry['type']!r} is not supported (one of: {', '.join(sorted(_DB_TYPES))})"
        )
    return kind


def _server_address(entry: Mapping[str, Any], text: Callable[[str], str | None], where: str) -> dict[str, Any]:
    """A database server's host, port and credentials, as far as the entry gives them."""
    address: dict[str, Any] = {}
    for source, target in (("host", "host"), ("username", "login"), ("password", "password")):
        if entry.get(source) is not None:
            address[target] = text(source)
    if entry.get("port") is not None:
        try:
            address["port"] = port_number(str(text("port")))
        except ValueError as error:
            raise ConnectionImportError(f"{where}.port: {error}") from None
    return address


def plan_databases(document: Mapping[str, Any], variables: Variables, origin: str, plan: ImportPlan) -> None:
    entries = document.get("connections") or []
    if not isinstance(entries, list):
        raise ConnectionImportError(f"{origin}: 'connections' must be a list of DB connections")
    for index, entry in enumerate(entries):
        where = f"{origin}: connections[{index}]"
        if not isinstance(entry, dict) or not entry.get("name"):
            raise ConnectionImportError(f"{where}: expected an object with a 'name' (it becomes the connection id)")
        _unknown(set(entry), _DB_FIELDS, where)
        plan.add(str(entry["name"]), _db_connection(entry, variables, where), where)


def plan_smtp(env: Mapping[str, str | None], variables: Variables, env_path: str, plan: ImportPlan) -> None:
    """The runbook's SMTP_* alerting variables become ``smtp_default``, which the job e-mail notifier uses."""
    if not env.get("SMTP_HOST"):
        return

    def value(name: str) -> str | None:
        raw = env.get(name)
        return variables.resolve(raw, f"{env_path}: {name}") if raw else None

    connection: dict[str, Any] = {"conn_type": "smtp", "host": value("SMTP_HOST")}
    try:
        port = port_number(value("SMTP_PORT") or "25")
    except ValueError as error:
        raise ConnectionImportError(f"{env_path}: SMTP_PORT: {error}") from None
    connection["port"] = port
    if value("SMTP_USERNAME"):
        connection["login"] = value("SMTP_USERNAME")
    if value("SMTP_PASSWORD"):
        connection["password"] = value("SMTP_PASSWORD")
    extra: dict[str, Any] = {"disable_ssl": port != 465}
    if value("SMTP_FROM"):
        extra["from_email"] = value("SMTP_FROM")
    connection["extra"] = extra
    plan.add(DEFAULT_SMTP_CONN_ID, connection, f"{env_path}: SMTP_*")


def build_plan(connections_file: Path, env_file: Path | None, environ: Mapping[str, str]) -> ImportPlan:
    """Every Airflow connection the inputs describe, or a ConnectionImportError naming the first problem."""
    document = read_connections_file(connections_file)
    _unknown(set(document), {"default_environment", "connections", "kafka_connections"}, str(connections_file))
    env = read_env_file(env_file) if env_file else {}
    variables = Variables(env, environ)
    env_path = str(env_file)
    plan = ImportPlan()
    env_settings = kafka_env_settings(env, variables, env_path)
    plan_databases(document, variables, str(connections_file), plan)
    plan_kafka(document, env_settings, variables, str(connections_file), plan)
    if env_settings.get("bootstrap_servers") and DEFAULT_KAFKA_CONN_ID not in plan.connections:
        config, _ = kafka_config({}, env_settings)
        plan.notes.extend(check_librdkafka(DEFAULT_KAFKA_CONN_ID, config))
        description = "PSTT Tool .env KAFKA_* settings (jobs without kafka_config.connection_name)"
        plan.add(DEFAULT_KAFKA_CONN_ID, _kafka_connection(config, description), env_path)
    plan_smtp(env, variables, env_path, plan)
    if document.get("default_environment"):
        plan.notes.append(
            f"default_environment {document['default_environment']!r} has no Airflow equivalent: each job names its "
            "DB connection (connection) and its Kafka connection (kafka_config.connection_name)"
        )
    plan.notes.extend(_env_notes(env, variables, env_path))
    if _SMTP_VARIABLES & set(env) and DEFAULT_SMTP_CONN_ID not in plan.connections:
        plan.notes.append(f"{env_path}: SMTP_* variables without SMTP_HOST were ignored")
    return plan

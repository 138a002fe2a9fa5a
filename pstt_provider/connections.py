"""
``pstt import-connections``: PSTT Tool's connections.json and .env as Airflow connections.

PSTT Tool kept its DB connections and Kafka environments in connections.json and the producer's tuning and
credentials in KAFKA_* variables of a .env file. Airflow keeps all of them as connections: DB ones of the driver's
type, Kafka ones of type ``kafka`` whose extra is a librdkafka config dict (the official Kafka provider's format).
The printed JSON is exactly what ``airflow connections import FILE`` reads, so a migration is two commands.
"""

from __future__ import annotations

import argparse
import difflib
import io
import json
import math
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dotenv.parser import parse_stream

MASK = "***"
DEFAULT_KAFKA_CONN_ID = "kafka_default"
DEFAULT_SMTP_CONN_ID = "smtp_default"
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI", "OAUTHBEARER")
COMPRESSION_TYPES = ("none", "gzip", "snappy", "lz4", "zstd")
# PSTT Tool ran on kafka-python, whose SASL mechanism defaults to PLAIN; librdkafka's would be GSSAPI.
KAFKA_PYTHON_SASL_DEFAULT = "PLAIN"
_CONN_ID = re.compile(r"^[\w.-]{1,200}$")
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SECRET_WORDS = ("password", "secret")
_ENV_NAME = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][\w.-]*)\s*=")
MAX_PORT = 65535
# librdkafka's ceiling for 32-bit properties (CONFIGURATION.md ranges), and for queue.buffering.max.kbytes in bytes.
INT32_MAX = 2147483647
MAX_BUFFER_BYTES = INT32_MAX * 1024


class ConnectionImportError(Exception):
    """The input cannot become working Airflow connections; the message says where and how to fix it."""


def _text(value: str) -> str:
    return value.strip()


def _integer(value: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise ValueError(f"expected a whole number, got {value!r}") from None


@dataclass(frozen=True)
class WholeNumber:
    """
    A whole number in librdkafka's documented range for the property: a value outside it would fail every task
    at producer creation, or (for a byte count turned into KiB) be silently bent into range.
    """

    low: int
    high: int
    unit: str = ""

    def __call__(self, value: str) -> int:
        number = _integer(value)
        if not self.low <= number <= self.high:
            raise ValueError(f"expected a whole number{self.unit} from {self.low} to {self.high}, got {value!r}")
        return number


def _port(value: str) -> int:
    try:
        return WholeNumber(1, MAX_PORT)(value)
    except ValueError:
        raise ValueError(f"expected a port number from 1 to {MAX_PORT}, got {value!r}") from None


def _boolean(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _one_of(choices: tuple[str, ...], *, upper: bool) -> Callable[[str], str]:
    def convert(value: str) -> str:
        normalised = value.strip().upper() if upper else value.strip().lower()
        if normalised not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return normalised

    return convert


def _servers(value: str) -> str:
    servers = [server.strip() for server in value.split(",") if server.strip()]
    if not servers:
        raise ValueError("expected host:port[,host:port...], got nothing")
    for server in servers:
        port = _server_port(server)
        if port is not None:
            try:
                _port(port)
            except ValueError:
                raise ValueError(f"{server!r}: expected a port number from 1 to {MAX_PORT}, got {port!r}") from None
    return ",".join(servers)


def _server_port(server: str) -> str | None:
    """The port part of ``[proto://]host[:port]`` or ``[ipv6]:port``; None when there is none (or it is ambiguous)."""
    address = server.split("://", 1)[-1]
    if address.startswith("["):
        _, _, rest = address.partition("]")
        return rest[1:] if rest.startswith(":") else None
    if address.count(":") != 1:
        return None  # no port (librdkafka's default 9092), or a bare IPv6 address librdkafka parses itself
    return address.rpartition(":")[2]


def _acks(value: str) -> str | int:
    lowered = value.strip().lower()
    if lowered in ("all", "-1"):
        return "all"
    if lowered in ("0", "1"):
        return int(lowered)
    raise ValueError(f"expected all, -1, 0 or 1, got {value!r}")


def _hostname_check(value: str) -> str:
    return "https" if _boolean(value) else "none"


BUFFER_BYTES = WholeNumber(1, MAX_BUFFER_BYTES, " of bytes")


def _kilobytes(value: str) -> int:
    """Bytes (kafka-python's buffer_memory) to KiB, rounded up: librdkafka's queue.buffering.max.kbytes."""
    return math.ceil(BUFFER_BYTES(value) / 1024)


@dataclass(frozen=True)
class KafkaSetting:
    """
    One PSTT Tool producer setting and the librdkafka property it becomes.

    ``name`` is the key in a connections.json "kafka_connections" entry; the .env variable is KAFKA_<NAME>.
    ``scope`` keeps SASL and TLS settings out of connections whose security protocol would not use them, so a
    .env shared by several environments never hands the production password to a PLAINTEXT development cluster.
    """

    name: str
    property: str
    convert: Callable[[str], Any]
    scope: Literal["any", "sasl", "ssl"] = "any"

    @property
    def env(self) -> str:
        return f"KAFKA_{self.name.upper()}"


KAFKA_SETTINGS: tuple[KafkaSetting, ...] = (
    KafkaSetting("bootstrap_servers", "bootstrap.servers", _servers),
    KafkaSetting("security_protocol", "security.protocol", _one_of(SECURITY_PROTOCOLS, upper=True)),
    KafkaSetting("sasl_mechanism", "sasl.mechanism", _one_of(SASL_MECHANISMS, upper=True), "sasl"),
    KafkaSetting("sasl_username", "sasl.username", _text, "sasl"),
    KafkaSetting("sasl_password", "sasl.password", _text, "sasl"),
    KafkaSetting("ssl_cafile", "ssl.ca.location", _text, "ssl"),
    KafkaSetting("ssl_certfile", "ssl.certificate.location", _text, "ssl"),
    KafkaSetting("ssl_keyfile", "ssl.key.location", _text, "ssl"),
    KafkaSetting("ssl_password", "ssl.key.password", _text, "ssl"),
    KafkaSetting("ssl_check_hostname", "ssl.endpoint.identification.algorithm", _hostname_check, "ssl"),
    KafkaSetting("client_id", "client.id", _text),
    KafkaSetting("compression_type", "compression.type", _one_of(COMPRESSION_TYPES, upper=False)),
    KafkaSetting("linger_ms", "linger.ms", WholeNumber(0, 900_000)),
    KafkaSetting("batch_size", "batch.size", WholeNumber(1, INT32_MAX)),
    KafkaSetting("acks", "acks", _acks),
    KafkaSetting("enable_idempotence", "enable.idempotence", _boolean),
    KafkaSetting("retries", "retries", WholeNumber(0, INT32_MAX)),
    KafkaSetting("retry_backoff_ms", "retry.backoff.ms", WholeNumber(1, 300_000)),
    KafkaSetting("request_timeout_ms", "request.timeout.ms", WholeNumber(1, 900_000)),
    KafkaSetting("max_request_size", "message.max.bytes", WholeNumber(1000, 1_000_000_000)),
    KafkaSetting("max_in_flight_requests", "max.in.flight.requests.per.connection", WholeNumber(1, 1_000_000)),
    KafkaSetting("buffer_memory", "queue.buffering.max.kbytes", _kilobytes),
)
_SETTINGS_BY_NAME = {setting.name: setting for setting in KAFKA_SETTINGS}
_SETTINGS_BY_ENV = {setting.env: setting for setting in KAFKA_SETTINGS}

# PSTT Tool settings that are not producer properties, and where each one lives now.
NOT_LIBRDKAFKA: dict[str, str] = {
    "KAFKA_DEFAULT_TOPIC": "a job's topic is kafka_config.topic in its spec; there is no default topic",
    "KAFKA_MESSAGE_BATCH_SIZE": "messages per batch is kafka_config.batch_size in each job spec",
    "KAFKA_MAX_RETRIES": "PSTT Tool's own resend loop: a failed delivery fails the task and the job's max_retries "
    "re-runs it (librdkafka's retries come from KAFKA_RETRIES)",
    "KAFKA_MAX_BLOCK_MS": "no librdkafka equivalent: produce() never blocks on a full queue, it raises at once; "
    "the queue's size is KAFKA_BUFFER_MEMORY (queue.buffering.max.kbytes)",
    "KAFKA_LOG_LEVEL": "Airflow's task log level: AIRFLOW__LOGGING__LOGGING_LEVEL",
    "KAFKA_LOG_PAYLOAD": "no equivalent: message payloads are not written to task logs",
    "KAFKA_HEALTH_CHECK_INTERVAL_SEC": "the health check is `pstt health`, run as often as your monitoring asks",
}

_KAFKA_ENTRY_FIELDS = {"name", "description", "default_topic", *_SETTINGS_BY_NAME}
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
# The runbook's other .env settings: not connections, and where each one lives now.
OTHER_SETTINGS: dict[str, str] = {
    "SMTP_TO": "recipients are per job: email_notification.recipients in each spec",
    "ALERT_SUCCESS_RATE_WARNING": "`pstt health` threshold: AIRFLOW__PSTT__SUCCESS_RATE_WARNING",
    "ALERT_SUCCESS_RATE_CRITICAL": "`pstt health` threshold: AIRFLOW__PSTT__SUCCESS_RATE_CRITICAL",
    "ALERT_LATENCY_P99_WARNING": "`pstt health` threshold: AIRFLOW__PSTT__LATENCY_P99_WARNING_MS",
    "ALERT_LATENCY_P99_CRITICAL": "`pstt health` threshold: AIRFLOW__PSTT__LATENCY_P99_CRITICAL_MS",
}


@dataclass
class ImportPlan:
    """The Airflow connections to create (``airflow connections import`` format) and what the user should know."""

    connections: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, conn_id: str, connection: dict[str, Any], origin: str) -> None:
        if not _CONN_ID.match(conn_id):
            raise ConnectionImportError(
                f"{origin}: {conn_id!r} is not a valid Airflow connection id "
                "(letters, digits, '_', '-', '.', at most 200 characters)"
            )
        if conn_id in self.connections:
            raise ConnectionImportError(f"{origin}: connection id {conn_id!r} is defined twice")
        self.connections[conn_id] = connection


class Variables:
    """Resolves ``${NAME}`` references from the environment first, then from the .env file itself."""

    def __init__(self, env_file: Mapping[str, str | None], environ: Mapping[str, str]) -> None:
        self._file = {name: value or "" for name, value in env_file.items()}
        self._environ = environ

    def resolve(self, value: str, origin: str, _seen: frozenset[str] = frozenset()) -> str:
        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in self._environ:
                return self._environ[name]
            if name in self._file and name not in _seen:
                return self.resolve(self._file[name], origin, _seen | {name})
            raise ConnectionImportError(
                f"{origin} refers to ${{{name}}}, which is not set: export {name} or define it in the .env file"
            )

        return _REFERENCE.sub(substitute, value)

    def referenced(self) -> set[str]:
        return {name for value in self._file.values() for name in _REFERENCE.findall(value)}


def _read_text(path: Path) -> str:
    """The file as UTF-8 text (a BOM allowed), or an error naming the file and the first byte that is not."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConnectionImportError(f"{path}: cannot read it: {error.strerror or error}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ConnectionImportError(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[error.start]:02x}; Windows editors often save Latin-1 "
            "as 'ANSI'): save the file as UTF-8 and run the command again"
        ) from None


def read_env_file(path: Path) -> dict[str, str | None]:
    """
    The .env's variables as python-dotenv reads them, but a line it cannot parse is an error naming the file and
    line: python-dotenv would only log "could not parse statement starting at line N" and drop the setting.
    """
    if not path.is_file():
        raise ConnectionImportError(f"{path}: no such .env file")
    values: dict[str, str | None] = {}
    for binding in parse_stream(io.StringIO(_read_text(path))):
        if binding.error:
            named = _ENV_NAME.match(binding.original.string)
            what = f"the value of {named[1]}" if named else "this line"
            raise ConnectionImportError(
                f"{path}:{binding.original.line}: cannot parse {what}; expected NAME=value, where a quoted value "
                "needs its closing quote and nothing after it but a # comment"
            )
        if binding.key is not None:
            values[binding.key] = binding.value
    return values


def read_connections_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConnectionImportError(f"{path}: no such file")
    text = _read_text(path)
    repeated: dict[int, tuple[str, int]] = {}

    def remember_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        document = dict(pairs)
        if len(document) < len(pairs):
            keys = [key for key, _ in pairs]
            first = next(key for key in keys if keys.count(key) > 1)
            repeated[id(document)] = (first, keys.count(first))
        return document

    try:
        document = json.loads(text, object_pairs_hook=remember_repeats)
    except json.JSONDecodeError as error:
        hint = " (JSON allows no comments: delete the '//' lines)" if "//" in text else ""
        raise ConnectionImportError(f"{path}:{error.lineno}:{error.colno}: {error.msg}{hint}") from None
    except RecursionError:
        raise ConnectionImportError(
            f"{path}: the JSON is nested too deeply (a connections file is three levels deep)"
        ) from None
    except ValueError as error:  # e.g. a number of more than 4300 digits
        raise ConnectionImportError(f"{path}: not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise ConnectionImportError(f"{path}: expected a JSON object with 'connections' and/or 'kafka_connections'")
    if repeated:
        _refuse_repeated_keys(document, repeated, path)
    return document


def _refuse_repeated_keys(document: dict[str, Any], repeated: Mapping[int, tuple[str, int]], path: Path) -> None:
    """
    A key given twice in one object: JSON readers keep the last one without a word, so which server or password
    PSTT Tool used is anybody's guess. The walk is iterative: the document may be as deep as json allows.
    """
    pending: list[tuple[str, Any]] = [("", document)]
    while pending:
        where, value = pending.pop()
        if isinstance(value, dict):
            if id(value) in repeated:
                key, count = repeated[id(value)]
                times = "twice" if count == 2 else f"{count} times"
                raise ConnectionImportError(
                    f"{path}: {where + '.' if where else ''}{key} appears {times}; keep one "
                    "(a JSON reader would silently use the last)"
                )
            children = [(f"{where}.{key}" if where else key, child) for key, child in value.items()]
        elif isinstance(value, list):
            children = [(f"{where}[{index}]", child) for index, child in enumerate(value)]
        else:
            continue
        pending.extend(reversed(children))


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
        setting = _SETTINGS_BY_ENV.get(name)
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
        elif name.startswith("KAFKA_") and name not in _SETTINGS_BY_ENV and name not in referenced:
            known = sorted([*_SETTINGS_BY_ENV, *NOT_LIBRDKAFKA])
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
            name: _convert(_SETTINGS_BY_NAME[name], value, f"{where}.{name}", variables)
            for name, value in entry.items()
            if name in _SETTINGS_BY_NAME
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

    kind = _DB_TYPES.get(str(entry.get("type", "oracle")).lower())
    if kind is None:
        raise ConnectionImportError(
            f"{where}.type: {entry['type']!r} is not supported (one of: {', '.join(sorted(_DB_TYPES))})"
        )
    described = [part for part in (text("description"), text("environment")) if part]
    connection: dict[str, Any] = {"conn_type": kind}
    if described:
        connection["description"] = " - ".join(described)
    if kind == "sqlite":
        if not entry.get("database"):
            raise ConnectionImportError(f"{where}: a sqlite connection needs 'database' (the file's path)")
        connection["host"] = text("database")
        return connection
    for source, target in (("host", "host"), ("username", "login"), ("password", "password")):
        if entry.get(source) is not None:
            connection[target] = text(source)
    if entry.get("port") is not None:
        try:
            connection["port"] = _port(str(text("port")))
        except ValueError as error:
            raise ConnectionImportError(f"{where}.port: {error}") from None
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
        port = _port(value("SMTP_PORT") or "25")
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


def _is_secret(key: str) -> bool:
    return any(word in key.lower() for word in _SECRET_WORDS)


def masked(connections: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """A copy with every password and secret replaced by ``***``."""
    result = {}
    for conn_id, connection in connections.items():
        copy = {key: MASK if _is_secret(key) else value for key, value in connection.items()}
        if isinstance(connection.get("extra"), dict):
            copy["extra"] = {key: MASK if _is_secret(key) else value for key, value in connection["extra"].items()}
        result[conn_id] = copy
    return result


def create(connections: Mapping[str, Mapping[str, Any]], *, overwrite: bool) -> list[str]:
    """Writes the connections to Airflow's metadata DB, as ``airflow connections import`` does; returns a report."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    report = []
    with create_session() as session:
        for conn_id, fields in connections.items():
            existing = session.scalar(select(Connection.id).where(Connection.conn_id == conn_id))
            if existing is not None and not overwrite:
                report.append(f"kept {conn_id}: it already exists (--overwrite replaces it)")
                continue
            connection = Connection(conn_id=conn_id, **fields)
            if existing is not None:
                connection.id = existing
            session.merge(connection)
            report.append(f"{'replaced' if existing is not None else 'created'} {conn_id} ({fields['conn_type']})")
    return report


def main(args: argparse.Namespace) -> int:
    try:
        plan = build_plan(Path(args.file), Path(args.env_file) if args.env_file else None, os.environ)
    except ConnectionImportError as error:
        print(f"pstt import-connections: {error}", file=sys.stderr)
        return 1
    for note in plan.notes:
        print(f"note: {note}", file=sys.stderr)
    if args.create:
        for line in create(plan.connections, overwrite=args.overwrite):
            print(line)
        return 0
    connections = plan.connections if args.show_secrets else masked(plan.connections)
    print(json.dumps(connections, indent=2))
    if not args.show_secrets and connections != plan.connections:
        print(
            "note: secrets are shown as ***; for a file `airflow connections import` can load, add --show-secrets "
            "(and keep the file private), or create them directly with --create",
            file=sys.stderr,
        )
    return 0

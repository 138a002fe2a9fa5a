"""PSTT Tool's connections.json and KAFKA_* variables turned into Airflow connections: the mapping itself."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pstt_provider.connections import ConnectionImportError
from pstt_provider.connections.airflow_import import _report
from pstt_provider.connections.cli import MASK, masked
from pstt_provider.connections.plan import build_plan
from pstt_provider.connections.settings import BUFFER_BYTES, KAFKA_SETTINGS, NOT_LIBRDKAFKA, WholeNumber

SEED = Path(__file__).resolve().parent.parent / "fixtures" / "seed"


def write(tmp_path: Path, name: str, content: str | dict) -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def plan_for(tmp_path: Path, document: dict, env: str | None = None, environ: dict | None = None):
    env_file = write(tmp_path, ".env", env) if env is not None else None
    return build_plan(write(tmp_path, "connections.json", document), env_file, environ or {})


def single_kafka(servers: str = "127.0.0.1:9092", **fields) -> dict:
    return {"kafka_connections": {"k": {"bootstrap_servers": servers, **fields}}}


@pytest.mark.parametrize(
    ("variable", "value", "prop", "expected"),
    [
        ("KAFKA_BOOTSTRAP_SERVERS", "a:9093, b:9093 ,c:9093", "bootstrap.servers", "a:9093,b:9093,c:9093"),
        ("KAFKA_SECURITY_PROTOCOL", "sasl_ssl", "security.protocol", "SASL_SSL"),
        ("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512", "sasl.mechanism", "SCRAM-SHA-512"),
        ("KAFKA_SASL_USERNAME", "pstt-producer", "sasl.username", "pstt-producer"),
        ("KAFKA_SASL_PASSWORD", "pw", "sasl.password", "pw"),
        ("KAFKA_SSL_CAFILE", "/certs/ca.pem", "ssl.ca.location", "/certs/ca.pem"),
        ("KAFKA_SSL_CERTFILE", "/certs/client.pem", "ssl.certificate.location", "/certs/client.pem"),
        ("KAFKA_SSL_KEYFILE", "/certs/client.key", "ssl.key.location", "/certs/client.key"),
        ("KAFKA_SSL_PASSWORD", "keypw", "ssl.key.password", "keypw"),
        ("KAFKA_SSL_CHECK_HOSTNAME", "true", "ssl.endpoint.identification.algorithm", "https"),
        ("KAFKA_SSL_CHECK_HOSTNAME", "false", "ssl.endpoint.identification.algorithm", "none"),
        ("KAFKA_CLIENT_ID", "pstt", "client.id", "pstt"),
        ("KAFKA_COMPRESSION_TYPE", "LZ4", "compression.type", "lz4"),
        ("KAFKA_LINGER_MS", "50", "linger.ms", 50),
        ("KAFKA_BATCH_SIZE", "65536", "batch.size", 65536),
        ("KAFKA_ACKS", "all", "acks", "all"),
        ("KAFKA_ACKS", "-1", "acks", "all"),
        ("KAFKA_ACKS", "1", "acks", 1),
        ("KAFKA_ENABLE_IDEMPOTENCE", "false", "enable.idempotence", False),
        ("KAFKA_RETRIES", "3", "retries", 3),
        ("KAFKA_RETRY_BACKOFF_MS", "100", "retry.backoff.ms", 100),
        ("KAFKA_REQUEST_TIMEOUT_MS", "60000", "request.timeout.ms", 60000),
        ("KAFKA_MAX_REQUEST_SIZE", "5242880", "message.max.bytes", 5242880),
        ("KAFKA_MAX_IN_FLIGHT_REQUESTS", "5", "max.in.flight.requests.per.connection", 5),
        ("KAFKA_BUFFER_MEMORY", "33554432", "queue.buffering.max.kbytes", 32768),
        ("KAFKA_BUFFER_MEMORY", "1500", "queue.buffering.max.kbytes", 2),
    ],
)
def test_each_kafka_variable_becomes_its_librdkafka_property(tmp_path, variable, value, prop, expected):
    env = "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092\nKAFKA_SECURITY_PROTOCOL=SASL_SSL\nKAFKA_SASL_USERNAME=u\n"
    env += f"KAFKA_SASL_PASSWORD=p\nKAFKA_ENABLE_IDEMPOTENCE=false\n{variable}={value}\n"
    extra = plan_for(tmp_path, {}, env).connections["kafka_default"]["extra"]
    assert extra[prop] == expected


def test_every_mapped_setting_is_covered_by_the_mapping_table():
    assert {setting.env for setting in KAFKA_SETTINGS}.isdisjoint(NOT_LIBRDKAFKA)


def test_inline_comments_in_the_env_file_are_not_part_of_values(tmp_path):
    env = "KAFKA_LINGER_MS=10                  # Attesa per accumulare batch\n"
    assert plan_for(tmp_path, single_kafka(), env).connections["k"]["extra"]["linger.ms"] == 10


def test_app_level_variables_stay_out_of_the_extra_and_are_reported(tmp_path):
    env = "".join(f"{name}=1\n" for name in NOT_LIBRDKAFKA)
    plan = plan_for(tmp_path, single_kafka(), env)
    assert plan.connections["k"]["extra"] == {"bootstrap.servers": "127.0.0.1:9092"}
    for name in NOT_LIBRDKAFKA:
        assert any(note.startswith(f"{name} is not a producer setting") for note in plan.notes)


def test_max_block_ms_is_reported_as_having_no_librdkafka_equivalent(tmp_path):
    plan = plan_for(tmp_path, single_kafka(), "KAFKA_MAX_BLOCK_MS=60000\n")
    assert any("KAFKA_MAX_BLOCK_MS" in note and "no librdkafka equivalent" in note for note in plan.notes)


def test_a_misspelt_kafka_variable_is_reported_with_a_suggestion(tmp_path):
    plan = plan_for(tmp_path, single_kafka(), "KAFKA_LINGER_MSS=10\n")
    assert any("KAFKA_LINGER_MSS" in note and "did you mean KAFKA_LINGER_MS" in note for note in plan.notes)


def test_references_resolve_from_the_environment_before_the_env_file(tmp_path):
    env = "KAFKA_PASSWORD_PROD=from-file\nKAFKA_SECURITY_PROTOCOL=SASL_SSL\nKAFKA_SASL_USERNAME=u\n"
    env += "KAFKA_SASL_PASSWORD=${KAFKA_PASSWORD_PROD}\n"
    from_file = plan_for(tmp_path, single_kafka(), env).connections["k"]["extra"]
    from_environ = plan_for(tmp_path, single_kafka(), env, {"KAFKA_PASSWORD_PROD": "from-environ"})
    assert from_file["sasl.password"] == "from-file"
    assert from_environ.connections["k"]["extra"]["sasl.password"] == "from-environ"


def test_a_reference_used_only_for_interpolation_is_not_reported_as_unknown(tmp_path):
    env = "KAFKA_PASSWORD_PROD=x\nKAFKA_SECURITY_PROTOCOL=SASL_SSL\nKAFKA_SASL_USERNAME=u\n"
    env += "KAFKA_SASL_PASSWORD=${KAFKA_PASSWORD_PROD}\n"
    assert not any("KAFKA_PASSWORD_PROD" in note for note in plan_for(tmp_path, single_kafka(), env).notes)


def test_an_unresolved_reference_is_an_error_naming_the_variable(tmp_path):
    env = "KAFKA_SECURITY_PROTOCOL=SASL_SSL\nKAFKA_SASL_PASSWORD=${KAFKA_PASSWORD_PROD}\n"
    with pytest.raises(ConnectionImportError, match=r"KAFKA_SASL_PASSWORD refers to \$\{KAFKA_PASSWORD_PROD\}"):
        plan_for(tmp_path, single_kafka(), env)


def test_the_entry_wins_over_the_env_file(tmp_path):
    env = "KAFKA_BOOTSTRAP_SERVERS=env:9092\nKAFKA_COMPRESSION_TYPE=snappy\n"
    plan = plan_for(tmp_path, single_kafka("entry:9092", compression_type="zstd"), env)
    assert plan.connections["k"]["extra"]["bootstrap.servers"] == "entry:9092"
    assert plan.connections["k"]["extra"]["compression.type"] == "zstd"


def test_a_plaintext_connection_never_receives_the_env_files_credentials(tmp_path):
    env = "KAFKA_SECURITY_PROTOCOL=SASL_SSL\nKAFKA_SASL_USERNAME=u\nKAFKA_SASL_PASSWORD=p\nKAFKA_SSL_CAFILE=/ca.pem\n"
    plan = plan_for(tmp_path, single_kafka(security_protocol="PLAINTEXT"), env)
    extra = plan.connections["k"]["extra"]
    assert extra == {"bootstrap.servers": "127.0.0.1:9092", "security.protocol": "PLAINTEXT"}
    assert any("KAFKA_SASL_PASSWORD" in note and "left out" in note for note in plan.notes)


def test_a_sasl_connection_without_a_mechanism_keeps_kafka_pythons_plain(tmp_path):
    env = "KAFKA_SECURITY_PROTOCOL=SASL_SSL\nKAFKA_SASL_USERNAME=u\nKAFKA_SASL_PASSWORD=p\n"
    assert plan_for(tmp_path, single_kafka(), env).connections["k"]["extra"]["sasl.mechanism"] == "PLAIN"


def test_a_sasl_connection_without_credentials_is_rejected_with_where_to_fix_it(tmp_path):
    with pytest.raises(ConnectionImportError, match=r"sasl.username and sasl.password must be set.*--env-file"):
        plan_for(tmp_path, single_kafka(security_protocol="SASL_SSL"))


def test_sasl_plaintext_gets_credentials_but_no_tls_files(tmp_path):
    env = "KAFKA_SASL_MECHANISM=PLAIN\nKAFKA_SASL_USERNAME=u\nKAFKA_SASL_PASSWORD=p\nKAFKA_SSL_CAFILE=/ca.pem\n"
    extra = plan_for(tmp_path, single_kafka(security_protocol="SASL_PLAINTEXT"), env).connections["k"]["extra"]
    assert extra["sasl.username"] == "u"
    assert "ssl.ca.location" not in extra


def test_the_env_file_alone_becomes_kafka_default(tmp_path):
    plan = plan_for(tmp_path, {}, "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092\nKAFKA_LINGER_MS=5\n")
    assert plan.connections["kafka_default"]["extra"] == {"bootstrap.servers": "127.0.0.1:9092", "linger.ms": 5}


def test_a_kafka_entry_named_kafka_default_takes_precedence_over_the_env_file_one(tmp_path):
    document = {"kafka_connections": {"kafka_default": {"bootstrap_servers": "entry:9092"}}}
    plan = plan_for(tmp_path, document, "KAFKA_BOOTSTRAP_SERVERS=env:9092\n")
    assert plan.connections["kafka_default"]["extra"]["bootstrap.servers"] == "entry:9092"


def test_the_seeds_high_throughput_settings_are_rejected_by_librdkafka_with_its_reason(tmp_path):
    env = "KAFKA_ENABLE_IDEMPOTENCE=true\nKAFKA_ACKS=all\nKAFKA_MAX_IN_FLIGHT_REQUESTS=10\n"
    with pytest.raises(ConnectionImportError, match=r"'k'.*max.in.flight.*<= 5 when `enable.idempotence` is true"):
        plan_for(tmp_path, single_kafka(), env)


def test_a_value_of_the_wrong_kind_names_the_variable_and_what_was_expected(tmp_path):
    with pytest.raises(ConnectionImportError, match=r"KAFKA_LINGER_MS: expected a whole number, got 'ten'"):
        plan_for(tmp_path, single_kafka(), "KAFKA_LINGER_MS=ten\n")


def test_an_unknown_compression_is_rejected_with_the_choices(tmp_path):
    with pytest.raises(ConnectionImportError, match=r"expected one of none, gzip, snappy, lz4, zstd"):
        plan_for(tmp_path, single_kafka(compression_type="brotli"))


def test_a_missing_certificate_file_is_reported_not_fatal(tmp_path):
    plan = plan_for(tmp_path, single_kafka(security_protocol="SSL", ssl_cafile="/nowhere/ca.pem"))
    assert plan.connections["k"]["extra"]["ssl.ca.location"] == "/nowhere/ca.pem"
    assert any("/nowhere/ca.pem does not exist here" in note for note in plan.notes)


def test_an_unknown_field_in_a_kafka_entry_is_an_error_with_a_suggestion(tmp_path):
    with pytest.raises(
        ConnectionImportError, match=r"kafka_connections.k: unknown field 'sasl_mechanisms'.*sasl_mechanism"
    ):
        plan_for(tmp_path, single_kafka(sasl_mechanisms="PLAIN"))


def test_a_kafka_entry_without_servers_is_an_error(tmp_path):
    with pytest.raises(ConnectionImportError, match="no bootstrap_servers"):
        plan_for(tmp_path, {"kafka_connections": {"k": {"security_protocol": "PLAINTEXT"}}})


def test_the_entry_name_becomes_the_description_and_default_topic_a_note(tmp_path):
    plan = plan_for(tmp_path, single_kafka(name="Kafka Produzione", default_topic="pstt-traces"))
    assert plan.connections["k"]["description"] == "Kafka Produzione"
    assert any("'pstt-traces'" in note and "kafka_config.topic" in note for note in plan.notes)


def test_an_oracle_entry_becomes_an_oracle_connection_named_as_in_the_job_specs(tmp_path):
    entry = {
        "name": "A00-CDG-Collaudo",
        "type": "oracle",
        "host": "db-collaudo.example.com",
        "port": 1521,
        "service_name": "CDGCOLL",
        "username": "pstt_reader",
        "password": "${DB_PASSWORD}",
        "environment": "collaudo",
    }
    plan = plan_for(tmp_path, {"connections": [entry]}, environ={"DB_PASSWORD": "db-pw"})
    assert plan.connections["A00-CDG-Collaudo"] == {
        "conn_type": "oracle",
        "description": "collaudo",
        "host": "db-collaudo.example.com",
        "login": "pstt_reader",
        "password": "db-pw",
        "port": 1521,
        "extra": {"service_name": "CDGCOLL"},
    }


@pytest.mark.parametrize(
    ("fields", "expected_extra"),
    [
        ({"host": "h", "sid": "ORCL"}, {"sid": "ORCL"}),
        ({"dsn": "h:1521/SVC"}, {"dsn": "h:1521/SVC"}),
    ],
)
def test_oracle_entries_may_name_a_sid_or_a_full_dsn(tmp_path, fields, expected_extra):
    plan = plan_for(tmp_path, {"connections": [{"name": "db", **fields}]})
    assert plan.connections["db"]["conn_type"] == "oracle"
    assert plan.connections["db"]["extra"] == expected_extra


def test_an_oracle_entry_without_a_service_is_an_error(tmp_path):
    with pytest.raises(ConnectionImportError, match="needs host and service_name"):
        plan_for(tmp_path, {"connections": [{"name": "db", "host": "h"}]})


def test_postgres_and_sqlite_entries_map_database_to_their_airflow_fields(tmp_path):
    document = {
        "connections": [
            {"name": "pg", "type": "postgresql", "host": "h", "port": "5432", "database": "traces", "username": "u"},
            {"name": "lite", "type": "sqlite", "database": "/data/traces.db"},
        ]
    }
    plan = plan_for(tmp_path, document)
    assert plan.connections["pg"] == {
        "conn_type": "postgres",
        "host": "h",
        "login": "u",
        "port": 5432,
        "schema": "traces",
    }
    assert plan.connections["lite"] == {"conn_type": "sqlite", "host": "/data/traces.db"}


def test_an_unsupported_database_type_lists_the_supported_ones(tmp_path):
    with pytest.raises(ConnectionImportError, match=r"'db2' is not supported \(one of: oracle, postgres"):
        plan_for(tmp_path, {"connections": [{"name": "db", "type": "db2"}]})


def test_an_unknown_db_field_is_an_error_with_a_suggestion(tmp_path):
    with pytest.raises(ConnectionImportError, match=r"unknown field 'usename' \(did you mean 'username'\?\)"):
        plan_for(tmp_path, {"connections": [{"name": "db", "dsn": "x", "usename": "u"}]})


def test_a_connection_id_airflow_would_refuse_is_an_error(tmp_path):
    with pytest.raises(ConnectionImportError, match="not a valid Airflow connection id"):
        plan_for(tmp_path, {"connections": [{"name": "A00 CDG", "dsn": "x"}]})


@pytest.mark.parametrize(
    ("conn_id", "reason"),
    [("prod..eu", r"consecutive dots"), ("k" * 201, r"less than 200 characters")],
)
def test_airflows_importer_rules_for_ids_apply_before_anything_is_printed(tmp_path, conn_id, reason):
    with pytest.raises(ConnectionImportError, match=rf"kafka_connections\.{conn_id}: .*not a valid Airflow.*{reason}"):
        plan_for(tmp_path, {"kafka_connections": {conn_id: {"bootstrap_servers": "127.0.0.1:9092"}}})


def test_the_same_id_for_a_db_and_a_kafka_connection_is_an_error(tmp_path):
    document = {"connections": [{"name": "k", "dsn": "x"}], **single_kafka()}
    with pytest.raises(ConnectionImportError, match="'k' is defined twice"):
        plan_for(tmp_path, document)


def test_the_seeds_comment_lines_get_a_hint_to_remove_them(tmp_path):
    path = write(tmp_path, "connections.json", '{"connections": [\n  // ... existing DB connections ...\n]}')
    with pytest.raises(ConnectionImportError, match=r"connections.json:2:\d+: .*JSON allows no comments"):
        build_plan(path, None, {})


def test_smtp_variables_become_smtp_default_with_starttls_on_587(tmp_path):
    env = "SMTP_HOST=smtp.example.com\nSMTP_PORT=587\nSMTP_USERNAME=u\nSMTP_PASSWORD=p\nSMTP_FROM=pstt@example.com\n"
    assert plan_for(tmp_path, {}, env).connections["smtp_default"] == {
        "conn_type": "smtp",
        "host": "smtp.example.com",
        "port": 587,
        "login": "u",
        "password": "p",
        "extra": {"disable_ssl": True, "from_email": "pstt@example.com"},
    }


def test_masking_hides_every_password_and_nothing_else(tmp_path):
    env = "KAFKA_SECURITY_PROTOCOL=SASL_SSL\nKAFKA_SASL_USERNAME=u\nKAFKA_SASL_PASSWORD=p\nKAFKA_SSL_PASSWORD=kp\n"
    document = {"connections": [{"name": "db", "dsn": "x", "password": "dbp"}], **single_kafka()}
    plan = plan_for(tmp_path, document, env)
    shown = masked(plan.connections)
    assert shown["db"]["password"] == MASK
    assert shown["k"]["extra"]["sasl.password"] == MASK
    assert shown["k"]["extra"]["ssl.key.password"] == MASK
    assert shown["k"]["extra"]["sasl.username"] == "u"
    assert plan.connections["k"]["extra"]["sasl.password"] == "p"
    assert not {"p", "kp", "dbp"} & set(json.dumps(shown).replace('"', " ").split())


def test_the_seed_example_maps_each_environment_to_one_kafka_connection(tmp_path):
    environ = {"KAFKA_PASSWORD_PROD": "prod-pw", "SMTP_PASSWORD": "smtp-pw", "PSTT_CERTS_DIR": str(tmp_path)}
    plan = build_plan(SEED / "connections.json", SEED / "production.env", environ)
    assert set(plan.connections) == {"development", "collaudo", "produzione", "kafka_default", "smtp_default"}
    produzione = plan.connections["produzione"]
    assert produzione["conn_type"] == "kafka"
    assert produzione["extra"]["bootstrap.servers"] == "kafka-prod-1.example.com:9093,kafka-prod-2.example.com:9093"
    assert produzione["extra"]["sasl.mechanism"] == "SCRAM-SHA-256"
    assert produzione["extra"]["sasl.password"] == "prod-pw"
    assert plan.connections["collaudo"]["extra"]["sasl.mechanism"] == "PLAIN"
    assert plan.connections["development"]["extra"]["security.protocol"] == "PLAINTEXT"


def test_the_runbooks_alert_thresholds_are_reported_as_pstt_health_settings(tmp_path):
    env = "ALERT_SUCCESS_RATE_WARNING=98\nALERT_LATENCY_P99_CRITICAL=5000\nSMTP_TO=ops@example.com\n"
    notes = plan_for(tmp_path, {}, env).notes
    assert any("ALERT_SUCCESS_RATE_WARNING" in note and "AIRFLOW__PSTT__SUCCESS_RATE_WARNING" in note for note in notes)
    assert any(
        "ALERT_LATENCY_P99_CRITICAL" in note and "AIRFLOW__PSTT__LATENCY_P99_CRITICAL_MS" in note for note in notes
    )
    assert any("SMTP_TO" in note and "email_notification.recipients" in note for note in notes)


def test_a_smtp_port_that_is_not_a_number_is_an_error(tmp_path):
    with pytest.raises(
        ConnectionImportError, match=r"SMTP_PORT: expected a port number from 1 to 65535, got 'submission'"
    ):
        plan_for(tmp_path, {}, "SMTP_HOST=smtp.example.com\nSMTP_PORT=submission\n")


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (
            '{"kafka_connections": {"default": {"bootstrap_servers": "a:1", "bootstrap_servers": "b:2"}}}',
            "kafka_connections.default.bootstrap_servers appears twice",
        ),
        (
            '{"connections": [{"name": "a", "dsn": "x"}, {"name": "b", "dsn": "x", "password": "1", "password": "2"}]}',
            r"connections\[1\].password appears twice",
        ),
        (
            '{"kafka_connections": {"k": {"bootstrap_servers": "a:1"}}, "kafka_connections": {}}',
            "kafka_connections appears twice",
        ),
        (
            '{"connections": [{"name": "a", "dsn": "x", "dsn": "y", "dsn": "z"}]}',
            r"connections\[0\].dsn appears 3 times",
        ),
    ],
)
def test_a_key_given_twice_is_refused_with_its_path(tmp_path, text, where):
    with pytest.raises(ConnectionImportError, match=rf"connections\.json: {where}; keep one"):
        build_plan(write(tmp_path, "connections.json", text), None, {})


def test_a_latin1_connections_file_is_refused_naming_the_file_and_line(tmp_path):
    path = tmp_path / "connections.json"
    path.write_bytes('{"connections": [\n{"name": "caffè", "dsn": "x"}]}'.encode("latin-1"))
    with pytest.raises(ConnectionImportError, match=r"connections\.json:2: not UTF-8 text \(byte 0xe8.*save the file"):
        build_plan(path, None, {})


def test_deeply_nested_json_is_refused_without_a_recursion_error(tmp_path):
    path = write(tmp_path, "connections.json", "[" * 100_000 + "]" * 100_000)
    with pytest.raises(ConnectionImportError, match=r"connections\.json: the JSON is nested too deeply"):
        build_plan(path, None, {})


def test_a_latin1_env_file_is_refused_naming_the_file(tmp_path):
    (tmp_path / ".env").write_bytes("KAFKA_CLIENT_ID=società\n".encode("latin-1"))
    with pytest.raises(ConnectionImportError, match=r"\.env:1: not UTF-8 text"):
        build_plan(write(tmp_path, "connections.json", {}), tmp_path / ".env", {})


@pytest.mark.parametrize(
    ("line", "what"),
    [('KAFKA_SASL_PASSWORD="s3cret', "the value of KAFKA_SASL_PASSWORD"), ('just s3cret words "', "this line")],
)
def test_an_env_line_dotenv_cannot_parse_is_an_error_naming_file_and_line(tmp_path, line, what):
    with pytest.raises(ConnectionImportError, match=rf"\.env:3: cannot parse {what}; expected NAME=value") as info:
        plan_for(tmp_path, {}, f"# comment\nKAFKA_LINGER_MS=5\n{line}\nKAFKA_ACKS=all\n")
    assert "s3cret" not in str(info.value)  # the line may hold a password: only its number is shown


@pytest.mark.parametrize(
    ("variable", "value", "allowed"),
    [
        ("KAFKA_LINGER_MS", "-1", "from 0 to 900000"),
        ("KAFKA_LINGER_MS", "900001", "from 0 to 900000"),
        ("KAFKA_BATCH_SIZE", "-5", "from 1 to 2147483647"),
        ("KAFKA_BATCH_SIZE", "0", "from 1 to 2147483647"),
        ("KAFKA_RETRIES", "-3", "from 0 to 2147483647"),
        ("KAFKA_RETRY_BACKOFF_MS", "0", "from 1 to 300000"),
        ("KAFKA_REQUEST_TIMEOUT_MS", "0", "from 1 to 900000"),
        ("KAFKA_REQUEST_TIMEOUT_MS", "99999999999999999999", "from 1 to 900000"),
        ("KAFKA_MAX_REQUEST_SIZE", "999", "from 1000 to 1000000000"),
        ("KAFKA_MAX_IN_FLIGHT_REQUESTS", "0", "from 1 to 1000000"),
        ("KAFKA_BUFFER_MEMORY", "-100", "of bytes from 1 to 2199023254528"),
        ("KAFKA_BUFFER_MEMORY", "0", "of bytes from 1 to 2199023254528"),
    ],
)
def test_a_number_outside_librdkafkas_range_names_the_variable_value_and_range(tmp_path, variable, value, allowed):
    with pytest.raises(
        ConnectionImportError, match=rf"\.env: {variable}: expected a whole number {allowed}, got '{value}'"
    ):
        plan_for(tmp_path, {}, f"{variable}={value}\n")


def test_the_range_applies_to_connections_json_entries_too(tmp_path):
    with pytest.raises(
        ConnectionImportError, match=r"kafka_connections\.k\.batch_size: expected a whole number from 1"
    ):
        plan_for(tmp_path, single_kafka(batch_size=-5))


@pytest.mark.parametrize("servers", ["a:9092,b:70000", "b:0", "[::1]:65536", "SASL_SSL://b:-1", "b:ninety"])
def test_a_bootstrap_server_port_out_of_range_is_refused_naming_the_server(tmp_path, servers):
    bad = servers.split(",")[-1]
    with pytest.raises(ConnectionImportError, match=rf"KAFKA_BOOTSTRAP_SERVERS: '{re.escape(bad)}': expected a port"):
        plan_for(tmp_path, {}, f"KAFKA_BOOTSTRAP_SERVERS={servers}\n")


@pytest.mark.parametrize("servers", ["a:9092,b", "[::1]:9092", "PLAINTEXT://b:9093", "fe80::1"])
def test_bootstrap_servers_without_a_port_or_with_ipv6_are_accepted(tmp_path, servers):
    extra = plan_for(tmp_path, {}, f"KAFKA_BOOTSTRAP_SERVERS={servers}\n").connections["kafka_default"]["extra"]
    assert extra["bootstrap.servers"] == servers


def test_a_db_or_smtp_port_out_of_range_is_refused(tmp_path):
    with pytest.raises(ConnectionImportError, match=r"connections\[0\]\.port: expected a port number from 1 to 65535"):
        plan_for(tmp_path, {"connections": [{"name": "db", "host": "h", "sid": "S", "port": 70000}]})
    with pytest.raises(ConnectionImportError, match=r"SMTP_PORT: expected a port number from 1 to 65535, got '0'"):
        plan_for(tmp_path, {}, "SMTP_HOST=smtp.example.com\nSMTP_PORT=0\n")


def test_librdkafkas_reason_is_one_line(tmp_path):
    env = "KAFKA_ENABLE_IDEMPOTENCE=true\nKAFKA_ACKS=all\nKAFKA_MAX_IN_FLIGHT_REQUESTS=10\n"
    with pytest.raises(ConnectionImportError) as info:
        plan_for(tmp_path, single_kafka(), env)
    assert "\n" not in str(info.value)


def test_the_documented_number_ranges_are_the_ones_enforced():
    page = Path(__file__).resolve().parents[2] / "docs" / "coming-from-pstt-tool.md"
    documented = {
        name: (int(low), int(high))
        for name, low, high in re.findall(r"^\| `(KAFKA_\w+)` \| (\d+) to (\d+)\b", page.read_text(), re.M)
    }
    enforced = {
        setting.env: (setting.convert.low, setting.convert.high)
        for setting in KAFKA_SETTINGS
        if isinstance(setting.convert, WholeNumber)
    }
    assert documented == {**enforced, "KAFKA_BUFFER_MEMORY": (BUFFER_BYTES.low, BUFFER_BYTES.high)}


def test_a_connection_airflows_importer_did_not_import_is_an_error_with_its_output(capsys):
    connections = {"a": {"conn_type": "kafka"}, "b": {"conn_type": "smtp"}}
    printed = ["Imported connection a", "Could not import connection. something Airflow refused"]
    with pytest.raises(ConnectionImportError, match=r"did not import b .*done so far: created a \(kafka\)"):
        _report(connections, set(), printed)
    assert (
        capsys.readouterr().err
        == "airflow connections import: Could not import connection. something Airflow refused\n"
    )

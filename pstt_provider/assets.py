"""
A job's topic as an Airflow Asset, so DAGs that read the topic can run when an export has finished instead of at a
guessed later cron.

The URI is the one Airflow's Kafka provider defines for its ``kafka`` scheme, ``kafka://<server>/<topic>`` with the
first bootstrap server of the job's Kafka connection: the same topic name on two clusters is two assets. The URI is
fixed when the DAG is parsed, so the connection is read then (the DAG processor asks the API server, ``pstt render``
the environment's connections only); a connection that cannot be read leaves the task without an outlet until a
later parse can read it, said in the log, rather than under a made-up URI no consumer would subscribe to.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pstt_provider.summary import DeliverySummary

log = logging.getLogger(__name__)


def topic_uri(server: str, topic: str) -> str:
    return f"kafka://{server}/{topic}"


def first_server(bootstrap_servers: str) -> str:
    """``host:port`` of the first entry of a librdkafka ``bootstrap.servers`` list, a ``SASL_SSL://`` prefix dropped."""
    first = bootstrap_servers.split(",")[0].strip()
    return first.partition("://")[2] or first


def connection_server(kafka_conn_id: str, *, quiet: bool = False) -> str | None:
    """
    The first bootstrap server of the Kafka connection; None when the connection cannot be read, logged unless
    ``quiet`` (``pstt render`` says so in its output instead).
    """
    from pstt_provider.hooks.kafka import PsttKafkaHook

    try:
        servers = PsttKafkaHook(kafka_conn_id).explicit_config().get("bootstrap.servers")
        if not servers:
            raise ValueError("no bootstrap.servers in its extra")
    except Exception as err:  # not defined yet, or not readable here: the next parse tries again
        if not quiet:
            log.warning("Kafka connection %r not readable (%s): its topics get no Airflow Asset", kafka_conn_id, err)
        return None
    return first_server(str(servers))


def event_extra(summary: DeliverySummary, incremental: bool) -> dict[str, Any]:
    """
    What a successful run tells the consumers of its topic: rows read, messages sent and, for an incremental job,
    the position it reached (where the next run starts).
    """
    extra: dict[str, Any] = {"rows": summary.rows, "messages": summary.messages_sent}
    if incremental and summary.position_after is not None:
        extra["position"] = summary.position_after
    return extra


def announce(outlet_events: Any, outlets: Any, extra: Mapping[str, Any]) -> None:
    """Puts ``extra`` on the asset event Airflow records for each of the task's Asset outlets when the try succeeds."""
    from airflow.sdk import Asset

    for outlet in outlets or ():
        if isinstance(outlet, Asset):
            outlet_events[outlet].extra = dict(extra)

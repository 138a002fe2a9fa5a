"""Provider metadata read by Airflow's ProvidersManager through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from pstt_provider import __version__
from pstt_provider.options import provider_config


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "pstt-provider",
        "name": "PSTT",
        "description": "Publish SQL query results to Apache Kafka on a schedule, exactly and fast.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "PSTT",
                "external-doc-url": "https://pypi.org/project/pstt-provider/",
                "tags": ["software"],
            }
        ],
        "operators": [
            {
                "integration-name": "PSTT",
                "python-modules": [
                    "pstt_provider.operators.sql_to_kafka",
                    "pstt_provider.operators.oracle_to_kafka",
                    "pstt_provider.operators.split_ranges",
                    "pstt_provider.operators.announce",
                ],
            }
        ],
        "hooks": [
            {
                "integration-name": "PSTT",
                "python-modules": ["pstt_provider.hooks.kafka", "pstt_provider.hooks.schema_registry"],
            }
        ],
        "connection-types": [
            {"hook-class-name": "pstt_provider.hooks.kafka.PsttKafkaHook", "connection-type": "pstt_kafka"}
        ],
        "plugins": [{"name": "pstt", "plugin-class": "pstt_provider.plugins.metrics.PsttPlugin"}],
        "config": provider_config(),
    }

"""
``pstt import-connections``: PSTT Tool's connections.json and .env as Airflow connections.

PSTT Tool kept its DB connections and Kafka environments in connections.json and the producer's tuning and
credentials in KAFKA_* variables of a .env file. Airflow keeps all of them as connections: DB ones of the driver's
type, Kafka ones of type ``kafka`` whose extra is a librdkafka config dict (the official Kafka provider's format).

- ``settings``: the KAFKA_* variables, the librdkafka property each becomes and how its value is read;
- ``sources``: reading connections.json and the .env, strictly, with errors that name the file and line;
- ``plan``: the Airflow connections those inputs describe, in ``airflow connections import``'s format;
- ``airflow_import``: handing a plan to Airflow's own importer;
- ``cli``: the command itself, and the masking of what it prints.

This module stays free of imports: ``scripts/gen_docs.py`` reads ``settings`` without loading the rest.
"""

from __future__ import annotations


class ConnectionImportError(Exception):
    """The input cannot become working Airflow connections; the message says where and how to fix it."""

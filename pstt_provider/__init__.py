"""pstt-provider: publish relational query results to Apache Kafka from Apache Airflow 3."""

__version__ = "0.1.0"

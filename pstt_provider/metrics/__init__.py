"""Delivery metrics: storage in Airflow's database, aggregation, Kafka reachability, Prometheus exposition."""

"""
Prometheus exposition of the stored delivery runs.

A custom collector reads the runs from Airflow's database at every scrape, so the counters survive API
server restarts and agree across workers: process-global counters would reset and split per worker.
Tries that retention deleted count through their sums (``store.TrySums``), so no counter ever goes down:
``rate()`` and ``increase()`` would take a drop for a restart from zero and count everything again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from pstt_provider.latency import LatencyHistogram, bucket_upper_ms
from pstt_provider.metrics.kafka_health import ConnectionHealth
from pstt_provider.metrics.store import TrySums
from pstt_provider.summary import DeliverySummary

# Prometheus-style bucket bounds (seconds) for the exposed latency histogram.
LATENCY_BUCKETS_S = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def prometheus_buckets(histogram: LatencyHistogram) -> list[tuple[str, float]]:
    """
    Cumulative counts per ``le`` bound. A fine bucket is counted under the first bound at or above its
    upper edge, so a count is never reported below a latency it may hold.
    """
    cumulative = []
    for bound_s in LATENCY_BUCKETS_S:
        count = sum(n for index, n in histogram.counts.items() if bucket_upper_ms(index) <= bound_s * 1000 + 1e-9)
        cumulative.append((repr(bound_s), float(count)))
    cumulative.append(("+Inf", float(histogram.total)))
    return cumulative


_COUNTED = ("messages_sent", "messages_failed", "bytes", "messages_dead_lettered", "messages_aborted")
"""The summary counts exported as counters per job and topic, in the order ``collect`` adds them."""


class DeliveryRunsCollector(Collector):
    def __init__(
        self,
        load_runs: Callable[[], Sequence[DeliverySummary]],
        load_retired: Callable[[], Sequence[TrySums]],
        load_health: Callable[[], Sequence[ConnectionHealth]],
    ) -> None:
        self._load_runs = load_runs
        self._load_retired = load_retired
        self._load_health = load_health

    def collect(self) -> Iterator[Metric]:
        sent = CounterMetricFamily(
            "pstt_kafka_messages_sent", "Messages acknowledged by Kafka", labels=["dag_id", "topic"]
        )
        failed = CounterMetricFamily(
            "pstt_kafka_messages_failed", "Messages Kafka did not acknowledge", labels=["dag_id", "topic"]
        )
        size = CounterMetricFamily("pstt_kafka_bytes", "Bytes of acknowledged messages", labels=["dag_id", "topic"])
        dead = CounterMetricFamily(
            "pstt_kafka_messages_dead_lettered", "Rows sent to the dead-letter topic", labels=["dag_id", "topic"]
        )
        aborted = CounterMetricFamily(
            "pstt_kafka_messages_aborted",
            "Messages acknowledged inside an aborted transaction (invisible to read_committed consumers)",
            labels=["dag_id", "topic"],
        )
        tries = CounterMetricFamily(
            "pstt_kafka_runs", "Delivery task tries by final state", labels=["dag_id", "topic", "state"]
        )
        latency = HistogramMetricFamily(
            "pstt_kafka_delivery_latency_seconds", "Produce-to-acknowledgement latency", labels=["topic"]
        )
        up = GaugeMetricFamily("pstt_kafka_connection_up", "1 when the Kafka connection answers", labels=["conn_id"])
        last_success = GaugeMetricFamily(
            "pstt_kafka_last_success_timestamp_seconds",
            "When the latest successful delivery task try ended (Unix time)",
            labels=["dag_id", "topic"],
        )

        by_dag_topic: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
        by_state: dict[tuple[str, str, str], int] = defaultdict(int)
        by_topic: dict[str, LatencyHistogram] = defaultdict(LatencyHistogram)
        succeeded: dict[tuple[str, str], float] = {}
        for item in (*self._load_retired(), *map(TrySums.of, self._load_runs())):
            counts = by_dag_topic[(item.dag_id, item.topic)]
            for index, name in enumerate(_COUNTED):
                counts[index] += item.counts[name]
            by_state[(item.dag_id, item.topic, item.state)] += item.tries
            by_topic[item.topic].merge(item.latency)
            if item.state == "success":
                ended = item.last_finished_at.timestamp()
                succeeded[(item.dag_id, item.topic)] = max(ended, succeeded.get((item.dag_id, item.topic), ended))
        for (dag_id, topic), (n_sent, n_failed, n_bytes, n_dead, n_aborted) in sorted(by_dag_topic.items()):
            sent.add_metric([dag_id, topic], n_sent)
            failed.add_metric([dag_id, topic], n_failed)
            size.add_metric([dag_id, topic], n_bytes)
            dead.add_metric([dag_id, topic], n_dead)
            aborted.add_metric([dag_id, topic], n_aborted)
        for labels, count in sorted(by_state.items()):
            tries.add_metric(list(labels), count)
        for topic, histogram in sorted(by_topic.items()):
            latency.add_metric([topic], prometheus_buckets(histogram), histogram.sum_ms / 1000)
        for (dag_id, topic), ended in sorted(succeeded.items()):
            last_success.add_metric([dag_id, topic], ended)
        for health in self._load_health():
            up.add_metric([health.conn_id], 1.0 if health.reachable else 0.0)
        yield from (sent, failed, size, dead, aborted, tries, latency, up, last_success)


def exposition(
    load_runs: Callable[[], Sequence[DeliverySummary]],
    load_retired: Callable[[], Sequence[TrySums]],
    load_health: Callable[[], Sequence[ConnectionHealth]],
) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DeliveryRunsCollector(load_runs, load_retired, load_health))
    return generate_latest(registry)

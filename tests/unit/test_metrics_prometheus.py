"""Prometheus exposition of stored tries (pure: the loaders are plain functions)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from helpers.summaries import FINISHED, tried
from prometheus_client.parser import text_string_to_metric_families

from pstt_provider.latency import LatencyHistogram
from pstt_provider.metrics.kafka_health import ConnectionHealth
from pstt_provider.metrics.prometheus import exposition, prometheus_buckets


def samples(text: bytes) -> dict:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
    }


def test_counters_by_dag_and_topic_latency_histogram_by_topic_and_connection_up():
    runs = [tried("d1", "a", 3, 0, [2.0, 4.0, 600.0]), tried("d1", "a", 2, 1, [3.0, 3.0]), tried("d2", "b", 0, 4, [])]
    health = [ConnectionHealth("kafka_default", True, 1.0, 1, None), ConnectionHealth("kafka_dr", False, None, 0, "x")]

    values = samples(exposition(lambda: runs, list, lambda: health))

    a = (("dag_id", "d1"), ("topic", "a"))
    assert values[("pstt_kafka_messages_sent_total", a)] == 5
    assert values[("pstt_kafka_messages_failed_total", a)] == 1
    assert values[("pstt_kafka_bytes_total", a)] == 50
    assert values[("pstt_kafka_messages_failed_total", (("dag_id", "d2"), ("topic", "b")))] == 4
    assert values[("pstt_kafka_runs_total", (("dag_id", "d1"), ("state", "failed"), ("topic", "a")))] == 1
    assert values[("pstt_kafka_delivery_latency_seconds_count", (("topic", "a"),))] == 5
    assert values[("pstt_kafka_delivery_latency_seconds_bucket", (("le", "0.005"), ("topic", "a")))] == 4
    assert values[("pstt_kafka_delivery_latency_seconds_bucket", (("le", "0.5"), ("topic", "a")))] == 4
    assert values[("pstt_kafka_delivery_latency_seconds_bucket", (("le", "1.0"), ("topic", "a")))] == 5
    assert values[("pstt_kafka_connection_up", (("conn_id", "kafka_default"),))] == 1
    assert values[("pstt_kafka_connection_up", (("conn_id", "kafka_dr"),))] == 0


def test_buckets_are_cumulative_and_never_report_a_latency_below_its_bound():
    histogram = LatencyHistogram()
    for ms in (0.5, 9.9, 10.5, 2600.0):
        histogram.record(ms)
    buckets = dict(prometheus_buckets(histogram))
    assert buckets["0.001"] == 1
    assert buckets["0.01"] == 1  # 9.9 ms lies in a fine bucket reaching past 10 ms: counted under the next bound
    assert buckets["0.025"] == 3
    assert buckets["2.5"] == 3
    assert buckets["5.0"] == buckets["+Inf"] == 4
    assert list(buckets.values()) == sorted(buckets.values())


def test_dead_lettered_and_aborted_messages_are_counted_by_dag_and_topic():
    runs = [tried("d1", "a", 0, 2, [], messages_dead_lettered=3, messages_aborted=40), tried("d1", "a", 5, 0, [])]

    values = samples(exposition(lambda: runs, list, list))

    a = (("dag_id", "d1"), ("topic", "a"))
    assert values[("pstt_kafka_messages_dead_lettered_total", a)] == 3
    assert values[("pstt_kafka_messages_aborted_total", a)] == 40


def test_last_success_is_when_the_latest_successful_try_ended_and_failed_tries_do_not_move_it():
    older = tried("d1", "a", 3, 0, [])
    newer = replace(tried("d1", "a", 3, 0, []), finished_at=FINISHED + timedelta(hours=1))
    failed_later = replace(tried("d1", "a", 0, 3, []), finished_at=FINISHED + timedelta(hours=2))
    never_succeeded = tried("d2", "b", 0, 1, [])

    values = samples(exposition(lambda: [newer, older, failed_later, never_succeeded], list, list))

    last = {labels: value for (name, labels), value in values.items() if name.startswith("pstt_kafka_last_success")}
    assert last == {(("dag_id", "d1"), ("topic", "a")): (FINISHED + timedelta(hours=1)).timestamp()}


def test_retention_deleting_tries_leaves_every_counter_and_the_last_success_where_they_were(tmp_path):
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from pstt_provider.metrics import store

    now = store.utcnow()
    old = [
        replace(tried("d1", "a", 3, 0, [2.0, 40.0], messages_dead_lettered=1), finished_at=now - timedelta(days=40)),
        replace(tried("d1", "a", 0, 2, [900.0]), finished_at=now - timedelta(days=35)),
    ]
    recent = [replace(tried("d1", "a", 5, 0, [3.0]), run_id="new", finished_at=now - timedelta(hours=1))]
    engine = create_engine(f"sqlite:///{tmp_path / 'metrics.db'}")
    with Session(engine) as session:
        store.ensure_tables(engine)
        rows = [store.summary_row(replace(item, run_id=f"r{n}"), now) for n, item in enumerate(old)]
        session.execute(store.tries_table.insert(), [*rows, store.summary_row(recent[0], now)])
        session.commit()

        def scraped() -> dict:
            return samples(exposition(lambda: store.tries(session), lambda: store.retired(session), list))

        before = scraped()
        deleted = store.cleanup(session, 30)
        after = scraped()
        store.cleanup(session, 30)  # nothing left to retire: nothing is added twice

        assert deleted == 2
        assert [item.run_id for item in store.tries(session)] == ["new"]
        assert after == before == scraped()
    a = (("dag_id", "d1"), ("topic", "a"))
    assert after[("pstt_kafka_messages_sent_total", a)] == 8
    assert after[("pstt_kafka_messages_dead_lettered_total", a)] == 1
    assert after[("pstt_kafka_runs_total", (("dag_id", "d1"), ("state", "failed"), ("topic", "a")))] == 1
    assert after[("pstt_kafka_delivery_latency_seconds_count", (("topic", "a"),))] == 4

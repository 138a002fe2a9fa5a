"""
librdkafka's log through Python logging: levels, and each message at most once per 30 s (fake clock).

The calls are the ones confluent-kafka makes: ``log(python_level, "%s [%s] %s", facility, client, text)``.
"""

from __future__ import annotations

import logging

import pytest

from pstt_provider.hooks.kafka import PsttKafkaHook
from pstt_provider.hooks.librdkafka_log import LIBRDKAFKA_LOGGER, LibrdkafkaLog

REFUSED = (
    "[thrd:127.0.0.1:9092/1]: 127.0.0.1:9092/1: Connect to ipv4#127.0.0.1:9092 failed: Connection refused "
    "(after {ms}ms in state CONNECT{suppressed})"
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class Lines:
    """The librdkafka logger's records of the running test (caplog's records list is replaced per test phase)."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog

    def __iter__(self):
        return (r for r in self.caplog.records if r.name == LIBRDKAFKA_LOGGER.name)

    def __len__(self) -> int:
        return len(list(iter(self)))


@pytest.fixture
def lines(caplog: pytest.LogCaptureFixture) -> Lines:
    caplog.set_level(logging.DEBUG, logger=LIBRDKAFKA_LOGGER.name)
    return Lines(caplog)


def refused(ms: int = 0, suppressed: int = 0) -> str:
    return REFUSED.format(ms=ms, suppressed=f", {suppressed} identical error(s) suppressed" if suppressed else "")


def fail(log: LibrdkafkaLog, text: str, level: int = logging.ERROR) -> None:
    log.log(level, "%s [%s] %s", "FAIL", "rdkafka#producer-1", text)


def test_the_same_failure_is_logged_once_per_30_s_then_with_its_repeat_count(clock, lines):
    log = LibrdkafkaLog(clock=clock)

    for second in range(60):  # an outage: a refused connection every second, each with other numbers in it
        clock.now = 1000.0 + second
        fail(log, refused(ms=second % 7, suppressed=second % 3))

    assert [r.getMessage() for r in lines] == [
        f"FAIL [rdkafka#producer-1] {refused()}",
        f"FAIL [rdkafka#producer-1] {refused(ms=30 % 7)} (repeated 29 times in the last 30 s)",
    ]


def test_flush_reports_what_is_still_being_counted_once(clock, lines):
    log = LibrdkafkaLog(clock=clock)
    fail(log, refused())
    for second in range(1, 11):
        clock.now = 1000.0 + second
        fail(log, refused(ms=second))

    log.flush()
    log.flush()

    assert [r.getMessage() for r in lines] == [
        f"FAIL [rdkafka#producer-1] {refused()}",
        f"FAIL [rdkafka#producer-1] {refused(ms=10)} (repeated 10 times in the last 10 s)",
    ]


def test_different_messages_and_other_brokers_are_not_folded_together(clock, lines):
    log = LibrdkafkaLog(clock=clock)

    fail(log, refused())
    fail(log, refused().replace("9092/1", "9095/2").replace(":9092 failed", ":9095 failed"))
    log.log(logging.ERROR, "%s [%s] %s", "ERROR", "rdkafka#producer-1", "1/1 brokers are down")
    fail(log, refused())

    assert len(lines) == 3


def test_a_message_seen_again_after_a_quiet_window_is_logged_without_a_count(clock, lines):
    log = LibrdkafkaLog(clock=clock)
    fail(log, refused())
    clock.now += 31

    fail(log, refused())

    assert [r.getMessage() for r in lines] == [f"FAIL [rdkafka#producer-1] {refused()}"] * 2


@pytest.mark.parametrize(
    ("client_level", "syslog", "expected"),
    [
        (logging.CRITICAL, "0-2 emerg/alert/crit", logging.ERROR),
        (logging.ERROR, "3 err", logging.ERROR),
        (logging.WARNING, "4 warning", logging.WARNING),
        (logging.INFO, "5-6 notice/info", logging.INFO),
        (logging.DEBUG, "7 debug", logging.DEBUG),
    ],
)
def test_syslog_levels_map_to_python_levels(client_level, syslog, expected, clock, lines):
    """confluent-kafka hands over 0-2 as CRITICAL, 3 ERROR, 4 WARNING, 5-6 INFO, 7 DEBUG; CRITICAL is capped."""
    LibrdkafkaLog(clock=clock).log(client_level, "%s [%s] %s", "COORD", "rdkafka#producer-1", f"level {syslog}")

    assert [(r.levelno, r.name) for r in lines] == [(expected, "pstt_provider.librdkafka")]


def test_coordinator_load_in_progress_is_a_warning_not_an_error(clock, lines):
    LibrdkafkaLog(clock=clock).log(
        logging.WARNING, "%s [%s] %s", "GETPID", "rdkafka#producer-1", "Coordinator load in progress: retrying"
    )

    assert [r.levelname for r in lines] == ["WARNING"]


def test_every_client_config_the_hook_makes_logs_through_the_same_deduplicating_logger():
    hook = PsttKafkaHook("kafka_default")
    hook._connection_config = {"bootstrap.servers": "127.0.0.1:9092"}

    assert hook.producer_config()["logger"] is hook.librdkafka_log
    assert hook.client_config()["logger"] is hook.librdkafka_log
    assert hook.producer_config({"logger": logging.getLogger("mine")})["logger"].name == "mine"

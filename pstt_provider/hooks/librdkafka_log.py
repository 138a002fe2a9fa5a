"""
librdkafka's own log lines, through Python logging: deduplicated for a run's clients, discarded for a probe's.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

LIBRDKAFKA_LOGGER = logging.getLogger("pstt_provider.librdkafka")
"""Where librdkafka's own log lines go, through Python logging (so into the task log, with real levels)."""
REPEAT_WINDOW_S = 30.0
_MAX_REMEMBERED = 1000
_PARENTHESISED = re.compile(r"\((?:[^()]|\([^()]*\))*\)")
_DIGITS = re.compile(r"\d+")
_SUPPRESSED = re.compile(r",? *\d+ identical error\(s\) suppressed")
"""librdkafka's own count of the repeats it held back: the same failure, said again."""


def _volatile_masked(match: re.Match[str]) -> str:
    return _DIGITS.sub("#", match.group())


@dataclass
class _Repeats:
    since: float
    count: int = 0
    level: int = logging.INFO
    line: tuple[str, str, str] = ("", "", "")


class LibrdkafkaLog:
    """
    The ``logger`` of every Kafka client the hook makes: librdkafka's lines in Python logging, each at most once
    per ``window_s``.

    Without it librdkafka writes to stderr, which the task log shows as ERROR whatever the level (a routine
    ``%4|...|Coordinator load in progress`` in red), and a broker outage repeats "Connect to ... failed" for every
    reconnect of every client: 583 lines in one task log. confluent-kafka calls ``log(level, "%s [%s] %s",
    facility, client, text)`` with librdkafka's syslog level already turned into Python's (0-2 CRITICAL, 3 ERROR,
    4 WARNING, 5-6 INFO, 7 DEBUG); CRITICAL is capped at ERROR here, so the task log reads 0-3 error, 4 warning,
    5-6 info, 7 debug.

    The same message (same facility and text; the numbers inside parentheses such as "after 12ms", and
    librdkafka's own "3 identical error(s) suppressed", do not count) is logged once per window; the first
    occurrence after the window ends is logged with "(repeated N times in the last 30 s)". ``flush`` reports what
    is still counted, at the end of a run.
    Callbacks only run inside the clients' ``poll``/``flush``, never per message produced.
    """

    def __init__(
        self,
        logger: logging.Logger = LIBRDKAFKA_LOGGER,
        window_s: float = REPEAT_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.window_s = window_s
        self._clock = clock
        self._seen: dict[tuple[str, str], _Repeats] = {}
        self._lock = threading.Lock()

    def log(self, level: int, msg: str, *args: Any) -> None:
        if len(args) == 3:
            facility, client, text = (str(arg) for arg in args)
        else:
            facility, client, text = "", "", msg % args if args else msg
        level = min(level, logging.ERROR)
        key = (facility, _PARENTHESISED.sub(_volatile_masked, _SUPPRESSED.sub("", text)))
        now = self._clock()
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None and now - seen.since < self.window_s:
                seen.count += 1
                seen.level, seen.line = max(seen.level, level), (facility, client, text)
                return
            repeated = seen.count if seen is not None else 0
            if len(self._seen) >= _MAX_REMEMBERED:
                self._forget_before(now - self.window_s)
            self._seen[key] = _Repeats(since=now)
        self._emit(level, facility, client, text, repeated, self.window_s)

    def flush(self) -> None:
        """Logs the messages still being counted (once each, with their count), e.g. when a run ends."""
        now = self._clock()
        with self._lock:
            pending = [seen for seen in self._seen.values() if seen.count]
            self._seen.clear()
        for seen in pending:
            self._emit(seen.level, *seen.line, seen.count, now - seen.since)

    def _forget_before(self, horizon: float) -> None:
        for key in [key for key, seen in self._seen.items() if seen.since < horizon and not seen.count]:
            del self._seen[key]

    def _emit(self, level: int, facility: str, client: str, text: str, repeated: int, period_s: float) -> None:
        if not self.logger.isEnabledFor(level):
            return
        if repeated:
            self.logger.log(
                level, "%s [%s] %s (repeated %d times in the last %.0f s)", facility, client, text, repeated, period_s
            )
        else:
            self.logger.log(level, "%s [%s] %s", facility, client, text)


class CollectedLines(logging.Handler):
    """Keeps what librdkafka logs for one client instead of letting it reach stderr."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def quiet_logger(name: str) -> tuple[logging.Logger, CollectedLines]:
    """
    A logger of one client's own (``logger`` in its config), unregistered so it is freed with the client: it
    collects librdkafka's lines and never propagates them to Airflow's handlers or stderr. For probes, whose one
    line of outcome says what the dozens of ``Connect to ... failed`` lines of a dead broker would.
    """
    logger = logging.Logger(name, logging.DEBUG)
    collected = CollectedLines()
    logger.addHandler(collected)
    logger.propagate = False
    return logger, collected

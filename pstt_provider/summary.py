"""
The delivery summary of one task try: the one shape the operator returns, the store keeps, and the API,
Prometheus, ``pstt health`` and the e-mail read. Its fields are listed here and nowhere else.

Version 2 added ``display_name``, ``parameters``, ``messages_aborted``, ``reported`` and ``schema_version``;
version 3 ``position_before``, ``position_after`` and ``checkpoints``. An older value reads with those empty.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal

from pstt_provider.latency import LatencyHistogram

SCHEMA_VERSION = 3
XCOM_KEY = "pstt_delivery"
VARIABLE_PREFIX = "pstt_try_"
"""Airflow Variables holding tries' summaries until the server side moves them into its table."""
MAX_ERRORS = 5
State = Literal["success", "failed"]


@dataclass(frozen=True)
class DeliverySummary:
    """What one try read, sent and left undelivered, and why it failed if it did."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int
    topic: str
    delivery: str
    state: State
    started_at: datetime
    finished_at: datetime
    rows: int = 0
    messages_sent: int = 0
    messages_failed: int = 0
    messages_skipped: int = 0
    messages_dead_lettered: int = 0
    messages_aborted: int = 0
    bytes: int = 0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram, compare=False)
    errors: tuple[str, ...] = ()
    display_name: str = ""
    parameters: dict[str, Any] = field(default_factory=dict, compare=False)
    already_published: dict[str, Any] | None = field(default=None, compare=False)
    """exactly_once: the run marker found when this run had committed before, so nothing was sent again."""
    reported: bool = True
    """False for a try the task never reported (killed, lost): counted from Airflow's own record of it."""
    position_before: dict[str, Any] | None = field(default=None, compare=False)
    """incremental or checkpointed: the position the try read after (order column -> value); None: from the start."""
    position_after: dict[str, Any] | None = field(default=None, compare=False)
    """The position the try left committed: where the next run (or a retry) reads after."""
    checkpoints: int = 0
    """Positions committed in the middle of the try (``checkpoint_rows``)."""
    schema_version: int = SCHEMA_VERSION

    COUNTS: ClassVar[tuple[str, ...]] = (
        "rows",
        "messages_sent",
        "messages_failed",
        "messages_skipped",
        "messages_dead_lettered",
        "messages_aborted",
        "bytes",
    )

    @property
    def duration_s(self) -> float:
        return round((self.finished_at - self.started_at).total_seconds(), 3)

    @property
    def key(self) -> tuple[str, str, str, int, int]:
        """The try this summary is of: unique in the store."""
        return (self.dag_id, self.run_id, self.task_id, self.map_index, self.try_number)

    @property
    def variable_key(self) -> str:
        """The Airflow Variable the task leaves its summary in; a digest, as ids can exceed a key's 250."""
        digest = hashlib.sha256("\x1f".join(map(str, self.key)).encode()).hexdigest()[:32]
        return f"{VARIABLE_PREFIX}{digest}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for XCom, the Variable and the API; latency both as figures and as the histogram."""
        value = {item.name: getattr(self, item.name) for item in dataclasses.fields(self) if item.name != "latency"}
        value["started_at"] = self.started_at.isoformat()
        value["finished_at"] = self.finished_at.isoformat()
        value["errors"] = list(self.errors)
        value["duration_s"] = self.duration_s
        value["latency_ms"] = {
            "avg": round(self.latency.avg_ms, 3),
            "p50": round(self.latency.quantile_ms(0.5), 3),
            "p99": round(self.latency.quantile_ms(0.99), 3),
            "max": round(self.latency.max_ms, 3),
        }
        value["latency_histogram"] = self.latency.to_dict()
        return value

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, default=str)

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> DeliverySummary:
        """A summary from :meth:`to_dict` output (any schema version); ValueError when it is not one."""
        try:
            names = {item.name for item in dataclasses.fields(cls)}
            known = {name: value[name] for name in names if name in value and name != "latency"}
            known["started_at"] = datetime.fromisoformat(str(value["started_at"]))
            known["finished_at"] = datetime.fromisoformat(str(value["finished_at"]))
            known["map_index"] = int(value.get("map_index", -1))
            known["errors"] = tuple(str(error) for error in value.get("errors") or ())
            for name in cls.COUNTS:
                known[name] = int(value.get(name) or 0)
            known["latency"] = LatencyHistogram.from_dict(value.get("latency_histogram") or {})
            known["schema_version"] = int(value.get("schema_version", 1))
            return cls(**known)
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a pstt delivery summary: {error}") from None

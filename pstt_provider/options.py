"""
The provider's options in airflow.cfg's ``[pstt]`` section (or ``AIRFLOW__PSTT__<NAME>``), each declared once.

The declarations feed the ``config`` section of the provider info, so ``airflow config list`` shows them with
their defaults, and the docs' table (scripts/gen_docs.py). Readers call an option's ``get()``, which reads
Airflow's configuration at call time (an edited airflow.cfg counts from the next read) and falls back to the
declared default, so a value is right whether or not Airflow has loaded the providers' configuration yet.
This module imports nothing from Airflow until a value is read: ``pstt health`` and the provider info need it
without Airflow's start-up cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

SECTION = "pstt"
VERSION_ADDED = "0.1.0"

T = TypeVar("T", int, float)


@dataclass(frozen=True)
class Option(Generic[T]):
    """One ``[pstt]`` option; its type is its default's (write a float default with a decimal point)."""

    name: str
    default: T
    description: str

    def get(self) -> T:
        from airflow.configuration import conf

        if isinstance(self.default, int):
            return conf.getint(SECTION, self.name, fallback=self.default)
        return conf.getfloat(SECTION, self.name, fallback=self.default)

    @property
    def kind(self) -> str:
        """The type's name in Airflow's provider.yaml schema."""
        return "integer" if isinstance(self.default, int) else "float"


MAINTENANCE_INTERVAL_S = Option(
    "maintenance_interval_s",
    30.0,
    "Seconds between two runs of the API server's background task that stores the delivery summaries tasks left "
    "in Variables and applies the retention.",
)
METRICS_RETENTION_DAYS = Option(
    "metrics_retention_days", 90, "Stored task tries older than this many days are deleted by the background task."
)
SUMMARY_GRACE_S = Option(
    "summary_grace_s",
    120.0,
    "Seconds a task try that Airflow saw end may take to leave its delivery summary; after that it is stored "
    "without one, as ended (killed, timed out, or its worker lost).",
)
KAFKA_PROBE_TIMEOUT_S = Option(
    "kafka_probe_timeout_s",
    5.0,
    "Seconds the health check and the connection test wait for each Kafka connection (probed in parallel).",
)


def _levels(name: str, unit: str, warning: T, critical: T, when: str) -> tuple[Option[T], Option[T]]:
    """The two levels of one ``pstt health`` check: ``<name>_warning<unit>`` and ``<name>_critical<unit>``."""
    return (
        Option(f"{name}_warning{unit}", warning, f"pstt health warns when {when}."),
        Option(f"{name}_critical{unit}", critical, f"pstt health is critical when {when}."),
    )


SUCCESS_RATE_WARNING, SUCCESS_RATE_CRITICAL = _levels(
    "success_rate", "", 98.0, 95.0, "the 24 h message success rate (percent) is below this"
)
LATENCY_P99_WARNING_MS, LATENCY_P99_CRITICAL_MS = _levels(
    "latency_p99", "_ms", 1000.0, 5000.0, "the 24 h p99 delivery latency (ms) is above this"
)
FAILED_RUNS_WARNING, FAILED_RUNS_CRITICAL = _levels(
    "failed_runs", "", 1, 0, "the failed task tries in 24 h reach this many (0: never)"
)

OPTIONS: tuple[Option[Any], ...] = (
    MAINTENANCE_INTERVAL_S,
    METRICS_RETENTION_DAYS,
    SUMMARY_GRACE_S,
    KAFKA_PROBE_TIMEOUT_S,
    SUCCESS_RATE_WARNING,
    SUCCESS_RATE_CRITICAL,
    LATENCY_P99_WARNING_MS,
    LATENCY_P99_CRITICAL_MS,
    FAILED_RUNS_WARNING,
    FAILED_RUNS_CRITICAL,
)


def default_text(option: Option[Any]) -> str:
    """The default as airflow.cfg would spell it: ``30``, not ``30.0``."""
    return f"{option.default:g}"


def provider_config() -> dict[str, Any]:
    """The provider info's ``config`` section, in the shape of Airflow's provider.yaml."""
    return {
        SECTION: {
            "description": "PSTT metrics writer, Kafka probes and the thresholds of ``pstt health``.",
            "options": {
                option.name: {
                    "description": option.description,
                    "version_added": VERSION_ADDED,
                    "type": option.kind,
                    "example": None,
                    "default": default_text(option),
                }
                for option in OPTIONS
            },
        }
    }

"""The outcome of probing one Kafka connection: for the task's fail-fast check, the UI, the API and ``pstt health``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pstt_provider.exceptions import PsttError

Problem = Literal["unreachable", "authentication", "configuration"]


@dataclass(frozen=True)
class ConnectionHealth:
    conn_id: str
    reachable: bool
    latency_ms: float | None
    brokers: int
    error: str | None
    """One line saying what is wrong and what to check; None when reachable."""
    problem: Problem | None = None
    """Why it is not reachable: no broker answered, the credentials were refused, librdkafka refused the config."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def raise_for_problem(self) -> None:
        if not self.reachable:
            raise self.unreachable_error()

    def unreachable_error(self) -> PsttError:
        """Why no broker answered, as the task's error: refused credentials or config fail at once, silence retries."""
        from pstt_provider.exceptions import BrokerUnreachableError, KafkaAuthenticationError, KafkaConfigurationError

        if self.problem == "authentication":
            return KafkaAuthenticationError(self.error)
        if self.problem == "configuration":
            return KafkaConfigurationError(self.error)
        return BrokerUnreachableError(self.error)

"""
A minimal real task context for running the operators' ``execute`` without a scheduler.

Only the task instance is stood in for: it carries the run identity the operator reads and records the
XComs it pushes, so tests can look at them. Everything else (DB, broker, connections) is real.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RecordingTaskInstance:
    dag_id: str = "pstt_test_dag"
    task_id: str = "publish"
    run_id: str = field(default_factory=lambda: f"manual__{uuid.uuid4().hex}")
    try_number: int = 1
    map_index: int = -1
    xcoms: dict[str, Any] = field(default_factory=dict)

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


def context_for(ti: RecordingTaskInstance) -> dict[str, Any]:
    return {"ti": ti, "task_instance": ti, "run_id": ti.run_id}


def retry_of(ti: RecordingTaskInstance) -> RecordingTaskInstance:
    """The next attempt of the same task run: same identity, next try number, fresh XComs."""
    return RecordingTaskInstance(ti.dag_id, ti.task_id, ti.run_id, ti.try_number + 1, ti.map_index)

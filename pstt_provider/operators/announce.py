"""
AnnounceOperator: a parallel run's topic update, announced once every part is in.

Each part of a parallel job is a mapped task instance, and Airflow records an outlet's Asset event for every one
that succeeds: a consumer scheduled on the topic would start after the first part. The outlet sits on this task
instead, after all parts, with the run's totals as the event's extra.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from airflow.sdk import BaseOperator

from pstt_provider import assets
from pstt_provider.summary import DeliverySummary


class AnnounceOperator(BaseOperator):
    """
    Puts the totals of ``summaries`` on the task's outlet Asset events: rows read and messages sent.

    :param summaries: the parts' delivery summaries, as the mapped export task returns them (its ``output``).
    """

    template_fields: Sequence[str] = ("summaries",)
    ui_color = "#eef7ee"

    def __init__(self, *, summaries: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.summaries = summaries

    def execute(self, context: Mapping[str, Any]) -> dict[str, Any]:
        parts = [DeliverySummary.from_dict(dict(summary)) for summary in _listed(self.summaries)]
        extra = {
            "rows": sum(part.rows for part in parts),
            "messages": sum(part.messages_sent for part in parts),
            "parts": len(parts),
        }
        assets.announce(context.get("outlet_events"), self.outlets, extra)
        self.log.info("Announced %s", extra)
        return extra


def _listed(summaries: Iterable[Any] | None) -> list[Any]:
    return [summary for summary in summaries or () if summary is not None]

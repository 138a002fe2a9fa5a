"""A spec problem as users see it: ``file: field: reason``, the same line in ``pstt validate`` and in the UI."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field or '-'}: {self.reason}"


class SpecError(ValueError):
    """One spec (or folder defaults file) that cannot become a DAG; carries every problem found in it."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(map(str, problems)))

    @classmethod
    def single(cls, file: str | Path, field: str, reason: str) -> SpecError:
        return cls([Problem(str(file), field, reason)])

"""
A spec problem as users see it: ``file: field: reason``, the same line in ``pstt validate`` and in the UI;
and how pydantic's validation errors become such lines (a suggestion for a typo, the reason for a retired
field, the field a cross-field rule is about).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

Report = Callable[[str, str], None]
"""``report(field, reason)``: how a check adds a problem of the spec it is checking."""
_RULE = "spec_rule"


@dataclass(frozen=True, order=True)
class Problem:
    """One line of ``pstt validate`` (and of the validation DAG's import error): where, which field, why."""

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


def rule_error(field: str, reason: str) -> PydanticCustomError:
    """
    What a model's cross-field rule raises: pydantic locates a ``model_validator``'s error at the model, so
    the field the rule is about travels in the error and :func:`validation_problems` puts it in the line.
    """
    return PydanticCustomError(_RULE, "{reason}", {"field": field, "reason": reason})


def validation_problems(display: str, err: ValidationError, model: type[BaseModel]) -> list[Problem]:
    """One problem per pydantic error of ``model``, in the words a spec author can act on."""
    problems = []
    for error in err.errors():
        location = error["loc"]
        if error["type"] == _RULE:
            location = (*location, error["ctx"]["field"])
        field = ".".join(str(part) for part in location) or "-"
        if error["type"] == "extra_forbidden":
            reason = _unknown_field(model, location)
        elif error["type"] == "missing":
            reason = "required field is missing"
        else:
            reason = error["msg"].removeprefix("Value error, ")
        problems.append(Problem(display, field, reason))
    return problems


def _unknown_field(model: type[BaseModel], location: tuple[int | str, ...]) -> str:
    parent = _model_at(model, location[:-1])
    name = str(location[-1])
    retired: dict[str, str] = dict(getattr(parent, "retired_fields", {}))
    if name in retired:
        return retired[name]
    known = list(parent.model_fields) if parent else []
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f"unknown field; did you mean {close[0]!r}?" if close else "unknown field"


def _model_at(model: type[BaseModel], location: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The nested model at ``location`` (field names from ``model``), or None where it is not a model."""
    current: type[BaseModel] = model
    for part in location:
        field = current.model_fields.get(part) if isinstance(part, str) else None
        nested = [kind for kind in (field.annotation, *get_args(field.annotation)) if _is_model(kind)] if field else []
        if not nested:
            return None
        current = nested[0]
    return current


def _is_model(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, BaseModel)

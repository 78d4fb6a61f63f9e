"""The input schema of a managed model: which columns, of which kind.

Inferred from training data (``autopilot.training.data``), stored with every
registered version, and used by the endpoint to validate requests and by the
monitor to choose drift tests per feature.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = ["Column", "FeatureSchema"]

Kind = Literal["numeric", "categorical", "binary"]


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    nullable: bool = True
    categories: tuple[str, ...] = ()  # known levels, for categorical/binary


@dataclass(frozen=True)
class FeatureSchema:
    """Features in model order, the target, the task and (classification) its classes.

    >>> s = FeatureSchema((Column("x", "numeric"),), target="y", task="classification",
    ...                   classes=("0", "1"))
    >>> FeatureSchema.from_dict(s.to_dict()) == s
    True
    """

    columns: tuple[Column, ...]
    target: str
    task: Literal["classification", "regression"]
    classes: tuple[str, ...] = ()
    time_column: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> FeatureSchema:
        cols = tuple(
            Column(
                c["name"], c["kind"], bool(c.get("nullable", True)), tuple(c.get("categories", ()))
            )
            for c in raw["columns"]
        )
        return cls(
            columns=cols,
            target=raw["target"],
            task=raw["task"],
            classes=tuple(str(c) for c in raw.get("classes", ())),
            time_column=raw.get("time_column"),
        )

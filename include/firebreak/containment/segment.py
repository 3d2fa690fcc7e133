"""A segment of traffic: a predicate over request fields, the unit of segment-scoped containment.

Investigation finds where a failure concentrates (:mod:`firebreak.investigation.segments`)
and names it as a :class:`Segment`; the incident records it; a policy with
``containment.scope: segment`` routes only the rows that match it to the fallback. One
description, three readers: the evidence, the post-mortem and the gateway's per-row
route choice (:meth:`Segment.matches`), so what was found is exactly what is contained.

Only standard-library code here (and :mod:`firebreak.inert`, which is too): the gateway calls
:meth:`matches` on every row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from firebreak.inert import clean

__all__ = ["Condition", "Segment"]

MISSING = "<missing>"
_SHOWN = 60  # characters of a value shown in a description


def _inert(text: str) -> str:
    """A data value as plain text: no escape sequences or control characters, bounded. Each place
    that renders a description escapes it for its own markup (the post-mortem's Markdown, the
    console's HTML), so the plain text reads as the data does (``height_m``, ``<missing>``)."""
    return clean(text, _SHOWN)


@dataclass(frozen=True)
class Condition:
    """One field's part of a segment: its value in ``values``, or a number in ``[low, high)``.

    ``values`` compares as text (a category, or the level of a few-valued integer);
    :data:`MISSING` in ``values`` matches an absent or null field.
    """

    column: str
    values: tuple[str, ...] | None = None
    low: float | None = None
    high: float | None = None

    def matches(self, value: Any) -> bool:
        missing = value is None or (isinstance(value, float) and math.isnan(value))
        if self.values is not None:
            return (MISSING if missing else str(value)) in self.values
        if missing or isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return (self.low is None or value >= self.low) and (self.high is None or value < self.high)

    def describe(self) -> str:
        column = _inert(self.column)
        if self.values is not None:
            shown = ", ".join(_inert(v) for v in self.values[:10]) + (", ..." if len(self.values) > 10 else "")
            return f"{column}={shown}" if len(self.values) == 1 else f"{column} in {{{shown}}}"
        if self.low is None:
            return f"{column} < {self.high:g}"
        if self.high is None:
            return f"{column} >= {self.low:g}"
        return f"{self.low:g} <= {column} < {self.high:g}"

    def to_dict(self) -> dict[str, Any]:
        if self.values is not None:
            return {"column": self.column, "values": list(self.values)}
        return {"column": self.column, "low": self.low, "high": self.high}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Condition:
        if "values" in data:
            return cls(str(data["column"]), values=tuple(str(v) for v in data["values"]))
        low, high = data.get("low"), data.get("high")
        return cls(
            str(data["column"]), low=None if low is None else float(low), high=None if high is None else float(high)
        )


@dataclass(frozen=True)
class Segment:
    """Rows matching every condition (one field, or a pair)."""

    conditions: tuple[Condition, ...]

    def matches(self, record: dict[str, Any]) -> bool:
        """Whether one request row (field -> value) belongs to the segment."""
        return all(c.matches(record.get(c.column)) for c in self.conditions)

    def describe(self) -> str:
        return " and ".join(c.describe() for c in self.conditions)

    def to_dict(self) -> dict[str, Any]:
        return {"conditions": [c.to_dict() for c in self.conditions], "description": self.describe()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Segment:
        return cls(tuple(Condition.from_dict(c) for c in data["conditions"]))

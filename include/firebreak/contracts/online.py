"""The model's Great Expectations suite, compiled into a per-request validator.

One contract for batch and online: the batch tasks run the suite with GX
(:mod:`firebreak.contracts.validation`); the serving gateway compiles the same suite
into plain checks per field, so a request that breaks it is refused before the model
runs. Running GX per request would cost milliseconds; two hand-written copies of the
contract would drift apart.

What compiles (row-level expectations):

| expectation | online rule |
|---|---|
| ``expect_column_to_exist`` | the field is required |
| ``expect_column_values_to_not_be_null`` | the value is not null |
| ``expect_column_values_to_be_between`` | a finite number (not a bool) within the bounds |
| ``expect_column_values_to_be_in_set`` | the value is one of the set |
| ``expect_column_values_to_be_of_type`` / ``..._in_type_list`` | the JSON type matches |

Fields the suite never names are refused: a client sending a field the contract does not
know is a client the model was not validated for. Expectations with ``mostly`` under 1,
and table-level statistics (means, uniqueness...), are statements about batches: they
stay batch-only and are listed in :attr:`OnlineContract.batch_only`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firebreak.contracts.validation import load_suite
from firebreak.errors import ContractError

# Every width numpy and pandas name (the contracts ``firebreak triage`` derives list them all).
_NUMERIC_TYPES = {
    *("int", "integer", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"),
    *("float", "float16", "float32", "float64", "number", "double", "decimal"),
}
_STRING_TYPES = {"str", "string", "object", "category", "unicode"}
_BOOL_TYPES = {"bool", "boolean"}


@dataclass(frozen=True)
class Violation:
    """One broken rule in one row of a request."""

    row: int
    field: str
    rule: str  # missing | unknown_field | null | type | not_finite | range | not_allowed
    detail: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.field}: {self.detail}"

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "rule": self.rule, "detail": self.detail}


@dataclass
class _Field:
    name: str
    required: bool = False
    not_null: bool = False
    kind: str | None = None  # number | string | bool
    low: float | None = None
    high: float | None = None
    strict_low: bool = False
    strict_high: bool = False
    allowed: frozenset[Any] | None = None


@dataclass
class OnlineContract:
    """Per-row checks compiled from one suite; :meth:`check` is the request path."""

    name: str
    fields: dict[str, _Field]
    batch_only: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> OnlineContract:
        return cls.compile(load_suite(path), source=str(path))

    @classmethod
    def compile(cls, suite: dict[str, Any], *, source: str = "<suite>") -> OnlineContract:
        fields: dict[str, _Field] = {}
        batch_only: list[str] = []
        for exp in suite.get("expectations", []):
            kind, kwargs = exp["type"], exp.get("kwargs", {})
            column = kwargs.get("column")
            if not isinstance(column, str) or kwargs.get("mostly", 1) < 1:
                batch_only.append(kind if not isinstance(column, str) else f"{kind}({column})")
                continue
            spec = fields.setdefault(column, _Field(column))
            if kind == "expect_column_to_exist":
                spec.required = True
            elif kind == "expect_column_values_to_not_be_null":
                spec.not_null = True
            elif kind == "expect_column_values_to_be_between":
                spec.kind = "number"
                low, high = kwargs.get("min_value"), kwargs.get("max_value")
                spec.low = None if low is None else float(low)
                spec.high = None if high is None else float(high)
                spec.strict_low = bool(kwargs.get("strict_min", False))
                spec.strict_high = bool(kwargs.get("strict_max", False))
            elif kind == "expect_column_values_to_be_in_set":
                values = kwargs.get("value_set")
                if not isinstance(values, list):
                    raise ContractError(f"contract {source}: {kind}({column}) needs a value_set list")
                spec.allowed = frozenset(values)
            elif kind in ("expect_column_values_to_be_of_type", "expect_column_values_to_be_in_type_list"):
                names = [kwargs["type_"]] if "type_" in kwargs else list(kwargs.get("type_list") or [])
                spec.kind = _json_kind(names, f"contract {source}: {kind}({column})")
            else:
                batch_only.append(f"{kind}({column})")
        return cls(str(suite.get("name") or source), fields, batch_only)

    def require(self, name: str, kind: str) -> None:
        """Add a required, non-null field of JSON ``kind`` the suite itself does not name."""
        self.fields[name] = _Field(name, required=True, not_null=True, kind=kind)

    @property
    def required(self) -> list[str]:
        return [f.name for f in self.fields.values() if f.required]

    def check(self, records: list[dict[str, Any]], *, limit: int | None = None) -> list[Violation]:
        """Every violation in ``records`` (an empty list: the request may reach the model).

        ``limit`` stops after that many: a hostile request of 50,000 invented fields costs
        the gateway no more than the violations it reports.
        """
        found: list[Violation] = []
        specs = self.fields
        for row, record in enumerate(records):
            if limit is not None and len(found) >= limit:
                return found[:limit]
            for name in record.keys() - specs.keys():
                found.append(Violation(row, name, "unknown_field", "field not in the contract"))
                if limit is not None and len(found) >= limit:
                    return found
            for spec in specs.values():
                if spec.name not in record:
                    if spec.required:
                        found.append(Violation(row, spec.name, "missing", "required field missing"))
                    continue
                problem = _check_value(spec, record[spec.name])
                if problem is not None:
                    found.append(Violation(row, spec.name, *problem))
        return found


def _check_value(spec: _Field, value: Any) -> tuple[str, str] | None:
    if value is None:
        return ("null", "must not be null") if spec.not_null else None
    if spec.kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "type", f"expected a number, got {type(value).__name__} {_short(value)}"
        if not math.isfinite(value):
            return "not_finite", f"{value} is not a finite number"
        if spec.low is not None and (value < spec.low or (spec.strict_low and value == spec.low)):
            return "range", f"{value} is below the minimum {spec.low:g}"
        if spec.high is not None and (value > spec.high or (spec.strict_high and value == spec.high)):
            return "range", f"{value} is above the maximum {spec.high:g}"
    elif spec.kind == "string" and not isinstance(value, str):
        return "type", f"expected a string, got {type(value).__name__} {_short(value)}"
    elif spec.kind == "bool" and not isinstance(value, bool):
        return "type", f"expected a boolean, got {type(value).__name__} {_short(value)}"
    if spec.allowed is not None:
        try:
            allowed = value in spec.allowed
        except TypeError:  # unhashable (a list or an object)
            allowed = False
        if not allowed:
            return "not_allowed", f"{_short(value)} is not one of {sorted(map(str, spec.allowed))}"
    return None


def _json_kind(names: list[str], where: str) -> str:
    lowered = {str(n).lower() for n in names}
    for kind, known in (("number", _NUMERIC_TYPES), ("string", _STRING_TYPES), ("bool", _BOOL_TYPES)):
        if lowered and lowered <= known:
            return kind
    raise ContractError(f"{where}: cannot check types {sorted(lowered)} online (use one JSON kind)")


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."

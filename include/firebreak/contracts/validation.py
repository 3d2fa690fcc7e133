"""Evaluate a model's input contract (a Great Expectations suite) against a frame.

A contract is one Great Expectations 1.x ``ExpectationSuite`` stored as the JSON
GX itself writes::

    {"name": "pricing_inputs",
     "expectations": [{"type": "expect_column_values_to_be_between",
                       "kwargs": {"column": "unit_cost", "min_value": 0, "max_value": 500},
                       "meta": {}}],
     "meta": {}}

Great Expectations is imported lazily inside :func:`validate_frame` because the
import alone costs several seconds.

Its size (about 540 lines) is earned: GX 1.x reports failures in several shapes (per-row,
aggregate, missing column, evaluation error), and each is turned here into one
:class:`ExpectationFailure` a person and the classifier can read; splitting the shapes
apart would scatter one translation over several files.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from firebreak.errors import ContractError

__all__ = [
    "COLUMN_MISSING",
    "allowed_value_sets",
    "ContractResult",
    "ExpectationFailure",
    "is_derived",
    "load_suite",
    "validate_batches",
    "validate_frame",
]

COLUMN_MISSING = "<column missing>"
"""Sample value used when an expectation failed because its column is absent."""

_ERROR_PREFIX = "<error: "
_SAMPLE_SIZE = 5
_COLUMN_KWARGS = ("column", "column_A", "column_B")
_COLUMN_LIST_KWARGS = ("column_list",)


@dataclass(frozen=True)
class ExpectationFailure:
    """One failed expectation of a contract.

    Attributes:
        expectation: The expectation type, e.g. ``"expect_column_values_to_be_between"``.
        column: The column the expectation targets; ``None`` for table-level
            expectations. Pair/multi-column expectations list their columns joined by ``","``.
        unexpected_count: Number of offending rows. For aggregate expectations
            (mean, row count, column set, ...) GX reports no row count, so this is 0.
            When the column is missing, or GX could not evaluate the expectation,
            every row counts as unexpected.
        unexpected_percent: Share of offending values in percent (0..100), as GX
            reports it (relative to the non-null values).
        sample: Up to 5 distinct unexpected values (JSON-able), in order of first
            appearance. For aggregate expectations it holds the observed value;
            for a missing column it is ``[COLUMN_MISSING]``; for an evaluation
            error it is ``["<error: message>"]``.
    """

    expectation: str
    column: str | None
    unexpected_count: int
    unexpected_percent: float
    sample: list[Any] = field(default_factory=list)

    @property
    def column_missing(self) -> bool:
        """Whether the failure is caused by the column being absent from the frame."""
        return self.sample == [COLUMN_MISSING]

    def describe(self) -> str:
        """Render this failure as a short phrase.

        Returns:
            E.g. ``"unit_cost expect_column_values_to_be_between (12.0% unexpected)"``.
        """
        target = self.column if self.column is not None else "table"
        if self.column_missing:
            detail = "column missing"
        elif self.sample and isinstance(self.sample[0], str) and self.sample[0].startswith(_ERROR_PREFIX):
            detail = self.sample[0][1:-1]
        elif self.unexpected_count > 0:
            detail = f"{_format_percent(self.unexpected_percent)} unexpected"
        elif self.sample and isinstance(self.sample[0], dict):
            detail = _short(self.sample[0])
        elif self.sample:
            detail = f"observed {_short(self.sample[0] if len(self.sample) == 1 else self.sample)}"
        else:
            detail = "failed"
        return f"{target} {self.expectation} ({detail})"


@dataclass(frozen=True)
class ContractResult:
    """Outcome of validating one frame against one contract suite.

    Attributes:
        suite: Name of the expectation suite.
        passed: True when every expectation succeeded.
        evaluated_rows: Number of rows in the validated frame.
        evaluated_expectations: Number of expectations GX evaluated.
        failures: Failed expectations, in the order they appear in the suite.
    """

    suite: str
    passed: bool
    evaluated_rows: int
    evaluated_expectations: int
    failures: list[ExpectationFailure]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable representation.

        Returns:
            A dict with the result fields, failures as a list of dicts.
        """
        return {
            "suite": self.suite,
            "passed": self.passed,
            "evaluated_rows": self.evaluated_rows,
            "evaluated_expectations": self.evaluated_expectations,
            "failures": [
                {
                    "expectation": f.expectation,
                    "column": f.column,
                    "unexpected_count": f.unexpected_count,
                    "unexpected_percent": f.unexpected_percent,
                    "sample": [_jsonable(v) for v in f.sample],
                }
                for f in self.failures
            ],
        }

    def summary(self) -> str:
        """Render a one-line human-readable summary.

        Returns:
            E.g. ``"contract pricing_inputs: 2 of 14 expectations failed: unit_cost
            expect_column_values_to_be_between (12.0% unexpected), region
            expect_column_values_to_be_in_set (0.5% unexpected)"`` or
            ``"contract pricing_inputs: all 14 expectations passed on 2000 rows"``.
        """
        head = f"contract {self.suite}"
        if self.passed:
            return f"{head}: all {self.evaluated_expectations} expectations passed on {self.evaluated_rows} rows"
        details = ", ".join(f.describe() for f in self.failures)
        return f"{head}: {len(self.failures)} of {self.evaluated_expectations} expectations failed: {details}"


def is_derived(suite: dict[str, Any]) -> bool:
    """Whether the suite was derived from a reference sample (``meta.derived_from_rows``, written by
    ``firebreak onboard`` and ``firebreak triage``) rather than stated by a person: diagnosis then
    judges its failures against what a sample could have missed. Deleting the mark makes the
    suite the team's statement, whose failures stand as skew."""
    meta = suite.get("meta")
    return isinstance(meta, dict) and meta.get("derived_from_rows") is not None


def load_suite(path: Path) -> dict[str, Any]:
    """Read a GX 1.x expectation suite JSON file and check its basic shape.

    Only the structure is checked here (no GX import); whether each expectation
    type and its kwargs are valid is checked by :func:`validate_frame`.

    Args:
        path: Path to the suite JSON file.

    Returns:
        The parsed suite as a dict.

    Raises:
        ContractError: If the file is missing or unreadable, is not valid JSON,
            is not a JSON object, lacks an ``"expectations"`` list, or contains an
            expectation without a string ``"type"`` and a dict ``"kwargs"``.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ContractError(f"contract suite {path}: file not found") from None
    except OSError as exc:
        raise ContractError(f"contract suite {path}: cannot read file: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ContractError(f"contract suite {path}: invalid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ContractError(f"contract suite {path}: expected a JSON object, got {type(data).__name__}")
    expectations = data.get("expectations")
    if not isinstance(expectations, list):
        raise ContractError(f'contract suite {path}: missing "expectations" list')
    if "expectation_suite_name" in data and "name" not in data:
        raise ContractError(
            f"contract suite {path}: looks like a Great Expectations 0.x suite "
            '("expectation_suite_name"); GX 1.x uses "name" and "type"'
        )
    for index, exp in enumerate(expectations):
        if not isinstance(exp, dict):
            raise ContractError(f"contract suite {path}: expectation #{index} is not an object")
        if "expectation_type" in exp and "type" not in exp:
            raise ContractError(
                f'contract suite {path}: expectation #{index} uses GX 0.x key "expectation_type"; GX 1.x uses "type"'
            )
        if not isinstance(exp.get("type"), str) or not exp["type"]:
            raise ContractError(f'contract suite {path}: expectation #{index} has no "type"')
        if not isinstance(exp.get("kwargs", {}), dict):
            raise ContractError(
                f'contract suite {path}: expectation #{index} ({exp["type"]}) "kwargs" is not an object'
            )
    name = data.get("name")
    if name is not None and (not isinstance(name, str) or not name):
        raise ContractError(f'contract suite {path}: "name" must be a non-empty string')
    return data


def allowed_value_sets(suite: dict[str, Any], columns: list[str], *, name: str) -> dict[str, list[Any]]:
    """The allowed values the suite names for each of ``columns`` (``expect_column_values_to_be_in_set``).

    The one home for "allowed": lineage (upstream source, pipeline version) is checked
    against the same sets the contract enforces.

    Raises:
        ConfigurationError: A column has no allowed value set in the suite ``name``.
    """
    from firebreak.errors import ConfigurationError

    allowed = {
        e["kwargs"]["column"]: list(e["kwargs"]["value_set"])
        for e in suite["expectations"]
        if e["type"] == "expect_column_values_to_be_in_set" and e["kwargs"].get("column") in columns
    }
    missing = [c for c in columns if c not in allowed]
    if missing:
        raise ConfigurationError(f"contract {name} has no allowed value set for lineage columns {missing}")
    return allowed


def validate_frame(
    frame: pd.DataFrame,
    suite_path: Path,
    *,
    result_json_path: Path | None = None,
) -> ContractResult:
    """Validate a frame against a contract suite with Great Expectations.

    Runs real GX in an ephemeral (in-memory) data context: pandas datasource,
    dataframe asset, whole-dataframe batch definition, the suite built from
    the JSON file, and a ``ValidationDefinition`` run with result format
    ``SUMMARY``. Nothing is written to disk except ``result_json_path``.
    Progress bars are disabled and ``GX_ANALYTICS_ENABLED`` is set to
    ``"False"`` unless already set.

    An expectation whose column is absent from the frame does not crash the
    validation: it is reported as an :class:`ExpectationFailure` with every row
    unexpected and sample ``[COLUMN_MISSING]``. Any other evaluation error GX
    reports for an expectation is likewise a failure, with sample
    ``["<error: message>"]``.

    Args:
        frame: The data to validate.
        suite_path: Path to the suite JSON (see :func:`load_suite`).
        result_json_path: If given, the full GX validation result JSON is written
            there (parent folders created) before returning.

    Returns:
        The contract result; ``failures`` follow the suite's expectation order.

    Raises:
        ContractError: If the suite cannot be loaded, an expectation type is
            unknown or its kwargs are invalid, or GX fails to run the validation.
    """
    suite_path = Path(suite_path)
    validator = _Validator(suite_path)
    result_dict = validator.run(frame)
    if result_json_path is not None:
        _write_json(result_json_path, result_dict)
    return validator.contract_result(
        result_dict.get("results", []),
        rows=len(frame),
        columns=set(frame.columns),
        all_passed=bool(result_dict.get("success")),
        statistics=result_dict.get("statistics") or {},
    )


def validate_batches(
    batches: Iterable[pd.DataFrame],
    suite_path: Path,
    *,
    result_json_path: Path | None = None,
) -> ContractResult:
    """The contract on a window streamed in batches: Great Expectations on each, the counts merged.

    SOP stage: investigate (and the nightly audit) on windows too big to hold at once. Every
    row-level expectation (between, in set, not null, of type) reports its element, missing
    and unexpected counts per batch; summed, they are exactly the whole window's, and
    ``mostly`` is judged on the sums. An aggregate expectation (a mean, a row count, a column
    set) cannot be summed: it is judged on each batch and fails when any batch fails it; the
    merged result JSON marks it ``"judged": "per batch"``.

    Raises:
        ContractError: as :func:`validate_frame`.
    """
    suite_path = Path(suite_path)
    validator = _Validator(suite_path)
    merged: dict[str, dict[str, Any]] = {}
    rows = 0
    columns: set[str] = set()
    for frame in batches:
        rows += len(frame)
        columns |= {str(c) for c in frame.columns}
        for item in validator.run(frame).get("results", []):
            config = item.get("expectation_config") or {}
            entry = merged.setdefault(
                str(config.get("id")),
                {"expectation_config": config, "success": True, "result": {}, "exception_info": None},
            )
            result = item.get("result") or {}
            if _exception_message(item.get("exception_info")) is not None:
                entry["exception_info"], entry["success"] = item["exception_info"], False
            elif "unexpected_count" in result:
                totals = entry["result"]
                for key in ("element_count", "missing_count", "unexpected_count"):
                    totals[key] = int(totals.get(key) or 0) + int(result.get(key) or 0)
                sample = totals.setdefault("partial_unexpected_list", [])
                sample.extend((result.get("partial_unexpected_list") or [])[: max(0, 20 - len(sample))])
            else:
                entry["judged"] = "per batch"
                if not item.get("success"):
                    entry["success"], entry["result"] = False, result
    if rows == 0:
        raise ContractError(f"contract suite {suite_path}: the window holds no rows to validate")
    for entry in merged.values():
        totals = entry["result"]
        if "unexpected_count" in totals and entry["exception_info"] is None:
            checked = totals["element_count"] - totals["missing_count"]
            unexpected = totals["unexpected_count"]
            totals["unexpected_percent"] = 100.0 * unexpected / checked if checked else 0.0
            mostly = float((entry["expectation_config"].get("kwargs") or {}).get("mostly", 1.0))
            entry["success"] = checked == 0 or (checked - unexpected) / checked >= mostly
    results = list(merged.values())
    passed = all(entry["success"] for entry in results)
    if result_json_path is not None:
        _write_json(
            result_json_path, {"success": passed, "rows": rows, "merged_from_batches": True, "results": results}
        )
    return validator.contract_result(results, rows=rows, columns=columns, all_passed=passed, statistics={})


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")


class _Validator:
    """One suite in an ephemeral GX context, built once and run on as many frames as given."""

    def __init__(self, suite_path: Path) -> None:
        data = load_suite(suite_path)
        self.suite_path = suite_path
        self.suite_name: str = data.get("name") or suite_path.stem

        os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
        import great_expectations as gx
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )
        from great_expectations.expectations.expectation_configuration import (
            ExpectationConfiguration,
        )

        # GX's ExpectationSuite(**data) silently *drops* (logs) expectations whose
        # type is unknown, so build and check every expectation ourselves first.
        configs: list[Any] = []
        for index, raw in enumerate(data["expectations"]):
            exp_type = raw["type"]
            try:
                config = ExpectationConfiguration(
                    type=exp_type,
                    kwargs=dict(raw.get("kwargs", {})),
                    meta=raw.get("meta"),
                    notes=raw.get("notes"),
                    description=raw.get("description"),
                    **({"severity": raw["severity"]} if raw.get("severity") else {}),
                )
                config.to_domain_obj()
            except Exception as exc:  # GX raises several unrelated types here
                message = " ".join(str(exc).split())[:300] or type(exc).__name__
                raise ContractError(
                    f"contract suite {suite_path}: expectation #{index} ({exp_type}) is invalid: {message}"
                ) from exc
            configs.append(config)
        self.configs = configs

        try:
            context = gx.get_context(
                mode="ephemeral",
                project_config=DataContextConfig(
                    store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
                    progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
                    analytics_enabled=False,
                ),
            )
            batch_definition = (
                context.data_sources.add_pandas("firebreak_frame")
                .add_dataframe_asset("frame")
                .add_batch_definition_whole_dataframe("whole_frame")
            )
            suite = context.suites.add(
                gx.ExpectationSuite(name=self.suite_name, expectations=configs, meta=data.get("meta"))
            )
            self.order = {exp.id: index for index, exp in enumerate(suite.expectations)}
            self.definition = context.validation_definitions.add(
                gx.ValidationDefinition(name=f"{self.suite_name}_validation", data=batch_definition, suite=suite)
            )
        except Exception as exc:
            raise ContractError(f"contract suite {suite_path}: Great Expectations failed to validate: {exc}") from exc

    def run(self, frame: pd.DataFrame) -> dict[str, Any]:
        try:
            result = self.definition.run(
                batch_parameters={"dataframe": frame},
                result_format={"result_format": "SUMMARY", "partial_unexpected_count": 20},
            )
            payload: dict[str, Any] = result.to_json_dict()
        except Exception as exc:
            raise ContractError(
                f"contract suite {self.suite_path}: Great Expectations failed to validate: {exc}"
            ) from exc
        return payload

    def contract_result(
        self,
        results: list[dict[str, Any]],
        *,
        rows: int,
        columns: set[str],
        all_passed: bool,
        statistics: dict[str, Any],
    ) -> ContractResult:
        failed: list[tuple[int, ExpectationFailure]] = []
        for item in results:
            if item.get("success"):
                continue
            config_dict = item.get("expectation_config") or {}
            position = self.order.get(config_dict.get("id"), len(self.order))
            failed.append((position, _to_failure(item, rows=rows, columns={str(c) for c in columns})))
        failed.sort(key=lambda pair: pair[0])
        evaluated = int(statistics.get("evaluated_expectations") or len(self.configs))
        return ContractResult(
            suite=self.suite_name,
            passed=all_passed and not failed,
            evaluated_rows=rows,
            evaluated_expectations=evaluated,
            failures=[failure for _, failure in failed],
        )


def _to_failure(item: dict[str, Any], *, rows: int, columns: set[str]) -> ExpectationFailure:
    """Convert one failed GX expectation result (JSON dict) to an ExpectationFailure.

    Args:
        item: One entry of the GX validation result's ``"results"`` list.
        rows: Number of rows in the validated frame.
        columns: Column names present in the frame.

    Returns:
        The failure.
    """
    config = item.get("expectation_config") or {}
    kwargs: dict[str, Any] = config.get("kwargs") or {}
    referenced = _referenced_columns(kwargs)
    column = ",".join(referenced) if referenced else None
    expectation = str(config.get("type", "unknown_expectation"))

    if any(name not in columns for name in referenced):
        return ExpectationFailure(expectation, column, rows, 100.0, [COLUMN_MISSING])

    error = _exception_message(item.get("exception_info"))
    if error is not None:
        return ExpectationFailure(expectation, column, rows, 100.0, [f"{_ERROR_PREFIX}{error}>"])

    result: dict[str, Any] = item.get("result") or {}
    if "unexpected_count" in result:
        count = int(result.get("unexpected_count") or 0)
        percent = result.get("unexpected_percent")
        return ExpectationFailure(
            expectation,
            column,
            count,
            float(percent) if percent is not None else 0.0,
            _distinct(result.get("partial_unexpected_list") or []),
        )

    observed = result.get("observed_value")
    details = result.get("details")
    sample: list[Any] = []
    if isinstance(details, dict) and isinstance(details.get("mismatched"), dict):
        sample = [_jsonable(details["mismatched"])]
    elif observed is not None:
        sample = [_jsonable(observed)]
    return ExpectationFailure(expectation, column, 0, 0.0, sample)


def _referenced_columns(kwargs: dict[str, Any]) -> list[str]:
    """List the column names an expectation's kwargs refer to.

    Args:
        kwargs: The expectation kwargs.

    Returns:
        Column names in kwargs order (``column``, ``column_A``, ``column_B``, ``column_list``).
    """
    names: list[str] = []
    for key in _COLUMN_KWARGS:
        if isinstance(kwargs.get(key), str):
            names.append(kwargs[key])
    for key in _COLUMN_LIST_KWARGS:
        value = kwargs.get(key)
        if isinstance(value, list):
            names.extend(str(v) for v in value)
    return names


def _exception_message(info: Any) -> str | None:
    """Extract the first raised exception message from GX ``exception_info``.

    GX reports either a flat ``{"raised_exception": bool, ...}`` dict or a dict
    keyed by metric id whose values have that shape.

    Args:
        info: The ``exception_info`` value of one expectation result.

    Returns:
        The message, or None when no exception was raised.
    """
    if not isinstance(info, dict):
        return None
    candidates = [info] if "raised_exception" in info else list(info.values())
    for candidate in candidates:
        if isinstance(candidate, dict) and candidate.get("raised_exception"):
            message = str(candidate.get("exception_message") or "evaluation failed")
            return message.strip().splitlines()[0] if message.strip() else "evaluation failed"
    return None


def _distinct(values: list[Any]) -> list[Any]:
    """Return up to ``_SAMPLE_SIZE`` distinct JSON-able values in first-seen order.

    Args:
        values: Raw unexpected values from GX.

    Returns:
        The sample.
    """
    seen: set[str] = set()
    sample: list[Any] = []
    for value in values:
        converted = bounded_sample(_jsonable(value))
        key = json.dumps(converted, sort_keys=True, default=str)
        if key in seen:
            continue
        seen.add(key)
        sample.append(converted)
        if len(sample) >= _SAMPLE_SIZE:
            break
    return sample


_SAMPLE_TEXT = 200  # characters of one sampled value: a 5 MB cell is evidence by its first words


def bounded_sample(value: Any) -> Any:
    """A sampled text cut to :data:`_SAMPLE_TEXT` characters, saying how long it was."""
    if isinstance(value, str) and len(value) > _SAMPLE_TEXT:
        return f"{value[:_SAMPLE_TEXT]}... ({len(value):,} characters)"
    return value


def _jsonable(value: Any) -> Any:
    """Convert numpy/pandas scalars and containers into plain JSON-able values.

    NaN/NA become None; infinities become the strings ``"inf"``/``"-inf"``.

    Args:
        value: Any value.

    Returns:
        A JSON-serialisable equivalent.
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (pd.Timestamp, datetime, date)):
        return value.isoformat()
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return _jsonable(item())
        except (TypeError, ValueError):
            pass
    return str(value)


def _format_percent(percent: float) -> str:
    """Format a percentage for the summary line.

    Args:
        percent: Value in 0..100.

    Returns:
        E.g. ``"12.0%"``, or ``"<0.1%"`` for tiny non-zero values.
    """
    if 0 < percent < 0.05:
        return "<0.1%"
    return f"{percent:.1f}%"


def _short(value: Any, limit: int = 60) -> str:
    """Render a value compactly for the summary line.

    Args:
        value: Value to render.
        limit: Maximum length before truncation.

    Returns:
        The rendered value.
    """
    if isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."

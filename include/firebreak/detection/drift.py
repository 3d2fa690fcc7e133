"""Data drift detection with Evidently's ``DataDriftPreset`` (Evidently 0.7 API).

Evidently is imported lazily inside :func:`run_drift_report` because the
import alone costs several seconds.

Per-column verdicts are parsed from the snapshot's JSON (``Snapshot.json()``),
which in Evidently 0.7.x looks like::

    {"metrics": [
        {"config": {"type": "evidently:metric_v2:DriftedColumnsCount", "drift_share": 0.5, ...},
         "value": {"count": 2.0, "share": 0.33}, "id": "..."},
        {"config": {"type": "evidently:metric_v2:ValueDrift", "column": "a",
                    "method": "Wasserstein distance (normed)", "threshold": 0.1},
         "value": 2.02, "id": "..."}, ...],
     "tests": [
        {"id": "drift", "status": "FAIL", "metric_config": {"metric_id": "...", ...}, ...},
        {"id": "lt", "status": "SUCCESS", ...}]}

The ``ValueDrift`` metric value is only the score; Evidently's drift verdict
for a column is the status of the auto-generated ``drift`` test bound to it
(the report is therefore run with ``include_tests=True``). Dataset drift is the
status of the ``DriftedColumnsCount`` share test (fails when
``share >= drift_share``).
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from firebreak.errors import FirebreakError

__all__ = [
    "ColumnDrift",
    "DriftInputError",
    "DriftResult",
    "rank_columns",
    "run_drift_report",
]

# Evidently 0.7.23 stat tests whose score is a p-value (drift when score < threshold).
# Every other method (Wasserstein, Jensen-Shannon, PSI, KL, Hellinger, energy
# distance, ...) is a distance: drift when score >= threshold.
_P_VALUE_METHODS = frozenset(
    {
        "K-S p_value",
        "chi-square p_value",
        "Z-test p_value",
        "Anderson-Darling",
        "Cramer-von Mises",
        "Epps-Singleton",
        "Fisher's Exact test",
        "g_test",
        "Mann-Whitney U-rank test",
        "t_test",
        "Total-Variation-Distance",
        "empirical_mmd",
    }
)


class DriftInputError(FirebreakError):
    """Raised when the frames or columns given for a drift report are unusable."""


def _is_p_value_method(method: str) -> bool:
    """Tell whether an Evidently stat-test display name denotes a p-value test.

    Args:
        method: The method name as reported by Evidently.

    Returns:
        True for p-value tests (smaller score = stronger drift).
    """
    return method in _P_VALUE_METHODS or "p_value" in method.lower()


@dataclass(frozen=True)
class ColumnDrift:
    """Evidently's drift verdict for one column.

    Attributes:
        column: Column name.
        method: The stat test Evidently used, e.g. ``"Wasserstein distance (normed)"``,
            ``"K-S p_value"``, ``"Jensen-Shannon distance"``, ``"chi-square p_value"``.
        score: The test's score (a p-value or a distance, depending on ``method``).
        threshold: The threshold Evidently applied.
        drifted: Evidently's verdict.
    """

    column: str
    method: str
    score: float
    threshold: float
    drifted: bool

    @property
    def p_value_based(self) -> bool:
        """Whether ``score`` is a p-value (smaller = stronger drift)."""
        return _is_p_value_method(self.method)

    @property
    def strength(self) -> float:
        """How far past the threshold the score is, comparable across methods.

        ``score / threshold`` for distance methods and ``threshold / score`` for
        p-value methods, so values above 1 mean "beyond the threshold" and larger
        is stronger. A p-value of 0 gives ``inf``; NaN scores give 0.
        """
        if math.isnan(self.score):
            return 0.0
        if self.p_value_based:
            return math.inf if self.score <= 0 else self.threshold / self.score
        return self.score / self.threshold if self.threshold > 0 else self.score

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable representation.

        Returns:
            The fields as a dict (a NaN score becomes None).
        """
        return {
            "column": self.column,
            "method": self.method,
            "score": None if math.isnan(self.score) else self.score,
            "threshold": self.threshold,
            "drifted": self.drifted,
        }


@dataclass(frozen=True)
class DriftResult:
    """Outcome of a data drift report.

    Attributes:
        dataset_drift: Evidently's dataset-level verdict
            (``drift_share >= drift_share_threshold``).
        drift_share: Share of analysed columns that drifted (0..1).
        drift_share_threshold: Share at which the dataset counts as drifted
            (Evidently's default is 0.5).
        columns: Per-column verdicts, ranked: drifted columns first, then by
            descending :attr:`ColumnDrift.strength` (for p-value methods a smaller
            p is stronger, for distance methods a larger distance is stronger; the
            score is normalised by its threshold so mixed methods compare), ties
            broken by column name.
        reference_rows: Rows in the reference frame.
        current_rows: Rows in the current frame.
    """

    dataset_drift: bool
    drift_share: float
    drift_share_threshold: float
    columns: list[ColumnDrift]
    reference_rows: int
    current_rows: int

    @property
    def drifted_columns(self) -> list[str]:
        """Names of the drifted columns, strongest first."""
        return [c.column for c in self.columns if c.drifted]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable representation.

        Returns:
            The fields as a dict, columns as a list of dicts.
        """
        return {
            "dataset_drift": self.dataset_drift,
            "drift_share": self.drift_share,
            "drift_share_threshold": self.drift_share_threshold,
            "columns": [c.to_dict() for c in self.columns],
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
        }

    def top(self, n: int = 3) -> list[ColumnDrift]:
        """Return the ``n`` strongest drifted columns.

        Args:
            n: Maximum number of columns to return.

        Returns:
            Up to ``n`` drifted columns, strongest first (non-drifted columns are
            never included).
        """
        return [c for c in self.columns if c.drifted][: max(n, 0)]


def rank_columns(columns: Iterable[ColumnDrift]) -> list[ColumnDrift]:
    """Order per-column verdicts the way :attr:`DriftResult.columns` promises.

    Args:
        columns: Verdicts in any order.

    Returns:
        Drifted columns first, then by descending :attr:`ColumnDrift.strength`,
        ties broken by column name.
    """
    return sorted(columns, key=lambda c: (not c.drifted, -c.strength, c.column))


def run_drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    columns: Sequence[str],
    categorical: Sequence[str] = (),
    html_path: Path,
    json_path: Path,
) -> DriftResult:
    """Run Evidently's ``DataDriftPreset`` and parse the per-column verdicts.

    Columns listed in ``categorical`` are declared categorical, all other
    ``columns`` numerical. Evidently picks the stat test and threshold per
    column (e.g. K-S / chi-square for <= 1000 rows, Wasserstein / Jensen-Shannon
    above); method and threshold are taken from its output. The HTML report and
    the JSON snapshot (``Snapshot.json()``: metrics and tests) are written to
    the given paths, creating parent folders.

    Args:
        reference: Reference (training / baseline) data.
        current: Current (production) data.
        columns: Columns to analyse; must exist in both frames.
        categorical: Subset of ``columns`` to treat as categorical.
        html_path: Where to write the HTML report.
        json_path: Where to write the JSON snapshot.

    Returns:
        The parsed drift result.

    Raises:
        DriftInputError: If a frame is empty, no columns are given, a column is
            missing from a frame, a categorical column is not in ``columns``, a
            numerical column is not numeric (or is boolean), or a column has no
            non-null values in a frame.
        FirebreakError: If the Evidently snapshot lacks an expected verdict.
    """
    selected = list(dict.fromkeys(str(c) for c in columns))
    cat = list(dict.fromkeys(str(c) for c in categorical))
    _check_inputs(reference, current, selected, cat)
    numerical = [c for c in selected if c not in cat]

    with warnings.catch_warnings():
        # Evidently's import chain emits DeprecationWarnings (numpy.core, litestar).
        warnings.simplefilter("ignore", DeprecationWarning)
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=numerical, categorical_columns=cat)
    reference_ds = Dataset.from_pandas(reference[selected].copy(), data_definition=definition)
    current_ds = Dataset.from_pandas(current[selected].copy(), data_definition=definition)
    report = Report([DataDriftPreset(columns=selected)], include_tests=True)
    snapshot = report.run(current_data=current_ds, reference_data=reference_ds)

    snapshot_json: str = snapshot.json()
    html_path = Path(html_path)
    json_path = Path(json_path)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    # Snapshot.save_html/save_json silently do nothing for pathlib.Path
    # arguments (they only handle str or file objects), so write ourselves.
    html_path.write_text(snapshot.get_html_str(as_iframe=False), encoding="utf-8")
    json_path.write_text(snapshot_json, encoding="utf-8")

    return _parse_snapshot(
        json.loads(snapshot_json),
        columns=selected,
        reference_rows=len(reference),
        current_rows=len(current),
    )


def _check_inputs(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: list[str],
    categorical: list[str],
) -> None:
    """Validate drift report inputs.

    Args:
        reference: Reference frame.
        current: Current frame.
        columns: De-duplicated columns to analyse.
        categorical: De-duplicated categorical columns.

    Raises:
        DriftInputError: Describing the first problem found.
    """
    for label, frame in (("reference", reference), ("current", current)):
        if not isinstance(frame, pd.DataFrame):
            raise DriftInputError(f"{label} must be a pandas DataFrame, got {type(frame).__name__}")
        if frame.empty or len(frame) == 0:
            raise DriftInputError(f"{label} frame is empty ({frame.shape[0]} rows x {frame.shape[1]} columns)")
    if not columns:
        raise DriftInputError("no columns given for the drift report")
    stray = [c for c in categorical if c not in columns]
    if stray:
        raise DriftInputError(f"categorical columns not listed in columns: {stray}")
    for label, frame in (("reference", reference), ("current", current)):
        present = {str(c) for c in frame.columns}
        missing = [c for c in columns if c not in present]
        if missing:
            raise DriftInputError(f"{label} frame is missing columns: {missing}")
        for column in columns:
            series = frame[column]
            if series.isna().all():
                raise DriftInputError(f"column {column!r} has no non-null values in the {label} frame")
            if column in categorical:
                continue
            if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
                raise DriftInputError(
                    f"numerical column {column!r} has dtype {series.dtype} in the {label} frame; list it in categorical"
                )


def _parse_snapshot(
    data: dict[str, Any],
    *,
    columns: list[str],
    reference_rows: int,
    current_rows: int,
) -> DriftResult:
    """Extract the drift verdicts from an Evidently 0.7 snapshot dict.

    Args:
        data: ``json.loads(snapshot.json())``.
        columns: The analysed columns.
        reference_rows: Rows in the reference frame.
        current_rows: Rows in the current frame.

    Returns:
        The drift result.

    Raises:
        FirebreakError: If a column's ``ValueDrift`` metric or the
            ``DriftedColumnsCount`` metric is missing.
    """
    metrics: list[dict[str, Any]] = data.get("metrics") or []
    tests: list[dict[str, Any]] = data.get("tests") or []

    status_by_metric: dict[str, str] = {}
    for test in tests:
        metric_id = (test.get("metric_config") or {}).get("metric_id")
        if metric_id is not None:
            status_by_metric[str(metric_id)] = str(test.get("status", "")).upper()

    count_metric: dict[str, Any] | None = None
    per_column: dict[str, ColumnDrift] = {}
    for metric in metrics:
        config = metric.get("config") or {}
        metric_type = str(config.get("type", ""))
        if metric_type.endswith(":DriftedColumnsCount"):
            count_metric = metric
        elif metric_type.endswith(":ValueDrift"):
            column = str(config.get("column"))
            method = str(config.get("method"))
            raw_threshold = config.get("threshold")
            threshold = float(raw_threshold) if raw_threshold is not None else math.nan
            value = metric.get("value")
            score = float(value) if value is not None else math.nan
            status = status_by_metric.get(str(metric.get("id")))
            if status in ("FAIL", "SUCCESS"):
                drifted = status == "FAIL"
            elif _is_p_value_method(method):
                drifted = score < threshold
            else:
                drifted = score >= threshold
            per_column[column] = ColumnDrift(column, method, score, threshold, drifted)

    missing = [c for c in columns if c not in per_column]
    if missing:
        raise FirebreakError(f"Evidently snapshot has no ValueDrift metric for columns {missing}")
    if count_metric is None:
        raise FirebreakError("Evidently snapshot has no DriftedColumnsCount metric")

    count_value = count_metric.get("value") or {}
    drift_share = float(count_value.get("share", 0.0))
    threshold_share = float((count_metric.get("config") or {}).get("drift_share", 0.5))
    status = status_by_metric.get(str(count_metric.get("id")))
    if status in ("FAIL", "SUCCESS"):
        dataset_drift = status == "FAIL"
    else:
        dataset_drift = drift_share >= threshold_share

    ranked = rank_columns(per_column[c] for c in columns)
    return DriftResult(
        dataset_drift=dataset_drift,
        drift_share=drift_share,
        drift_share_threshold=threshold_share,
        columns=ranked,
        reference_rows=reference_rows,
        current_rows=current_rows,
    )

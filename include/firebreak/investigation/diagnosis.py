"""Diagnosis: a failure class and a root cause from the investigation's evidence.

One classifier, :func:`classify`, decides from the evidence; the DAG's ``diagnose`` stage
(through :func:`diagnose`, which adds the policy's remediation) and ``firebreak triage``
both call it, so an incident and a triage of the same tables get the same answer.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from firebreak.incidents.enums import FailureClass, Remediation, Severity
from firebreak.investigation.evidence import CONFIRM_P_VALUE
from firebreak.policy.schema import METRIC_LABELS, Policy

__all__ = ["Diagnosis", "Finding", "Verdict", "classify", "diagnose", "triage_tables"]

# A range expectation failing on at least this share of rows (percent) is an upstream change;
# below it, a few values just past the widened range are what a moving world looks like.
RANGE_SKEW_PERCENT = 1.0
# p-value drift tests (used on references of <= 1000 rows) count only below this p-value:
# at Evidently's 0.05, ten unchanged columns raise a false alarm in 40% of comparisons.
STRICT_P_VALUE = 1e-3

# Contract expectations whose failure means the data's shape changed, not its distribution.
_STRUCTURAL = {
    "expect_column_to_exist": "column missing",
    "expect_table_columns_to_match_set": "columns changed",
    "expect_table_columns_to_match_ordered_list": "columns changed",
    "expect_column_values_to_be_of_type": "type changed",
    "expect_column_values_to_be_in_type_list": "type changed",
    "expect_column_values_to_not_be_null": "nulls appeared",
    "expect_column_values_to_be_in_set": "unknown values",
    "expect_column_values_to_match_regex": "format changed",
}
_RANGE = "expect_column_values_to_be_between"


@dataclass(frozen=True)
class Finding:
    """One piece of evidence, with the class it points to (None: context, points nowhere)."""

    kind: str  # contract | range | spike | lineage | scale | golden | fairness | drift | multivariate | performance
    points_to: FailureClass | None
    column: str | None
    detail: str
    weight: float  # 0..1, how strongly it points there


@dataclass(frozen=True)
class Verdict:
    """What the evidence says: ``failure_class`` None means nothing is wrong."""

    failure_class: FailureClass | None
    severity: Severity | None
    confidence: float
    root_cause: str
    columns: list[str]
    evidence: list[Finding]  # ranked: the decisive findings first

    def to_dict(self) -> dict[str, Any]:
        return {
            "failure_class": str(self.failure_class) if self.failure_class else "none",
            "severity": str(self.severity) if self.severity else None,
            "confidence": self.confidence,
            "root_cause": self.root_cause,
            "columns": self.columns,
            "evidence": [{**asdict(f), "points_to": str(f.points_to) if f.points_to else None} for f in self.evidence],
        }


def classify(
    *,
    contract: dict[str, Any] | None = None,
    drift: dict[str, Any] | None = None,
    fairness: dict[str, Any] | None = None,
    golden: dict[str, Any] | None = None,
    lineage: dict[str, Any] | None = None,
    performance: dict[str, Any] | None = None,
    estimated: dict[str, Any] | None = None,
    segments: dict[str, Any] | None = None,
    reference_fairness: dict[str, Any] | None = None,
) -> Verdict:
    """Decide the failure class from the evidence, in the SOP's order of suspicion.

    SOP stage: diagnose. Inputs are the evidence dicts the investigation records:
    ``contract`` (:meth:`ContractResult.to_dict`), ``drift`` (:meth:`DriftResult.to_dict`,
    optionally with ``scale_changes`` from :func:`~firebreak.investigation.evidence.scale_changes`),
    ``fairness`` (:meth:`FairnessResult.to_dict <firebreak.detection.fairness.FairnessResult>`), ``golden``
    (:func:`~firebreak.investigation.evaluation.evaluate_golden`) and ``lineage``
    (:meth:`LineageTrace.to_dict`). Missing evidence counts as quiet.

    1. Skew: the contract's shape checks fail (column gone, type, nulls, unknown values),
       values leave the contract's range on >= 1% of rows, a column was rescaled by one
       factor (units, currency), or lineage shows unallowed sources.
    2. Bad release: the champion regressed on the golden dataset (against its baseline or
       against ``last-known-good``).
    3. Bias: the fairness figures breached their limits (the policy's in an incident; in
       triage the four-fifths rule and 10 points more errors), with or without drift
       beside it; the further past a limit, the stronger the evidence.
    4. Drift: inputs moved (a column's drift test past its threshold; p-value tests at 1e-3;
       values past a derived contract's range that continue the distribution; the joint
       distribution, by PCA reconstruction error) while the contract held; or, with labels,
       the model's accuracy or error is significantly worse than on the reference with the
       inputs unchanged (concept drift: ``performance``, from
       :func:`~firebreak.detection.performance.performance_change`).

    A **derived** contract (``contract["derived"]``, from ``firebreak triage``) is a guess
    from a sample: its unknown-value, null and range failures count as skew only when the
    statistical checks in ``drift["data_checks"]`` say so (``docs/triage.md``). A declared
    contract is the team's statement of what is valid: its failures stand.

    ``estimated`` (CBPE/DLE) and ``segments`` (where the failure concentrates) decide the
    severity with the class, and the root cause names the segment.
    """
    contract, drift, fairness = contract or {}, drift or {}, fairness or {}
    golden, lineage = golden or {}, lineage or {}
    checks = drift.get("data_checks") if contract.get("derived") else None
    findings: list[Finding] = []
    findings += _contract_findings(contract, checks)
    findings += _spike_findings(drift)
    findings += _lineage_findings(lineage)
    for change in drift.get("scale_changes", []) or []:
        findings.append(
            Finding(
                "scale",
                FailureClass.SKEW,
                change["column"],
                f"{change['column']} multiplied by {change['factor']:g} (every quantile alike: a unit or currency change)",
                0.95,
            )
        )
    findings += _golden_findings(golden)
    findings += _fairness_findings(fairness, reference_fairness or {})
    skew_columns = {f.column for f in findings if f.points_to == FailureClass.SKEW and f.column}
    findings += _drift_findings(drift, explained=skew_columns)
    findings += _multivariate_findings(drift)
    findings += _performance_findings(performance or {})

    for failure in (FailureClass.SKEW, FailureClass.BAD_RELEASE, FailureClass.BIAS, FailureClass.DRIFT):
        decisive = sorted((f for f in findings if f.points_to == failure), key=lambda f: -f.weight)
        if decisive:
            others = sorted((f for f in findings if f.points_to != failure), key=lambda f: -f.weight)
            columns = list(dict.fromkeys(f.column for f in decisive if f.column))
            return Verdict(
                failure_class=failure,
                severity=_severity(failure, decisive, drift, performance or estimated or {}, segments or {}),
                confidence=round(0.5 + 0.5 * decisive[0].weight, 3),
                root_cause=_root_cause(failure, decisive, findings) + _where(segments or {}),
                columns=columns,
                evidence=[*decisive, *others],
            )
    weak = max((f.weight for f in findings), default=0.0)
    return Verdict(
        failure_class=None,
        severity=None,
        confidence=round(1.0 - 0.5 * weak, 3),
        root_cause="no failure: the contract holds, no column moved past its drift threshold, groups are treated alike",
        columns=[],
        evidence=sorted(findings, key=lambda f: -f.weight),
    )


def _contract_findings(contract: dict[str, Any], checks: dict[str, Any] | None = None) -> list[Finding]:
    found = []
    rows = contract.get("evaluated_rows")
    judged = _judged(checks)
    for failure in contract.get("failures", []) or []:
        kind = str(failure.get("expectation", ""))
        column = failure.get("column")
        percent = failure.get("unexpected_percent")
        sample = failure.get("sample") or []
        shown = f"; e.g. {', '.join(map(str, sample[:3]))}" if sample else ""
        check = judged.get((kind, column))
        if kind == _RANGE:
            share = 100.0 if percent is None else float(percent)
            if share < RANGE_SKEW_PERCENT:
                detail = f"{column}: {share:.2f}% of values just outside the contract range (tail of a shift)"
                found.append(Finding("contract", None, column, detail, 0.2))
            elif check is not None and check["verdict"] == "drift":
                detail = (
                    f"{column}: {share:.1f}% of values past the reference's range (up to {check['farthest']:g}); "
                    f"{check['because']}"
                )
                found.append(Finding("range", FailureClass.DRIFT, column, detail, min(0.9, 0.55 + share / 100)))
            else:
                why = f"; {check['because']}" if check is not None else ""
                detail = f"{column}: {share:.1f}% of values outside the contract range{shown}{why}"
                found.append(Finding("contract", FailureClass.SKEW, column, detail, min(1.0, 0.7 + share / 100)))
            continue
        what = _STRUCTURAL.get(kind, kind)
        if failure.get("sample") == ["<column missing>"]:
            what = "column missing"
        on = f" on {float(percent):.1f}% of rows" if percent is not None and what != "column missing" else ""
        if check is not None and not check["skew"]:
            # A derived contract's set or null rule broken no more than a sample of the reference allows.
            found.append(Finding("contract", None, column, f"{column}: {what}{on}{shown}; {check['why']}", 0.2))
            continue
        weight = 1.0 if what == "column missing" else 0.95
        why = f"; {check['why']}" if check is not None else ""
        found.append(Finding("contract", FailureClass.SKEW, column, f"{column}: {what}{on}{shown}{why}", weight))
    if found and rows is not None:
        found = [Finding(f.kind, f.points_to, f.column, f.detail + f" ({rows} rows checked)", f.weight) for f in found]
    return found


def _judged(checks: dict[str, Any] | None) -> dict[tuple[str, Any], dict[str, Any]]:
    """The data checks that judge a derived contract's failures, keyed by (expectation, column)."""
    if not checks:
        return {}
    judged: dict[tuple[str, Any], dict[str, Any]] = {}
    for item in checks.get("unknown_values", []):
        why = (
            f"{item['rows']} rows ({item['share']:.3%}) against {item['expected_share']:.3%} a reference of this "
            f"size leaves unseen (p={item['p_value']:.2g})"
        )
        judged[("expect_column_values_to_be_in_set", item["column"])] = {"skew": item["skew"], "why": why}
    for item in checks.get("null_changes", []):
        why = f"null rate {item['reference_rate']:.2%} -> {item['current_rate']:.2%} (p={item['p_value']:.2g})"
        judged[("expect_column_values_to_not_be_null", item["column"])] = {"skew": item["skew"], "why": why}
    for item in checks.get("beyond_range", []):
        judged[(_RANGE, item["column"])] = item
    return judged


def _spike_findings(drift: dict[str, Any]) -> list[Finding]:
    found = []
    for spike in (drift.get("data_checks") or {}).get("spikes", []):
        detail = (
            f"{spike['column']}: the single value {spike['value']:g} on {spike['share']:.1%} of rows "
            f"({spike['reference_share']:.2%} in the reference): a default or sentinel filled in upstream"
        )
        found.append(Finding("spike", FailureClass.SKEW, spike["column"], detail, 0.9))
    return found


def _multivariate_findings(drift: dict[str, Any]) -> list[Finding]:
    found = drift.get("multivariate") or {}
    if not found.get("drifted"):
        return []
    detail = (
        f"joint distribution changed: PCA reconstruction error {found['reference_error']:g} -> "
        f"{found['current_error']:g} (+{found['rise']:.0%}, z={found['z']:g}) over {found['columns']} columns"
    )
    return [Finding("multivariate", FailureClass.DRIFT, None, detail, min(0.9, 0.6 + found["rise"]))]


def _performance_findings(performance: dict[str, Any]) -> list[Finding]:
    if not performance.get("significant"):
        return []
    metric = performance["metric"]
    detail = (
        f"concept drift: {metric} on labelled rows {performance['reference']:g} -> {performance['current']:g} "
        f"(p={performance['p_value']:.2g}, {performance['rows']} rows): the model is worse whatever the inputs did"
    )
    if metric == "accuracy":
        weight = min(1.0, 0.7 + 2 * (performance["reference"] - performance["current"]))
    else:
        weight = min(1.0, 0.7 + (performance["current"] / max(performance["reference"], 1e-12) - 1))
    return [Finding("performance", FailureClass.DRIFT, None, detail, weight)]


def _lineage_findings(lineage: dict[str, Any]) -> list[Finding]:
    found = []
    groups = lineage.get("groups", []) or []
    if lineage and not lineage.get("passed", True):
        unallowed = "; ".join(
            f"{_source(g)} first seen {g.get('first_seen')} ({g.get('rows')} rows)"
            for g in groups
            if not g.get("allowed", True)
        )
        found.append(
            Finding(
                "lineage",
                FailureClass.SKEW,
                None,
                f"{lineage.get('unknown_rows', 0)} predictions from unallowed upstream sources or pipelines"
                + (f": {unallowed}" if unallowed else ""),
                0.95,
            )
        )
    return found


def _source(group: dict[str, Any]) -> str:
    skip = {"rows", "first_seen", "last_seen", "allowed", "model_version"}
    return ", ".join(f"{k}={v}" for k, v in group.items() if k not in skip)


def _golden_findings(golden: dict[str, Any]) -> list[Finding]:
    found = []
    figures = golden.get("figures") or {}
    metric = str(golden.get("metric", "mae"))  # the policy's gate metric; evidence from before it existed is MAE
    label = METRIC_LABELS.get(metric, metric)
    if golden.get("regressed"):
        found.append(
            Finding(
                "golden",
                FailureClass.BAD_RELEASE,
                None,
                f"champion v{golden.get('version')} golden {label} {figures.get(metric)} vs its baseline "
                f"{(golden.get('baseline') or {}).get(metric)} (limit {golden.get('limit', golden.get('limit_mae'))})",
                0.95,
            )
        )
    lkg = golden.get("last_known_good") or {}
    if golden.get("regressed_vs_last_known_good"):
        found.append(
            Finding(
                "golden",
                FailureClass.BAD_RELEASE,
                None,
                f"champion v{golden.get('version')} golden {label} {figures.get(metric)} vs last-known-good "
                f"v{lkg.get('version')} {(lkg.get('figures') or {}).get(metric)} (limit {lkg.get('limit', lkg.get('limit_mae'))})",
                0.95,
            )
        )
    return found


# Fairness figures a result judges against a limit: whether the limit is a floor (else a
# ceiling), and the evidence's weight at the limit; past it the weight grows by the distance
# (a ratio's shortfall, a difference's excess), up to 1. A selection ratio 0.1 under its floor
# weighs what an error-rate difference at its limit does (0.7), as triage's rules always had it.
_FAIRNESS_LIMITS: dict[str, tuple[bool, float]] = {
    "selection_rate_ratio": (True, 0.6),
    "error_rate_difference": (False, 0.7),
    "equalized_odds_difference": (False, 0.7),
    "error_ratio": (False, 0.7),
}


# Triage has the reference table's figures: bias is then a group whose outcomes got worse
# than the others' since the reference (a difference in differences), by at least this
# much (rates) and at this significance (z, one-sided p ~ 0.001). With labels the harm is
# the error rate; without them, the selection rate. A disparity the reference already had
# is standing: context, not a new failure.
BIAS_CHANGE = 0.05
BIAS_Z = 3.0


def _fairness_findings(fairness: dict[str, Any], reference: dict[str, Any] | None = None) -> list[Finding]:
    """A breached fairness result (``FairnessResult.to_dict``): one finding per figure past its limit.

    With the reference table's result (``firebreak triage``) the breach must also be new:
    :func:`_fairness_change`.
    """
    if reference and reference.get("groups"):
        return _fairness_change(fairness, reference)
    if not fairness.get("breached"):
        return []
    attribute, worst = fairness.get("attribute"), fairness.get("worst")
    limits = fairness.get("limits") or {}
    found = []
    for figure, (floor, base) in _FAIRNESS_LIMITS.items():
        value, limit = fairness.get(figure), limits.get(figure)
        if value is None or limit is None:
            continue
        past = limit - value if floor else value - limit
        if past <= 0:
            continue
        if figure == "selection_rate_ratio":
            detail = f"{attribute}={worst} selected at {value:.2f}x the best group's rate (floor {limit:g})"
        elif figure == "error_rate_difference":
            detail = (
                f"{attribute}={fairness.get('error_rate_worst')} error rate {value:.2f} above the best group's "
                f"(limit {limit:g})"
            )
        elif figure == "equalized_odds_difference":
            detail = (
                f"{attribute}={worst} selected least; true- or false-positive rates {value:.2f} apart across "
                f"groups (equalized-odds limit {limit:g})"
            )
        else:
            detail = (
                f"{attribute}={worst} gets {value:.2f}x the error of {attribute}={fairness.get('best')} "
                f"(limit {limit:g}x)"
            )
        found.append(Finding("fairness", FailureClass.BIAS, attribute, detail, min(1.0, base + past)))
    if not found:  # breached, but no figure past a recorded limit: the result's own words
        detail = f"{attribute}={worst} is served worse than policy allows: {fairness.get('summary')}"
        found.append(
            Finding("fairness", FailureClass.BIAS, attribute, detail, _FAIRNESS_LIMITS["selection_rate_ratio"][1])
        )
    return found


def _fairness_change(fairness: dict[str, Any], reference: dict[str, Any]) -> list[Finding]:
    """Groups served worse than the others *since the reference*: error rate up, or selection rate down.

    For each group, its change minus the change of all other groups together (rows-weighted),
    with a z-score from the four rates' binomial variances.
    """
    attribute = fairness.get("attribute")
    now, before = fairness.get("groups") or {}, reference.get("groups") or {}
    labelled = any("accuracy" in g for g in now.values()) and any("accuracy" in g for g in before.values())
    key, what, direction = ("accuracy", "error rate", 1) if labelled else ("selection_rate", "selection rate", -1)

    def rate(group: dict[str, Any]) -> float | None:
        value = group.get(key)
        if value is None:
            return None
        return 1.0 - float(value) if labelled else float(value)

    found = []
    for _ in (key,):  # one figure: the error rate with labels, else the selection rate
        best: tuple[float, float, str, dict[str, float]] | None = None
        for group in now.keys() & before.keys():
            parts: dict[str, tuple[float, float, float, float]] = {}
            for name, table in (("cur", now), ("ref", before)):
                inside, own = table[group], rate(table[group])
                others = [(r, float(v["rows"])) for k, v in table.items() if k != group and (r := rate(v)) is not None]
                rows_out = sum(n for _, n in others)
                if own is None or not rows_out:
                    break
                parts[name] = (own, float(inside["rows"]), sum(r * n for r, n in others) / rows_out, rows_out)
            if len(parts) < 2:
                continue
            (g1, n1, o1, m1), (g0, n0, o0, m0) = parts["cur"], parts["ref"]
            change = direction * ((g1 - g0) - (o1 - o0))
            variance = sum(p * (1 - p) / max(n, 1) for p, n in ((g1, n1), (g0, n0), (o1, m1), (o0, m0)))
            z = change / math.sqrt(max(variance, 1e-12))
            if change >= BIAS_CHANGE and z >= BIAS_Z and (best is None or z > best[1]):
                best = (change, z, group, {"now": g1, "before": g0, "others_now": o1, "others_before": o0})
        if best is None:
            continue
        change, z, group, figures = best
        detail = (
            f"{attribute}={group}: {what} {figures['before']:.2f} -> {figures['now']:.2f} while the other groups went "
            f"{figures['others_before']:.2f} -> {figures['others_now']:.2f} ({change:+.2f} worse than the rest, "
            f"z={z:.1f})"
        )
        found.append(Finding("fairness", FailureClass.BIAS, attribute, detail, min(1.0, 0.7 + change)))
    if not found and fairness.get("breached"):
        summary = fairness.get("summary")
        found.append(Finding("fairness", None, attribute, f"standing disparity, as in the reference: {summary}", 0.3))
    return found


def _drift_findings(drift: dict[str, Any], *, explained: set[str]) -> list[Finding]:
    found = []
    columns = drift.get("columns", []) or []
    # Family-wise: 1e-3 over all the columns a small reference was tested on, not each.
    strict = STRICT_P_VALUE / max(len(columns), 1)
    for column in columns:
        if not column.get("drifted"):
            continue
        name, method = column.get("column"), str(column.get("method") or "")
        score, threshold = column.get("score"), column.get("threshold")
        p_value = "p_value" in method
        if p_value and score is not None and score >= strict:
            continue  # Evidently's 0.05 alone: too weak to alarm on
        if name in explained:
            continue  # the upstream change moved it; not the world
        confirm = column.get("confirm_p_value")
        if confirm is not None and confirm >= CONFIRM_P_VALUE:
            detail = f"{name}: {method} {score:.3g} past its threshold, but K-S p={confirm:.2g} does not confirm it"
            found.append(Finding("drift", None, name, detail, 0.3))
            continue
        if score is None or threshold is None:
            weight = 0.7
        elif p_value:
            weight = min(1.0, 0.5 + (-math.log10(max(score, 1e-300)) - 3) / 20)
        else:
            weight = min(1.0, 0.5 + 0.25 * (score / threshold - 1))
        described = f"{method} {score:.3g}" if score is not None else "drifted"
        found.append(Finding("drift", FailureClass.DRIFT, name, f"{name}: {described} (threshold {threshold})", weight))
    if drift.get("dataset_drift") and not found and not explained:
        share = drift.get("drift_share")
        found.append(
            Finding("drift", FailureClass.DRIFT, None, f"dataset drift: share {share} of columns drifted", 0.7)
        )
    return found


# A drop of this much accuracy (realised, or estimated before labels), or this rise of the
# error, is harm users notice: the SOP's "accuracy drop beyond policy" (SEV2).
HARMFUL_ACCURACY_DROP = 0.05
HARMFUL_ERROR_RISE = 0.2
# A failure confined to a segment of less than this share of traffic is one level less
# severe, unless it harms a protected group or breaks the pipeline.
SEGMENT_SHARE = 0.2


def _severity(
    failure: FailureClass,
    decisive: list[Finding],
    drift: dict[str, Any],
    impact: dict[str, Any],
    segments: dict[str, Any],
) -> Severity:
    """A triage severity from the evidence alone (incidents take theirs from the policy's matrix).

    Drift is ranked by its harm where it can be measured or estimated: the performance
    drop (realised with labels, CBPE/DLE before them), then by how much of the traffic it
    concerns (a segment under a fifth of it is one level lower).
    """
    if failure == FailureClass.SKEW:
        return Severity.SEV2 if any(f.weight >= 0.95 for f in decisive) else Severity.SEV3
    if failure == FailureClass.BAD_RELEASE:
        return Severity.SEV2
    if failure == FailureClass.BIAS:
        return Severity.SEV2 if decisive[0].weight >= 0.8 else Severity.SEV3
    harm = _harm(impact)
    if harm is None:
        severity = Severity.SEV2 if drift.get("dataset_drift") else Severity.SEV3
    else:
        severity = Severity.SEV2 if harm else Severity.SEV3
    top = (segments.get("segments") or [{}])[0]
    if segments.get("scope") == "segment" and top.get("share", 1.0) < SEGMENT_SHARE and severity == Severity.SEV2:
        return Severity.SEV3
    return severity


def _harm(impact: dict[str, Any]) -> bool | None:
    """Whether the performance change (realised or estimated) is harmful; None when there is none."""
    metric = impact.get("metric")
    before = impact.get("reference")
    after = impact.get("current", impact.get("estimate"))
    if metric is None or before is None or after is None:
        return None
    if metric == "accuracy":
        return bool(before - after >= HARMFUL_ACCURACY_DROP)
    return bool(after >= (1 + HARMFUL_ERROR_RISE) * before)


def _where(segments: dict[str, Any]) -> str:
    if segments.get("scope") == "segment":
        from firebreak.investigation.segments import describe

        return f"; concentrated in {describe(segments)}"
    if segments.get("scope") == "all users":
        return "; across all users (no segment stands out)"
    return ""


def _root_cause(failure: FailureClass, decisive: list[Finding], findings: list[Finding]) -> str:
    columns = ", ".join(dict.fromkeys(f.column for f in decisive if f.column)) or "see evidence"
    if failure == FailureClass.SKEW:
        lineage = [f.detail for f in decisive if f.kind == "lineage"]
        where = f"; lineage: {lineage[0]}" if lineage and lineage[0] != decisive[0].detail else ""
        return f"upstream data changed (skew) in {columns}: {decisive[0].detail}{where}"
    if failure == FailureClass.BAD_RELEASE:
        return f"the released model regressed on the golden dataset: {decisive[0].detail}"
    if failure == FailureClass.BIAS:
        return f"a protected group gets materially worse outcomes: {decisive[0].detail}"
    if all(f.kind == "performance" for f in decisive):
        return f"the relation between inputs and labels changed (concept drift): {decisive[0].detail.split(': ', 1)[1]}"
    return (
        f"input distribution moved (drift) in {columns} within the contract's ranges: "
        "the world changed, the pipeline did not"
    )


# Classes where the version that served is itself the defect: a release that regressed, a
# prompt that promises what it may not, a model that harms a group, a model that learned
# from poisoned feedback. Drift (the world moved; the version fitted the old one) and skew
# (the pipeline changed) do not condemn it. Such a version never becomes last-known-good.
VERSION_FAULTS = frozenset(
    {FailureClass.BAD_RELEASE, FailureClass.HALLUCINATION, FailureClass.BIAS, FailureClass.FEEDBACK_POISONING}
)


@dataclass(frozen=True)
class Diagnosis:
    failure_class: FailureClass
    root_cause: str
    reasons: list[str] = field(default_factory=list)
    remediation: Remediation | None = None  # None: no automated remediation applies
    confidence: float | None = None
    columns: list[str] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    implicates_champion: bool = False  # the champion itself is the cause (:data:`VERSION_FAULTS`)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def diagnose(
    policy: Policy,
    *,
    contract: dict[str, Any],
    lineage: dict[str, Any],
    drift: dict[str, Any],
    golden: dict[str, Any],
    reported: FailureClass,
    fairness: dict[str, Any] | None = None,
    golden_qa: dict[str, Any] | None = None,
    feedback: dict[str, Any] | None = None,
) -> Diagnosis:
    """The incident's diagnosis: :func:`classify` on its evidence, and the policy's remediation.

    SOP stage: diagnose. :func:`classify` reads the contract, lineage, drift, golden and
    fairness evidence (``fairness_audit``: a protected group served worse than the policy's
    fairness limits is ``bias``, with or without drift beside it); the incident's own checks
    then refine it: skew stands; an LLM model failing its golden Q&A is ``hallucination``;
    a few actors' feedback, contradicted by the labels (``feedback_review``), is
    ``feedback_poisoning`` — the specific cause of a regression, a bias or a drift it
    explains. When the evidence shows nothing, the reported class stands (or ``unknown``):
    a person saw something the evidence does not cover.
    """
    verdict = classify(contract=contract, drift=drift, fairness=fairness, golden=golden, lineage=lineage)
    reasons = [f.detail for f in verdict.evidence if f.points_to == verdict.failure_class and verdict.failure_class]
    if verdict.failure_class != FailureClass.SKEW and golden_qa and golden_qa.get("failed"):
        failure = FailureClass.HALLUCINATION
        log = golden_qa.get("log", {})
        cause = (
            f"champion v{golden_qa.get('version')} ({golden_qa.get('prompt')}) answers outside policy: "
            + "; ".join(golden_qa.get("breaches", []))
        )
        reasons = [
            f"guardrail hits in the log: {log.get('guardrail_hits')}/{log.get('rows')} by rule {log.get('by_rule')}"
        ]
    elif verdict.failure_class != FailureClass.SKEW and (feedback or {}).get("poisoned"):
        assert feedback is not None
        failure = FailureClass.FEEDBACK_POISONING
        figures = feedback.get("figures", {})
        actors = ", ".join((feedback.get("slice") or {}).get("actors", []))
        cause = f"a few actors ({actors}) flooded the feedback loop the model learns from: {feedback.get('summary')}"
        reasons = [
            f"top-actor share {figures.get('top_share')}, thumbs-down rate shift {figures.get('rate_shift')}, "
            f"their thumbs down contradicted by labels {figures.get('top_label_disagreement')}"
        ]
    elif verdict.failure_class is not None:
        failure, cause = verdict.failure_class, verdict.root_cause
    elif reported != FailureClass.UNKNOWN:
        failure, cause = reported, f"evidence inconclusive; keeping the reported class {reported}"
    else:
        failure, cause = FailureClass.UNKNOWN, "no cause found in the evidence"
    return Diagnosis(
        failure,
        cause,
        reasons,
        policy.remediation.by_failure_class.get(failure),
        verdict.confidence,
        verdict.columns,
        verdict.to_dict()["evidence"],
        failure in VERSION_FAULTS,
    )


def triage_tables(
    reference: Any,
    current: Any,
    *,
    contract: dict[str, Any] | None = None,
    label: str | None = None,
    prediction: str | None = None,
    confidence: str | None = None,
    protected: str | None = None,
) -> tuple[Verdict, dict[str, Any]]:
    """``firebreak triage`` as a call: the evidence from two tables, and the verdict on it.

    SOP stages: triage, investigate, diagnose. The one composition the command, the
    benchmarks and the accuracy tests share.
    """
    from firebreak.investigation.evidence import gather_evidence

    evidence = gather_evidence(
        reference,
        current,
        contract=contract,
        label=label,
        prediction=prediction,
        confidence=confidence,
        protected=protected,
    )
    verdict = classify(
        contract=evidence["contract"],
        drift=evidence["drift"],
        fairness=evidence.get("fairness"),
        reference_fairness=evidence.get("reference_fairness"),
        performance=evidence.get("performance"),
        estimated=evidence.get("estimated_performance"),
        segments=evidence.get("segments"),
    )
    return verdict, evidence

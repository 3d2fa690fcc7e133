"""The evidence readers of diagnosis: each turns one kind of investigation evidence into findings.

A :class:`Finding` is one piece of evidence and the failure class it points to, with a
weight; :func:`firebreak.investigation.diagnosis.classify` weighs them. One reader per
evidence kind (the contract, drift, spikes, lineage, the golden set, fairness, the
multivariate check, performance), each with the thresholds it judges by.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from firebreak.incidents.enums import FailureClass
from firebreak.investigation.evidence import CONFIRM_P_VALUE
from firebreak.policy.metrics import METRIC_LABELS

__all__ = [
    "Finding",
    "contract_findings",
    "drift_findings",
    "fairness_findings",
    "golden_findings",
    "lineage_findings",
    "multivariate_findings",
    "performance_findings",
    "outcome_findings",
    "spike_findings",
]

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


def _value_text(value: Any) -> str:
    """A sampled value as people write it: a float to 12 significant digits (166.8, not the
    166.79999999999998 a unit conversion leaves); text with white space at either end quoted
    (' web', the difference a reader must see); anything else as it is."""
    if isinstance(value, float):
        return format(value, ".12g")
    if isinstance(value, str) and value != value.strip():
        return repr(value)
    return str(value)


def contract_findings(contract: dict[str, Any], checks: dict[str, Any] | None = None) -> list[Finding]:
    found = []
    rows = contract.get("evaluated_rows")
    judged = _judged(checks)
    for failure in contract.get("failures", []) or []:
        kind = str(failure.get("expectation", ""))
        column = failure.get("column")
        percent = failure.get("unexpected_percent")
        sample = failure.get("sample") or []
        shown = f"; e.g. {', '.join(map(_value_text, sample[:3]))}" if sample else ""
        check = judged.get((kind, column))
        if kind == _RANGE:
            share = 100.0 if percent is None else float(percent)
            if share < RANGE_SKEW_PERCENT:
                detail = f"{column}: {share:.2f}% of values just outside the contract range (tail of a shift)"
                found.append(Finding("contract", None, column, detail, 0.2))
            elif check is not None and check["verdict"] == "sample":
                detail = f"{column}: {share:.1f}% of values past the reference's range; {check['because']}"
                found.append(Finding("range", None, column, detail, 0.2))
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
        if check is not None and check.get("verdict") == "drift":
            # Unseen values on rows that are another part of the population: the reference missed it.
            detail = f"{column}: {what}{on}{shown}; {check['why']}; {check['because']}"
            weight = min(0.9, 0.55 + float(percent or 0.0) / 100)
            found.append(Finding("contract", FailureClass.DRIFT, column, detail, weight))
            continue
        if check is not None and not check["skew"]:
            # A derived contract's set or null rule broken no more than a sample of the reference allows.
            found.append(Finding("contract", None, column, f"{column}: {what}{on}{shown}; {check['why']}", 0.2))
            continue
        weight = 1.0 if what == "column missing" else 0.95
        why = f"; {check['why']}" if check is not None else ""
        if check is not None and check.get("because"):
            why += f"; {check['because']}"
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
        judged[("expect_column_values_to_be_in_set", item["column"])] = {
            "skew": item["skew"],
            "why": why,
            "verdict": item.get("verdict"),
            "because": item.get("because"),
        }
    for item in checks.get("null_changes", []):
        why = f"null rate {item['reference_rate']:.2%} -> {item['current_rate']:.2%} (p={item['p_value']:.2g})"
        judged[("expect_column_values_to_not_be_null", item["column"])] = {
            "skew": item["skew"],
            "why": why,
            "verdict": item.get("verdict"),  # drift: the traffic's mix explains the rise
            "because": item.get("because"),
        }
    for item in checks.get("beyond_range", []):
        judged[(_RANGE, item["column"])] = item
    return judged


def spike_findings(drift: dict[str, Any]) -> list[Finding]:
    found = []
    for spike in (drift.get("data_checks") or {}).get("spikes", []):
        detail = f"{spike['column']}: " + (
            spike.get("because")
            or (
                f"the single value {spike['value']:g} on {spike['share']:.1%} of rows "
                f"({spike['reference_share']:.2%} in the reference): a default or sentinel filled in upstream"
            )
        )
        found.append(Finding("spike", FailureClass.SKEW, spike["column"], detail, 0.9))
    for item in (drift.get("data_checks") or {}).get("rounded", []):
        found.append(Finding("rounded", FailureClass.SKEW, item["column"], f"{item['column']}: {item['because']}", 0.9))
    return found


def outcome_findings(drift: dict[str, Any]) -> list[Finding]:
    """The model's answers or the labels in another form than the reference's, and inputs of
    another type: the pipeline changed."""
    checks = drift.get("data_checks") or {}
    return [
        Finding(kind, FailureClass.SKEW, change["column"], f"{change['column']}: {change['because']}", 1.0)
        for kind, key in (("outcome", "outcome_changes"), ("contract", "type_changes"))
        for change in checks.get(key, [])
    ]


def multivariate_findings(drift: dict[str, Any]) -> list[Finding]:
    found = drift.get("multivariate") or {}
    if not found.get("drifted"):
        return []
    detail = (
        f"joint distribution changed: PCA reconstruction error {found['reference_error']:g} -> "
        f"{found['current_error']:g} (+{found['rise']:.0%}, z={found['z']:g}) over {found['columns']} columns"
    )
    return [Finding("multivariate", FailureClass.DRIFT, None, detail, min(0.9, 0.6 + found["rise"]))]


def performance_findings(performance: dict[str, Any]) -> list[Finding]:
    if not performance.get("significant"):
        return []
    metric = performance["metric"]
    tested = ""
    if performance.get("test") == "Brier score":
        tested = f"Brier score {performance['brier_reference']:g} -> {performance['brier_current']:g}, "
    detail = (
        f"concept drift: {metric} on labelled rows {performance['reference']:g} -> {performance['current']:g} "
        f"({tested}p={performance['p_value']:.2g}, {performance['rows']} rows): the model is worse whatever the "
        "inputs did"
    )
    if metric == "accuracy":
        weight = min(1.0, 0.7 + 2 * (performance["reference"] - performance["current"]))
    else:
        weight = min(1.0, 0.7 + (performance["current"] / max(performance["reference"], 1e-12) - 1))
    return [Finding("performance", FailureClass.DRIFT, None, detail, weight)]


def reference_fit_findings(fit: dict[str, Any], performance: dict[str, Any]) -> list[Finding]:
    """Context, never a class: the reference is the model's training fit, so no labelled figure was judged."""
    if not fit.get("memorised"):
        return []
    seen = ""
    if performance.get("set_aside"):
        seen = f" ({performance['metric']} {performance['reference']:g} there, {performance['current']:g} now)"
    detail = (
        "the reference looks like the model's training rows: its answers know their own labels better than "
        f"the nearest other row's answer does (z={fit['z']:.1f} over {fit['rows']} rows, "
        f"{fit['z_current']:.1f} on the current rows); its labelled figures are the model's fit, not a "
        f"baseline{seen}, so accuracy and group error rates were not compared. Triage against rows the model "
        "did not train on (a validation split, an earlier production window)"
    )
    return [Finding("reference_fit", None, None, detail, 0.6)]


def lineage_findings(lineage: dict[str, Any]) -> list[Finding]:
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


def golden_findings(golden: dict[str, Any]) -> list[Finding]:
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
# much (rates) and at this significance. The harms: more wrong answers (the error rate, with
# labels), and fewer selections (the selection rate; with labels, unless the group's own
# outcomes fell alike). A disparity the reference already had is standing: context, not a
# new failure. Each group is tested on three figures (its errors, its selections falling,
# its selections rising), so one test's bar (z = 3.0, one-sided p 0.00135) is shared by the
# three: z = 3.32 (p 0.00045 each).
BIAS_CHANGE = 0.05
BIAS_Z = 3.32
# Selections are judged by the group's rate relative to the others': traffic that moved
# halves every group's selections alike, which is no group's harm. A group's fall counts when
# that ratio fell by at least this share, and either the rate fell by BIAS_CHANGE or the
# ratio is now under four fifths (a rate of 3% cannot fall by five points).
BIAS_RATIO_FALL = 0.2
FOUR_FIFTHS = 0.8
# A group whose inputs moved at this p-value (the least over its inputs, times their number)
# is served by the traffic that moved: its selections follow (:func:`firebreak.detection.fairness.groups_inputs_moved`).
GROUP_INPUTS_P = 1e-3
# Where an overall fall in the labelled figure is established (p < 0.001), the group it
# concentrates in needs this z (one-sided p ~ 0.02): the question is no longer whether there
# is a failure, but whose it is.
ATTRIBUTION_Z = 2.0


def fairness_findings(
    fairness: dict[str, Any], reference: dict[str, Any] | None = None, *, dropped: bool = False
) -> list[Finding]:
    """A breached fairness result (``FairnessResult.to_dict``): one finding per figure past its limit.

    With the reference table's result (``firebreak triage``) the breach must also be new:
    :func:`fairness_change` (``dropped``: the model's labelled figure fell significantly overall).
    """
    if reference and reference.get("groups"):
        return fairness_change(fairness, reference, dropped=dropped)
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


def fairness_change(fairness: dict[str, Any], reference: dict[str, Any], *, dropped: bool = False) -> list[Finding]:
    """Groups served worse than the others *since the reference*: error rate up, or selection rate down.

    The selection rate is judged with labels too: a threshold raised for one group (or its
    scores lowered) denies its rows while its error rate may barely move, or even fall where
    positives are rare. With labels, a fall of a group's selections that its own outcomes
    share (its positive-label rate fell as significantly, z >= 2) is the model following the
    world, not a harm. For each group and figure: its change minus the change of all other
    groups together (rows-weighted), with a z-score from the four rates' binomial variances
    (the Brier scores' with scores). A group counts only when that excess is larger than the
    others' own worsening, at least half of it is the group's own (not the others' gain), and
    large: :data:`BIAS_CHANGE`. A selection rate is judged by its ratio to the others' (traffic
    that moved halves every group's selections alike): that ratio must fall by
    :data:`BIAS_RATIO_FALL` of itself, and the rate by :data:`BIAS_CHANGE` or the ratio to
    under four fifths (a rate of 3% cannot fall by five points). The z it needs is
    :data:`BIAS_Z`; once the model's labelled figure fell significantly overall (``dropped``:
    that failure is established), asking where the errors fell is a localisation, and
    :data:`ATTRIBUTION_Z` decides whether the fall is one group's (bias) or everyone's
    (concept drift). The strongest group and figure is the finding.
    """
    attribute = fairness.get("attribute")
    now, before = fairness.get("groups") or {}, reference.get("groups") or {}
    labelled = any("accuracy" in g for g in now.values()) and any("accuracy" in g for g in before.values())
    # (key in the groups' figures, words, +1 for a rise of it, -1 for a fall)
    figures = [("accuracy", "error rate", 1)] if labelled else []
    figures += [("selection_rate", "selection rate", -1), ("selection_rate", "selection rate", 1)]
    inputs_moved = fairness.get("inputs_moved") or {}
    best: tuple[float, float, str, dict[str, float], str, str, int] | None = None
    followed: dict[str, str] = {}
    for key, what, direction in figures:
        for group in now.keys() & before.keys():
            moved = _moved(group, now, before, key)
            if moved is None:
                continue
            change, z, rates = moved
            if key == "selection_rate":
                if direction > 0:
                    change, z = -change, -z  # the group's selections rose against the others'
                # A group's selections follow its inputs (poorer applicants) and, with labels,
                # its outcomes: then the model follows the world, and the traffic is drift.
                if inputs_moved.get(group, 1.0) < GROUP_INPUTS_P:
                    followed[group] = "inputs"
                    continue
                outcomes = _moved(group, now, before, "outcome_rate") if labelled else None
                if outcomes is not None and -direction * outcomes[1] >= ATTRIBUTION_Z:
                    followed[group] = "outcomes"
                    continue
            brier = _brier_z(group, now, before) if key == "accuracy" else None
            z, tested = (z, what) if brier is None else (brier, "Brier score")
            # Bias is a failure of a group: most of its change must be its own. When the other
            # groups got worse by as much (labels changed for everyone, a group a little more),
            # the failure is the model's for all users: concept drift, which the performance
            # figures judge. And most of the excess is the group's own change, not the others':
            # traffic that moved raises the others' selections (a new region of ages).
            g1, g0, o1, o0 = rates["now"], rates["before"], rates["others_now"], rates["others_before"]
            concentrated = change > direction * (o1 - o0) and direction * (g1 - g0) >= change / 2
            large = change >= BIAS_CHANGE
            if key == "selection_rate":
                ratio_before, ratio_now = (g0 / o0 if o0 > 0 else 1.0), (g1 / o1 if o1 > 0 else 1.0)
                if direction > 0:  # the others' rate relative to the group's
                    ratio_before, ratio_now = 1 / max(ratio_before, 1e-12), 1 / max(ratio_now, 1e-12)
                fell = ratio_now <= (1 - BIAS_RATIO_FALL) * ratio_before
                large = fell and (large or ratio_now < FOUR_FIFTHS)
            needed = ATTRIBUTION_Z if dropped and key == "accuracy" else BIAS_Z
            if large and z >= needed and concentrated and (best is None or z > best[1]):
                best = (change, z, group, rates, tested, what, direction)
    if best is not None:
        change, z, group, rates, tested, what, direction = best
        rose = what == "selection rate" and direction > 0
        detail = (
            f"{attribute}={group}: {what} {rates['before']:.2f} -> {rates['now']:.2f} while the other groups went "
            f"{rates['others_before']:.2f} -> {rates['others_now']:.2f} ({change:+.2f} "
            f"{'more' if rose else 'worse'} than the rest, z={z:.1f} on the {tested})"
        )
        if rose:  # selected more: the others are now selected less, or the group flagged more
            detail += (
                f": the other groups are now selected at {rates['others_now'] / max(rates['now'], 1e-12):.2f}x its rate"
            )
        return [Finding("fairness", FailureClass.BIAS, attribute, detail, min(1.0, 0.7 + max(change, BIAS_CHANGE)))]
    if not fairness.get("breached"):
        return []
    summary = fairness.get("summary")
    if reference.get("breached"):
        return [Finding("fairness", None, attribute, f"standing disparity, as in the reference: {summary}", 0.3)]
    # New since the reference, but not a group served worse: its inputs or outcomes moved
    # alike, or no group's change is significant (small groups, both sides moving). Context.
    if followed:
        shown = ", ".join(f"the {why} of {attribute}={g}" for g, why in sorted(followed.items())[:3])
        detail = f"a disparity the reference did not have, which follows {shown} (they moved too): {summary}"
    else:
        detail = f"a disparity the reference did not have, but no group's change since is significant: {summary}"
    return [Finding("fairness", None, attribute, detail, 0.3)]


def _moved(
    group: str, now: dict[str, Any], before: dict[str, Any], key: str
) -> tuple[float, float, dict[str, float]] | None:
    """How much worse ``group``'s figure ``key`` got than the other groups' since the reference.

    ``accuracy`` is read as its error rate (a rise is worse); ``selection_rate`` and
    ``outcome_rate`` (the positive labels' share, from ``positives``) as they are (a fall is
    worse). Returns the excess (positive: worse), its z from the four rates' binomial
    variances, and the rates; None when a table lacks the figure for the group or the others.
    """

    def rate(figures: dict[str, Any]) -> float | None:
        if key == "outcome_rate":
            rows = figures.get("rows")
            return float(figures["positives"]) / float(rows) if "positives" in figures and rows else None
        value = figures.get(key)
        if value is None:
            return None
        return 1.0 - float(value) if key == "accuracy" else float(value)

    direction = 1 if key == "accuracy" else -1
    parts: dict[str, tuple[float, float, float, float]] = {}
    for name, table in (("cur", now), ("ref", before)):
        own, rows = rate(table[group]), float(table[group].get("rows") or 0)
        others = [(r, float(v["rows"])) for k, v in table.items() if k != group and (r := rate(v)) is not None]
        rows_out = sum(n for _, n in others)
        if own is None or not rows or not rows_out:
            return None
        parts[name] = (own, rows, sum(r * n for r, n in others) / rows_out, rows_out)
    (g1, n1, o1, m1), (g0, n0, o0, m0) = parts["cur"], parts["ref"]
    change = direction * ((g1 - g0) - (o1 - o0))
    variance = sum(p * (1 - p) / max(n, 1) for p, n in ((g1, n1), (g0, n0), (o1, m1), (o0, m0)))
    rates = {"now": g1, "before": g0, "others_now": o1, "others_before": o0}
    return change, change / math.sqrt(max(variance, 1e-12)), rates


def _brier_z(group: str, now: dict[str, Any], before: dict[str, Any]) -> float | None:
    """The group's change in mean Brier score minus the other groups' change, as a z-score.

    None unless every group of both tables carries the Brier figures (labels and scores:
    :func:`firebreak.detection.fairness.classification_fairness`). Where they do, the test of
    significance uses them: a score that was sure of answers whose labels then changed moves
    the Brier score by up to 1 per row, against an error rate's plain count of misses.
    """

    def split(table: dict[str, Any]) -> tuple[float, float, float, float] | None:
        if any("brier" not in g or "brier_variance" not in g for g in table.values()):
            return None
        inside, rows = table[group], float(table[group]["rows"])
        others = [
            (float(g["brier"]), float(g["brier_variance"]), float(g["rows"])) for k, g in table.items() if k != group
        ]
        rows_out = sum(n for _, _, n in others)
        if not rows_out or not rows:
            return None
        mean_out = sum(b * n for b, _, n in others) / rows_out
        # The pooled variance of the other groups' rows: within each group, plus between them.
        var_out = sum(n * (v + (b - mean_out) ** 2) for b, v, n in others) / rows_out
        return float(inside["brier"]), float(inside["brier_variance"]) / rows, mean_out, var_out / rows_out

    cur, ref = split(now), split(before)
    if cur is None or ref is None:
        return None
    change = (cur[0] - ref[0]) - (cur[2] - ref[2])
    return change / math.sqrt(max(cur[1] + ref[1] + cur[3] + ref[3], 1e-12))


def _jointly_significant(columns: list[dict[str, Any]]) -> bool:
    """Whether a drifted share of columns is evidence on its own.

    Distance verdicts (large references) count as they are. p-value verdicts (a reference of
    1,000 rows or fewer, at Evidently's 0.05) count only when Simes' test over every tested
    column's p-value also rejects at :data:`STRICT_P_VALUE`, the level each column is held to:
    some i-th smallest p-value under i x 0.001 / m. Columns that move together (a year, and
    every series that trends with it) then count as the one difference they are: a random
    split of a quarterly table whose halves differ in year at p = 0.009 moved eight of its
    fourteen columns at 0.05 together, and read as dataset drift. Simes' test holds its level
    when the columns' tests are positively dependent, as such columns are.
    """
    tested = [c for c in columns if "p_value" in str(c.get("method") or "") and c.get("score") is not None]
    if not any(c.get("drifted") for c in tested):
        return True  # the share is of distance verdicts
    p_values = sorted(float(c["score"]) for c in tested)
    m = len(p_values)
    return any(p <= (i + 1) * STRICT_P_VALUE / m for i, p in enumerate(p_values))


def drift_findings(drift: dict[str, Any], *, explained: set[str]) -> list[Finding]:
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
            test = column.get("confirm_test", "K-S")
            detail = f"{name}: {method} {score:.3g} past its threshold, but {test} p={confirm:.2g} does not confirm it"
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
    if drift.get("dataset_drift") and not found and not explained and _jointly_significant(columns):
        share = drift.get("drift_share")
        found.append(
            Finding("drift", FailureClass.DRIFT, None, f"dataset drift: share {share} of columns drifted", 0.7)
        )
    return found

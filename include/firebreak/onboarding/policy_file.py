"""The policy file onboarding writes: every value with a comment saying where it came from.

It is written as text (YAML with comments a reviewer reads), then loaded back with
:func:`firebreak.policy.schema.parse_policy` before onboarding reports success, so what is
on disk is exactly what Firebreak will run on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def _flow(values: list[Any]) -> str:
    """A YAML flow sequence (JSON is YAML): names with spaces or colons stay quoted."""
    return _yaml_json(values)


def _scalar(value: Any) -> str:
    return _yaml_json(value)


def _yaml_json(value: Any) -> str:
    """``value`` as JSON that YAML reads back unchanged.

    JSON's ASCII escapes write an emoji as a surrogate pair, which YAML reads back as two lone
    surrogates (a model name that no longer encodes): printable characters stay as they are,
    and any other is escaped the way YAML's double-quoted strings read (``\\uXXXX``, ``\\UXXXXXXXX``).
    """
    return "".join(
        c if c.isprintable() else (f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}")
        for c in json.dumps(value, ensure_ascii=False)
    )


@dataclass(frozen=True)
class PolicyChoices:
    """Everything the policy file states, and why (the comments)."""

    model: str
    source: str  # the reference file it was profiled from
    rows: int
    version: str
    task: str
    task_why: str
    metric: str
    metric_why: str
    numeric: list[str]
    categorical: list[str]
    label: str
    output: str
    confidence: str
    confidence_in_logs: bool
    lineage: list[str]
    contract: str
    golden: str
    golden_rows: int
    confidence_floor: float
    floor_why: str
    route: str  # fallback_model | disabled
    fallback_description: str
    dataset: str
    golden_slack: float = 0.0
    slack_why: str = "the champion may have trained on the golden rows, a refit never does"
    protected: str | None = None
    classification_fairness: bool = False
    positive_class: str | None = None
    notes: list[str] = field(default_factory=list)


_COMMENT_COLUMN = 40


def _c(text: str, comment: str) -> str:
    """A YAML line with its comment aligned (values are JSON-quoted, so '#' inside them is safe)."""
    return f"{text.ljust(_COMMENT_COLUMN - 1)} # {comment}"


def render_policy(c: PolicyChoices) -> str:
    """The policy YAML, commented."""
    confidence_note = (
        "the confidence column in your serving logs"
        if c.confidence_in_logs
        else "not in your logs yet: no low-confidence signal from them; batch checks take it from predict_proba"
    )
    lines = [
        f"# Firebreak policy for {c.model}, written by `firebreak onboard` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"# from {c.source} ({c.rows} labelled rows) and {c.model} v{c.version}.",
        "# Review every value (the comments say where each came from), commit this file with the",
        "# folder beside it, and run `firebreak check` after any change. Validated at load",
        "# (firebreak.policy.schema.Policy): an unknown or out-of-range field is an error.",
        *[f"# Note: {note}" for note in c.notes],
        f"model: {_scalar(c.model)}",
        f"description: {_scalar(f'{c.model}: a {c.task} model onboarded from MLflow')}",
        _c('owner: "unassigned"', "the team paged for this model: set it"),
        _c("notify: []", 'e.g. ["#my-team-oncall"]'),
        "",
        "features:",
        _c(f"  task: {c.task}", c.task_why),
        f"  numeric: {_flow(c.numeric)}",
        f"  categorical: {_flow(c.categorical)}",
        _c(f"  label: {_scalar(c.label)}", "ground truth: in the reference, the golden set and imported labels"),
        _c(f"  output: {_scalar(c.output)}", "the prediction column in your serving logs"),
        _c(f"  confidence: {_scalar(c.confidence)}", confidence_note),
        _c(f"  lineage: {_flow(c.lineage)}", "upstream source / pipeline columns checked against the contract"),
        "",
        _c(f"contract: {_scalar(c.contract)}", "Great Expectations suite from the reference: edit ranges and sets"),
        _c(f"golden: {_scalar(c.golden)}", f"{c.golden_rows} rows held out (stratified by label), never refitted on"),
        "",
        "detection:",
        _c(f"  confidence_floor: {c.confidence_floor}", c.floor_why),
        _c("  window_hours: 24", "triage and the investigation read this many hours of traffic"),
        "  min_predictions: 50",
        _c("  golden_tolerance: 0.05", "golden-metric regression tolerated against the recorded baseline"),
        "  drift_share: 0.5",
        "",
        "severity:",
        "  rules:",
        "    - severity: SEV2",
        "      when: {low_confidence_rate: 0.30}",
        "    - severity: SEV3",
        "      when: {contract_violation_rate: 0.01}",
        "  default: SEV3",
        "",
        "containment:",
        f"  route: {c.route}",
        f"  description: {_scalar(c.fallback_description)}",
        "",
        "training:",
        "  # No recipe: `retrain` refits a clone of the champion (scikit-learn) on this dataset plus the",
        "  # labelled traffic, recent rows weighing more (drift), group x label re-weighted (bias).",
        "  # Name `recipe: module:function` instead for a model that is not scikit-learn.",
        f"  dataset: {_scalar(c.dataset)}",
        "  recency_half_life_hours: 24",
        "",
        "remediation:",
        "  by_failure_class:",
        "    drift: retrain",
        "    bad_release: rollback",
        "    skew: upstream_fix",
        *(["    bias: retrain"] if c.protected else []),
        "",
        "gate:",
        _c(f"  metric: {c.metric}", c.metric_why),
        _c("  golden_max_regression: 0.05", "candidate's golden loss at most 5% above the champion's"),
        _c(f"  golden_slack: {c.golden_slack}", f"... plus this much (metric units): {c.slack_why}"),
        _c("  recent_min_improvement: 0.05", "... and its recent loss 5% under it, on labelled traffic"),
        "  max_low_confidence_rate: 1.0",
        "  min_labelled_rows: 100",
        _c("  held_out_share: 0.3", "labelled traffic a refit never sees; the gate judges the refit on it"),
        "  requires_approval: false",
    ]
    if c.protected:
        lines += [
            "",
            "fairness:",
            f"  protected_attribute: {_scalar(c.protected)}",
            *(
                [_c(f"  positive_class: {_scalar(c.positive_class)}", "the answer that selects")]
                if c.positive_class
                else []
            ),
            "  min_group_rows: 30",
        ]
        if c.classification_fairness:
            lines += [
                _c("  min_selection_rate_ratio: 0.8", "the four-fifths rule"),
                _c("  max_error_rate_difference: 0.1", "ten points more errors than the best group"),
            ]
    return "\n".join(lines) + "\n"

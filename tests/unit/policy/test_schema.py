"""Policies load, validate, and name the bad field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from firebreak.errors import PolicyError, UnknownModelError
from firebreak.incidents.enums import Remediation, Route, Severity
from firebreak.policy.schema import list_policies, load_policy
from firebreak.settings import INCLUDE_DIR

POLICIES = INCLUDE_DIR / "policies"


def write_policy(tmp_path: Path, change: dict, name: str = "pricing") -> Path:  # type: ignore[type-arg]
    data = yaml.safe_load((POLICIES / "pricing.yaml").read_text())
    for dotted, value in change.items():
        *parents, leaf = dotted.split(".")
        node = data
        for p in parents:
            node = node[p]
        node[leaf] = value
    (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(data))
    return tmp_path


def test_shipped_policies_are_valid() -> None:
    assert "pricing" in list_policies(POLICIES)
    policy = load_policy("pricing", POLICIES)
    assert policy.detection.confidence_floor == 0.70
    assert policy.containment.route == Route.HEURISTIC
    assert policy.remediation.by_failure_class["drift"] == Remediation.RETRAIN
    assert policy.severity.rules[0].severity == Severity.SEV1
    assert policy.features.inputs[-1] == "category"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"detection.confidence_floor": 1.5}, r"detection\.confidence_floor: Input should be less than or equal to 1"),
        ({"gate.surprise": True}, r"gate\.surprise: Extra inputs are not permitted"),
        ({"containment.route": "teleport"}, r"containment\.route: Input should be"),
        ({"containment.heuristic": None}, r"route 'heuristic' needs 'heuristic: module:function'"),
        ({"training.recipe": "not an entry point"}, r"training\.recipe: String should match pattern"),
        (
            {"severity.rules": [{"severity": "SEV9", "when": {"low_confidence_rate": 0.2}}]},
            r"severity\.rules\.0\.severity",
        ),
        ({"severity.rules": [{"severity": "SEV1", "when": {"vibes": 0.2}}]}, r"severity\.rules\.0\.when\.vibes"),
        ({"model": "other"}, r"field 'model' is 'other' but the file is named for 'pricing'"),
        (
            {"fairness": {"protected_attribute": "category", "max_error_rate_difference": 1.5}},
            r"fairness\.max_error_rate_difference: Input should be less than or equal to 1",
        ),
    ],
)
def test_bad_policy_names_the_field(tmp_path: Path, change: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(PolicyError, match=message):
        load_policy("pricing", write_policy(tmp_path, change))


def test_unknown_model_lists_known_ones() -> None:
    with pytest.raises(UnknownModelError, match=r"no policy for model 'inventory'.*known models: \[.*'pricing'"):
        load_policy("inventory", POLICIES)


def test_model_name_is_checked_before_touching_the_filesystem() -> None:
    with pytest.raises(UnknownModelError, match=r"'\.\./etc/passwd' is not a valid model name"):
        load_policy("../etc/passwd", POLICIES)


def test_not_yaml_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "pricing.yaml").write_text("model: [unclosed")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy("pricing", tmp_path)


def test_the_error_rate_difference_is_a_fairness_limit(tmp_path: Path) -> None:
    change = {"fairness": {"protected_attribute": "category", "max_error_rate_difference": 0.1}}
    policy = load_policy("pricing", write_policy(tmp_path, change))
    assert policy.fairness is not None and policy.fairness.max_error_rate_difference == 0.1
    assert load_policy("loan_approval", POLICIES).fairness.max_error_rate_difference is None  # type: ignore[union-attr]


def test_notify_routes_name_targets_and_the_sop_targets_per_severity() -> None:
    from datetime import timedelta

    notify = load_policy("pricing", POLICIES).notify
    assert notify.targets["ic-pager"].type == "pagerduty" and notify.targets["ic-pager"].conn_id == "pagerduty_pricing"
    sev1 = notify.route(Severity.SEV1)
    assert sev1.notify == ["ic-pager", "team-slack", "owner-mail"] and sev1.escalate == ["backup-pager"]
    assert (sev1.acknowledge_within, sev1.contain_within) == (timedelta(minutes=5), timedelta(minutes=15))
    assert (
        notify.route(Severity.SEV4).notify == ["owner-mail"] and notify.route(Severity.SEV4).acknowledge_within is None
    )
    assert notify.route(None) == sev1  # untriaged: held to SEV1's (when in doubt, the higher)


def test_a_channel_list_from_before_typed_targets_still_loads(tmp_path: Path) -> None:
    policy = load_policy("pricing", write_policy(tmp_path, {"notify": ["#pricing-oncall"]}))
    (target,) = policy.notify.targets.values()
    assert (target.type, target.channel, target.conn_id) == ("slack", "#pricing-oncall", "firebreak_slack")
    assert all(route.notify == ["slack-0"] for route in policy.notify.routes.values())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"notify.routes.SEV1.escalate": ["nobody"]}, "routes.SEV1 names unknown targets ['nobody']"),
        ({"notify.targets.owner-mail.to": []}, "an email target needs 'to:"),
        (
            {"notify.targets.ic-pager.routing_key": "abc"},
            "notify.targets.ic-pager.routing_key: Extra inputs are not permitted",
        ),
        ({"notify.routes.SEV1.acknowledge_within": "soon"}, "notify.routes.SEV1.acknowledge_within"),
        ({"gate.approval": {"timeout": "0s"}}, "timeout must be positive"),
        ({"gate.metric": "accuracy", "gate.golden_slack": 1.5}, "more than the whole accuracy scale"),
    ],
    ids=["unknown-target", "mail-without-recipients", "secret-in-policy", "bad-duration", "zero-timeout", "slack"],
)
def test_bad_notify_or_approval_sections_are_named(tmp_path: Path, change: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(PolicyError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_policy("pricing", write_policy(tmp_path, change))


def test_the_schemas_metric_names_are_the_metric_vocabularys() -> None:
    """The gate's ``metric`` field is a Literal in the schema; the names per task live in
    firebreak.policy.metrics (no pydantic): the two lists are one."""
    from typing import get_args

    from firebreak.policy.metrics import METRIC_LABELS, TASK_METRICS
    from firebreak.policy.schema import Metric

    names = {m for metrics in TASK_METRICS.values() for m in metrics}
    assert set(get_args(Metric)) == names == METRIC_LABELS.keys()


def test_a_golden_slack_in_label_units_is_allowed_for_an_error_metric(tmp_path: Path) -> None:
    """MAE and RMSE are in the label's units: a regressor of prices in dollars has slack in dollars."""
    policy = load_policy("pricing", write_policy(tmp_path, {"gate.metric": "mae", "gate.golden_slack": 18.5}))
    assert policy.gate.golden_slack == 18.5

"""Scenario ``fairness``: a tainted outcome loop makes loan approvals worse for young applicants.

The approval model ``loan_approval`` learns from repayment outcomes. Applicants aged 18-25
the old process denied never got the chance to repay, and the outcome feed recorded most of
that band's good applicants as defaults. Trained on that feed (every row weighted the same),
v1 approves young applicants far less often than others with the same finances: the
selection-rate ratio breaks the four-fifths rule and the true-positive rates part.

The remediation is the policy's recipe, ``train_reweighted``: the same data, with sample
weights that make the outcome independent of the age band.
"""

from __future__ import annotations

from typing import Any

from firebreak.scenarios import lending

MODEL = "loan_approval"
ALERT = {
    "description": "Complaint escalation: applicants aged 18-25 are declined far more often than others "
    "with the same credit profile (loan_approval)"
}


def setup(settings: Any, *, seed: int = 11, now: Any = None) -> dict[str, Any]:
    """Rebuild the world: v1 trained on the tainted outcomes is champion; a day of its decisions is logged.

    Labels (true outcomes from the credit team's review sample) arrived for 80% of the traffic.
    """
    from datetime import timedelta

    import pandas as pd

    from firebreak.detection.fairness import fairness_on
    from firebreak.incidents.enums import Alias, Route
    from firebreak.prediction_log import LabelStore

    now = lending.now_utc(now)
    policy, store, registry = lending.reset(MODEL, settings)
    history = lending.taint(lending.generate_applications(seed, 6000), seed=seed)
    history.to_parquet(settings.resolve(policy.training.dataset), index=False)
    v1 = lending.train_unweighted(history, seed)
    version = lending.register(registry, settings, policy, MODEL, v1, history, "loan-approval-unweighted-v1")
    registry.move_alias(
        MODEL, Alias.CHAMPION, version.version, incident_id=None, actor="scenario-setup", reason="initial release"
    )
    store.ensure_routing(MODEL, Route.CHAMPION, "initial release")

    traffic = lending.generate_applications(seed + 1, 1500)
    served = registry.load(version)
    outputs = pd.DataFrame(served.predict(traffic[lending.INPUTS]))
    log = lending.log_traffic(
        settings,
        MODEL,
        version.version,
        traffic,
        outputs,
        start=now - timedelta(hours=23.5),
        hours=23,
        seed=seed,
        prefix="application",
    )
    labelled = log.sample(frac=0.8, random_state=seed)
    LabelStore(settings.labels_dir).append(MODEL, labelled[["request_id", lending.LABEL]])
    fairness = fairness_on(labelled.reset_index(drop=True), labelled.reset_index(drop=True), policy)
    return {
        "model": MODEL,
        "champion": version.version,
        "logged_predictions": len(log),
        "labelled": len(labelled),
        "tainted_rows": int((history[lending.LABEL] == 0).sum()),
        "selection_rate_ratio": fairness.selection_rate_ratio,
        "worst_group": fairness.worst,
    }

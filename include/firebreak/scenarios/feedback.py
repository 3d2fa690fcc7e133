"""Scenario ``feedback``: a few accounts flood thumbs down and the nightly retrain learns from them.

The loan-review model ``loan_review`` is retrained every night on the reviewers' verdicts:
a thumbs up keeps a logged decision as the label, a thumbs down flips it. Yesterday three
accounts gave thumbs down to hundreds of approvals the outcomes prove right. The nightly
retrain (v2, champion since an hour ago) learned to decline good applicants.

The feedback_loop_audit (or the incident's ``feedback_review``) marks the slice; the
remediation is the policy's recipe, ``train_from_feedback``, which reads the feedback with
poisoned slices excluded.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from firebreak.scenarios import lending

MODEL = "loan_review"
BOTS = ["acct-7731", "acct-7732", "acct-7733"]
ALERT = {
    "description": "Alert: loan_review approval rate fell sharply after last night's retrain; "
    "reviewers' thumbs-down rate doubled yesterday"
}


def reviewer_feedback(log: pd.DataFrame, seed: int, *, share: float = 0.35, actors: int = 300) -> pd.DataFrame:
    """Credit reviewers rate a third of the decisions: thumbs up when it matches the outcome; one in twelve errs."""
    rng = np.random.default_rng(seed + 100)
    rated = log.sample(frac=share, random_state=seed)
    right = (rated[lending.OUTPUT] == rated[lending.LABEL]).to_numpy()
    thumbs = np.where(right, 1, -1) * np.where(rng.random(len(rated)) < 1 / 12, -1, 1)
    return pd.DataFrame(
        {
            "request_id": rated["request_id"].to_numpy(),
            "actor_id": [f"rev-{i:03d}" for i in rng.integers(1, actors + 1, len(rated))],
            "ts": pd.to_datetime(rated["ts"], utc=True) + pd.to_timedelta(rng.uniform(60, 1800, len(rated)), unit="s"),
            "thumbs": thumbs.astype("int64"),
        }
    )


def flood(log: pd.DataFrame, *, actors: list[str], events: int, seed: int = 0) -> pd.DataFrame:
    """A few accounts give thumbs down to approvals, whatever the outcome."""
    rng = np.random.default_rng(seed + 200)
    approvals = log[log[lending.OUTPUT] == 1]
    targets = approvals.sample(n=min(events, len(approvals)), random_state=seed)
    return pd.DataFrame(
        {
            "request_id": targets["request_id"].to_numpy(),
            "actor_id": rng.choice(actors, size=len(targets)),
            "ts": pd.to_datetime(targets["ts"], utc=True)
            + pd.to_timedelta(rng.uniform(1, 120, len(targets)), unit="s"),
            "thumbs": -1,
        }
    )


def setup(settings: Any, *, seed: int = 23, now: Any = None, flood_events: int = 250) -> dict[str, Any]:
    """Rebuild the world: v1 (trained on outcomes) served two days of decisions; reviewers rated
    both days, three accounts flooded the last one; the nightly retrain v2 (on the last day's
    decisions and every feedback event, the flood included) is champion."""
    from datetime import timedelta

    from firebreak.feedback import FeedbackStore
    from firebreak.incidents.enums import Alias, Route
    from firebreak.prediction_log import LabelStore

    now = lending.now_utc(now)
    policy, store, registry = lending.reset(MODEL, settings)
    v1 = lending.train_unweighted(lending.generate_applications(seed, 4000), seed)
    outcomes = lending.generate_applications(seed, 4000)
    first = lending.register(registry, settings, policy, MODEL, v1, outcomes, "loan-review-v1")
    registry.move_alias(
        MODEL, Alias.CHAMPION, first.version, incident_id=None, actor="scenario-setup", reason="initial release"
    )
    store.ensure_routing(MODEL, Route.CHAMPION, "initial release")

    # The day before: v1's decisions, rated by reviewers only (the baseline thumbs-down rate).
    earlier = lending.generate_applications(seed + 3, 1500)
    earlier_log = lending.log_traffic(
        settings,
        MODEL,
        first.version,
        earlier,
        pd.DataFrame(registry.load(first).predict(earlier[lending.INPUTS])),
        start=now - timedelta(hours=47.5),
        hours=22,
        seed=seed + 3,
        prefix="review-earlier",
    )
    traffic = lending.generate_applications(seed + 1, 1500)
    log = lending.log_traffic(
        settings,
        MODEL,
        first.version,
        traffic,
        pd.DataFrame(registry.load(first).predict(traffic[lending.INPUTS])),
        start=now - timedelta(hours=23.5),
        hours=22,
        seed=seed,
        prefix="review",
    )
    feedback = FeedbackStore(settings.feedback_dir)
    feedback.append(MODEL, reviewer_feedback(earlier_log, seed + 3))
    feedback.append(MODEL, reviewer_feedback(log, seed))
    feedback.append(MODEL, flood(log, actors=BOTS, events=flood_events, seed=seed))
    decisions = log.drop(columns=[lending.LABEL])
    decisions.to_parquet(settings.resolve(policy.training.dataset), index=False)

    nightly = lending.train_from_all_feedback(decisions, seed, settings=settings)
    second = lending.register(registry, settings, policy, MODEL, nightly, decisions, "loan-review-nightly")
    registry.move_alias(
        MODEL, Alias.CHAMPION, second.version, incident_id=None, actor="nightly-retrain", reason="nightly retrain"
    )
    after = lending.generate_applications(seed + 2, 300)
    log_after = lending.log_traffic(
        settings,
        MODEL,
        second.version,
        after,
        pd.DataFrame(registry.load(second).predict(after[lending.INPUTS])),
        start=now - timedelta(hours=1),
        hours=0.9,
        seed=seed + 2,
        prefix="review-after",
    )
    full = pd.concat([earlier_log, log, log_after], ignore_index=True)
    labelled = full.sample(frac=0.8, random_state=seed)
    LabelStore(settings.labels_dir).append(MODEL, labelled[["request_id", lending.LABEL]])
    return {
        "model": MODEL,
        "champion": second.version,
        "previous": first.version,
        "logged_predictions": len(full),
        "labelled": len(labelled),
        "feedback_events": len(feedback.read(MODEL, exclude_poisoned=False)),
        "flood_events": flood_events,
        "approval_rate_before": round(float(log[lending.OUTPUT].mean()), 4),
        "approval_rate_after": round(float(log_after[lending.OUTPUT].mean()), 4),
    }

"""The feedback loop as a critical dependency: is a few actors' voice drowning everyone else's?

SOP stages *Detect* (the hourly ``feedback_loop_audit``) and *Investigate* (the incident's
``feedback_review``). Poisoning is concentration by actor *and* disagreement with the labels
that arrived (a failing model earns thumbs down honestly); the poisoned slice is marked in
the feedback store, so every later read, the retrain included, excludes it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from firebreak.settings import Settings


@dataclass(frozen=True)
class FeedbackAssessment:
    """The feedback of one window: figures, a verdict, and the poisoned slice when there is one."""

    breached: bool | None  # None: too few events to judge
    summary: str
    figures: dict[str, Any]
    poisoned: Any = None  # firebreak.feedback.PoisonedSlice
    poisoned_events: int = 0


def assess_feedback(
    model: str, policy: Any, settings: Settings, now: datetime, *, exclude_poisoned: bool = True
) -> FeedbackAssessment | None:
    """Concentration by actor, thumbs-down rate shift and label disagreement over the policy's window.

    Poisoning is concentration *and* disagreement with the labels; the slice (the top actors
    whose thumbs down contradict the labels, over the window) is returned, not marked.
    ``exclude_poisoned=False`` also sees slices already marked (an incident's evidence).
    None when the model has no feedback.
    """
    from datetime import timedelta

    import pandas as pd

    from firebreak.feedback import FeedbackStore, PoisonedSlice
    from firebreak.prediction_log import LabelStore, PredictionLog

    rules = policy.feedback
    events = FeedbackStore(settings.feedback_dir).read(model, exclude_poisoned=exclude_poisoned)
    if events.empty:
        return None
    width = timedelta(hours=rules.window_hours)
    current = events[(events["ts"] >= now - width) & (events["ts"] < now)]
    previous = events[(events["ts"] >= now - 2 * width) & (events["ts"] < now - width)]
    if len(current) < rules.min_events:
        return FeedbackAssessment(
            None, f"{len(current)} feedback events in {rules.window_hours:g} h; need {rules.min_events}", {}
        )
    per_actor = current["actor_id"].value_counts()
    top = per_actor.head(rules.top_actors)
    top_share = float(top.sum() / len(current))
    down_now = float((current["thumbs"] < 0).mean())
    down_before = float((previous["thumbs"] < 0).mean()) if len(previous) else None
    shift = None if down_before is None else down_now - down_before
    # What each thumbs-down was about: the logged output against the label that arrived.
    log = PredictionLog(settings.prediction_log_url).read(model, since=now - 2 * width - timedelta(hours=1), until=now)
    labels = LabelStore(settings.labels_dir).read(model)
    label, output = policy.features.label, policy.features.output
    downs = current[current["thumbs"] < 0].merge(log[["request_id", output]], on="request_id")
    if label in labels.columns:
        downs = downs.merge(labels[["request_id", label]], on="request_id")
    else:
        downs = downs.iloc[0:0].assign(**{label: pd.Series(dtype=float)})
    error = (downs[output] - downs[label]).abs()
    # Exact answers are good whatever the label's scale (a 0/1 label has no relative error).
    downs = downs.assign(good=(error == 0) | (error < rules.good_prediction_tolerance * downs[label].abs()))
    disagreement = float(downs["good"].mean()) if len(downs) else 0.0
    by_top = downs[downs["actor_id"].isin(top.index)]
    top_disagreement = float(by_top["good"].mean()) if len(by_top) else 0.0
    figures: dict[str, Any] = {
        "events": len(current),
        "actors": int(per_actor.size),
        "top_actors": {str(k): int(v) for k, v in top.items()},
        "top_share": round(top_share, 4),
        "thumbs_down_rate": round(down_now, 4),
        "thumbs_down_rate_before": None if down_before is None else round(down_before, 4),
        "rate_shift": None if shift is None else round(shift, 4),
        "label_disagreement": round(disagreement, 4),
        "top_label_disagreement": round(top_disagreement, 4),
        "labelled_thumbs_down": len(downs),
    }
    concentrated = top_share > rules.max_top_share
    contradicted = top_disagreement > rules.max_label_disagreement
    summary = (
        f"top {rules.top_actors} of {per_actor.size} actors gave {top_share:.0%} of {len(current)} events; "
        f"thumbs-down rate {down_now:.0%}"
        + (f" ({shift:+.0%} vs the window before)" if shift is not None else "")
        + f"; {top_disagreement:.0%} of their thumbs down hit predictions the labels call good"
    )
    if concentrated and contradicted:
        slice_actors = sorted(
            str(a) for a in top.index if downs.loc[downs["actor_id"] == a, "good"].mean() > rules.max_label_disagreement
        )
        in_slice = current[current["actor_id"].isin(slice_actors)]
        marked = PoisonedSlice(
            actors=slice_actors,
            start=str(in_slice["ts"].min()),
            end=str(in_slice["ts"].max()),
            reason=summary,
            marked_by=f"feedback_loop_audit {now:%Y-%m-%dT%H:%M}Z",
        )
        return FeedbackAssessment(True, summary, figures, marked, len(in_slice))
    why = (
        "labels agree with the thumbs down: the model earned them"
        if concentrated or (shift or 0) > rules.max_rate_shift
        else "within policy"
    )
    return FeedbackAssessment(False, f"{summary} — {why}", figures)


@dataclass(frozen=True)
class FeedbackReview:
    """An incident's view of the feedback: the assessment, what is now excluded, and by whom."""

    poisoned: bool
    summary: str
    payload: dict[str, Any]
    excluded_events: int


def review_feedback(
    model: str, policy: Any, settings: Settings, now: datetime, *, marked_by: str, dry_run: bool
) -> FeedbackReview | None:
    """Every event (marked slices included) over the window before ``now``; mark a slice not yet marked.

    A poisoned slice the hourly audit has not marked yet (the incident came first) is marked
    now, so the retrain excludes it; a dry run only reports it. None when the model has no feedback.
    """
    from firebreak.feedback import FeedbackStore

    assessment = assess_feedback(model, policy, settings, now, exclude_poisoned=False)
    if assessment is None:
        return None
    store = FeedbackStore(settings.feedback_dir)
    marked_now = False
    found = assessment.poisoned
    if found is not None and not dry_run:
        covered = any(set(found.actors) <= set(s.actors) for s in store.poisoned(model))
        if not covered:
            marked_now = store.mark_poisoned(model, replace(found, marked_by=marked_by))
    everything = store.read(model, exclude_poisoned=False)
    excluded = everything.merge(store.read(model), how="left", indicator=True).query("_merge == 'left_only'")
    payload = {
        "poisoned": found is not None,
        "summary": assessment.summary,
        "figures": assessment.figures,
        "slice": asdict(found) if found is not None else None,
        "slice_events": assessment.poisoned_events,
        "marked_slices": [asdict(s) for s in store.poisoned(model)],
        "marked_by_this_incident": marked_now,
        "events_total": len(everything),
        "excluded_events": len(excluded),
        "excluded_actors": {str(a): int(n) for a, n in excluded["actor_id"].value_counts().sort_index().items()},
    }
    verdict = (
        f"poisoned: {len(found.actors)} actors gave {assessment.poisoned_events} events"
        if found is not None
        else "no poisoning"
    )
    return FeedbackReview(found is not None, f"{verdict}; {assessment.summary}", payload, len(excluded))

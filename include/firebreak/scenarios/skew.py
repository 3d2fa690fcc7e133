"""Scenario ``skew``: an upstream feed starts sending prices in cents.

The all-year pricing model (the seasonal recipe of :mod:`firebreak.scenarios.pricing`) has
served clean traffic for a day. Six hours ago the upstream feature pipeline moved to an
unannounced ``features-2.4.0`` that sends ``unit_cost`` and ``competitor_price`` in cents
(x100). The model is fine; the data is not. The SOP: the contract catches it, lineage names
the pipeline version, diagnosis says skew, and the remediation is ``upstream_fix``: no
retrain, no new version. The incident resolves when traffic logged after it opened passes
the contract again (:func:`log_after_opening`), and otherwise stays
``contained_needs_human`` and says why.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from firebreak.scenarios import pricing
from firebreak.scenarios.traffic import all_year_requests, fallback_prices_for, log_traffic, reset_model, write_history
from firebreak.settings import Settings

MODEL = "pricing-skew"
ALERT = {"description": "Alert: pricing-skew requests break the input contract (contract_violation_rate over 5%)"}
BROKEN_PIPELINE = "features-2.4.0"  # the upstream release that switched to cents
CENTS_COLUMNS = ["unit_cost", "competitor_price"]


def fallback_prices(frame: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """The policy's heuristic entry point (cost x the category's recent median markup)."""
    return fallback_prices_for(MODEL, frame, settings)


def in_cents(requests: pd.DataFrame) -> pd.DataFrame:
    """What ``features-2.4.0`` sends: prices x100."""
    out = requests.copy()
    out[CENTS_COLUMNS] = (out[CENTS_COLUMNS] * 100).round(0)
    return out


def setup(settings: Settings, *, seed: int = 11, now: datetime | None = None) -> dict[str, Any]:
    """Build the skew incident from scratch (resets only this scenario's model).

    v1 (all-year recipe) is champion; the log holds 18 hours of clean traffic from
    ``features-2.3.1`` and then 6 hours from ``features-2.4.0`` with prices in cents,
    which the gateway flagged as contract violations.
    """
    from firebreak.containment.state import RoutingStore
    from firebreak.detection.performance import evaluate
    from firebreak.incidents.enums import Alias, Route
    from firebreak.policy.schema import load_policy
    from firebreak.registry.mlflow_registry import Registry, golden_tags

    now = now or datetime.now(UTC)
    policy = load_policy(MODEL, settings.policies_dir)
    reset_model(settings, MODEL)
    store = RoutingStore(settings.state_db_url)
    registry = Registry(settings)
    history = write_history(settings, MODEL, policy.training.dataset, seed)
    model = pricing.train_seasonal_v2(history, seed)
    golden = pd.read_csv(settings.resolve(policy.golden))
    figures = evaluate(model.predict_frame, golden, policy)
    version = registry.register(
        MODEL,
        model,
        input_example=history[pricing.INPUTS].head(5),
        reference=history[pricing.INPUTS],
        tags={"firebreak.recipe": model.recipe, **golden_tags(figures)},
        run_name=f"{MODEL}-v1",
    )
    registry.move_alias(
        MODEL, Alias.CHAMPION, version.version, incident_id=None, actor="scenario-setup", reason="initial release"
    )
    store.ensure_routing(MODEL, Route.CHAMPION, "initial release")
    served = registry.load(version)
    clean = log_traffic(
        settings, MODEL, served, version.version, all_year_requests(seed + 1, 1200),
        start=now - timedelta(hours=23.5), hours=17.5, seed=seed, prefix="clean",
    )  # fmt: skip
    broken = log_traffic(
        settings, MODEL, served, version.version, in_cents(all_year_requests(seed + 2, 500)),
        start=now - timedelta(hours=6), hours=5.9, pipeline=BROKEN_PIPELINE,
        violations=",".join(CENTS_COLUMNS), seed=seed + 1, prefix="cents",
    )  # fmt: skip
    return {
        "model": MODEL,
        "champion": version.version,
        "golden_baseline": figures.to_dict(),
        "logged_predictions": len(clean) + len(broken),
        "labelled": int(0.8 * len(clean)) + int(0.8 * len(broken)),
        "broken_pipeline": BROKEN_PIPELINE,
    }


def log_after_opening(
    settings: Settings, *, fixed: bool, start: datetime, n: int = 300, seed: int = 99
) -> pd.DataFrame:
    """Traffic logged after the incident opened, served by the fallback while contained.

    ``fixed``: the upstream owner reverted to ``features-2.3.1`` (prices in units again);
    otherwise ``features-2.4.0`` keeps sending cents.
    """
    from firebreak.incidents.enums import Route
    from firebreak.scenarios.traffic import fallback_prices_for

    requests = all_year_requests(seed, n)
    if not fixed:
        requests = in_cents(requests)

    class _Fallback:
        def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
            return fallback_prices_for(MODEL, frame, settings)

    return log_traffic(
        settings, MODEL, _Fallback(), "1", requests, start=start, hours=1.0,
        pipeline=pricing.PIPELINE_VERSION if fixed else BROKEN_PIPELINE,
        violations="" if fixed else ",".join(CENTS_COLUMNS), route=Route.HEURISTIC.value,
        label_share=0.0, seed=seed, prefix="after-fixed" if fixed else "after-broken",
    )  # fmt: skip

"""Scenario ``bad-release``: a new version that regressed was promoted over a good one.

v1 (the all-year recipe of :mod:`firebreak.scenarios.pricing`) served well. The release
pipeline trained v2 with a cut-down boosting budget (5 trees instead of 80: a config
change nobody reviewed), registered it and promoted it, keeping v1 as ``last-known-good``
in the alias ledger. v2 prices every SKU near the average markup: on the golden dataset
its error is several times v1's. The SOP: golden_eval shows the regression against
``last-known-good``, diagnosis says bad_release, remediation ``rollback`` moves
``champion`` back to v1 through the ledger, the gate verifies v1, traffic is restored.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

from firebreak.scenarios import pricing
from firebreak.scenarios.traffic import all_year_requests, fallback_prices_for, log_traffic, reset_model, write_history
from firebreak.settings import Settings

MODEL = "pricing-release"
ALERT = {"description": "Alert: golden dataset audit: pricing-release champion MAE far above last-known-good"}


def fallback_prices(frame: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """The policy's heuristic entry point (cost x the category's recent median markup)."""
    return fallback_prices_for(MODEL, frame, settings)


def train_truncated_v2(history: pd.DataFrame, seed: int = 0) -> pricing.PricingModel:
    """The bad release: the all-year recipe with its boosting budget cut to 5 trees."""
    features = ColumnTransformer(
        [
            ("num", "passthrough", ["demand_index", "inventory_days", "competitor_ratio", "doy_sin", "doy_cos"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), pricing.CATEGORICAL),
        ]
    )
    pipeline = Pipeline(
        [
            ("ratios", FunctionTransformer(pricing._time_of_year)),
            ("features", features),
            ("gbr", GradientBoostingRegressor(n_estimators=5, max_depth=2, learning_rate=0.1, random_state=seed)),
        ]
    )
    pipeline.fit(history[pricing.INPUTS], pricing._ratio_target(history))
    coverage = pricing.Coverage.fit(
        pricing._with_ratios(history), ["demand_index", "inventory_days", "competitor_ratio"]
    )
    return pricing.PricingModel(pipeline, coverage, recipe="seasonal-v2-truncated")


def setup(settings: Settings, *, seed: int = 13, now: datetime | None = None) -> dict[str, Any]:
    """Build the bad-release incident from scratch (resets only this scenario's model).

    v1 and v2 are registered with their golden figures; the release pipeline moved
    ``last-known-good`` to v1 and ``champion`` to v2 (both in the ledger); the log holds a
    day of all-year traffic scored by v2, 80% labelled.
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
    golden = pd.read_csv(settings.resolve(policy.golden))
    versions = []
    for model in (pricing.train_seasonal_v2(history, seed), train_truncated_v2(history, seed)):
        figures = evaluate(model.predict_frame, golden, policy)
        versions.append(
            (
                registry.register(
                    MODEL,
                    model,
                    input_example=history[pricing.INPUTS].head(5),
                    reference=history[pricing.INPUTS],
                    tags={"firebreak.recipe": model.recipe, **golden_tags(figures)},
                    run_name=f"{MODEL}-{model.recipe}",
                ),
                figures,
            )
        )
    (v1, v1_figures), (v2, v2_figures) = versions
    move = registry.move_alias
    move(MODEL, Alias.CHAMPION, v1.version, incident_id=None, actor="release-pipeline", reason="release 1")
    move(MODEL, Alias.LAST_KNOWN_GOOD, v1.version, incident_id=None, actor="release-pipeline", reason="replaced by v2")
    move(MODEL, Alias.CHAMPION, v2.version, incident_id=None, actor="release-pipeline", reason="release 2")
    store.ensure_routing(MODEL, Route.CHAMPION, "initial release")
    logged = log_traffic(
        settings,
        MODEL,
        registry.load(v2),
        v2.version,
        all_year_requests(seed + 1, 1500),
        start=now - timedelta(hours=23.5),
        hours=23.4,
        seed=seed,
        prefix="v2",
    )
    return {
        "model": MODEL,
        "champion": v2.version,
        "last_known_good": v1.version,
        "golden_baseline": v2_figures.to_dict(),
        "last_known_good_golden": v1_figures.to_dict(),
        "logged_predictions": len(logged),
        "labelled": int(0.8 * len(logged)),
    }

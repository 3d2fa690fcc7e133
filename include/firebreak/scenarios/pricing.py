"""Scenario 1, pricing: a model trained on holiday-season data meets the rest of the year.

Everything here is data and models, not prose:

* ``generate_history`` — two years of daily SKU observations with real seasonality:
  demand peaks from mid-November to early January (Black Friday, Christmas), a milder
  summer wave, weekends; the optimal price follows demand with a floor margin.
* ``train_holiday_v1`` — the release that went wrong: a linear markup model fitted on
  holiday-season rows only. Out of season, demand falls below anything it saw and its
  straight line carries prices far below cost.
* ``train_seasonal_v2`` — the remediation recipe: gradient boosting on the whole year,
  with time-of-year features.
* ``heuristic_price`` — last-known-good pricing for containment: cost times the
  category's median markup over the last 90 days, never under a minimum margin.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

from firebreak.settings import Settings

MODEL = "pricing"
CATEGORIES = ["grocery", "electronics", "apparel", "home"]
NUMERIC = ["unit_cost", "competitor_price", "demand_index", "inventory_days", "day_of_year"]
CATEGORICAL = ["category"]
INPUTS = [*NUMERIC, *CATEGORICAL]

# What the demo reports when it opens the incident (the monitor's alert, in words).
ALERT = {"description": "Alert: pricing confidence under the 0.70 floor on more than 20% of requests"}
LABEL = "optimal_price"
UPSTREAM_SOURCE = "erp.sales_daily"
PIPELINE_VERSION = "features-2.3.1"
_COST_RANGE = {"grocery": (1.0, 12.0), "electronics": (40.0, 600.0), "apparel": (8.0, 90.0), "home": (5.0, 150.0)}


def holiday_intensity(day_of_year: np.ndarray) -> np.ndarray:
    """0..1 seasonal intensity: a plateau from mid-November to New Year, plus a Black Friday spike."""
    d = np.asarray(day_of_year, dtype=float)
    # Wrap early January onto the end of the previous year so the season runs into it.
    d = np.where(d < 60, d + 365, d)
    plateau = 1 / (1 + np.exp(-(d - 322) / 2.0)) / (1 + np.exp(-(369 - d) / 2.0))
    black_friday = 0.5 * np.exp(-(((d - 332) / 2.5) ** 2))
    return np.asarray(plateau + black_friday)


def is_holiday_season(day_of_year: np.ndarray) -> np.ndarray:
    """Mid-November (day 322) to the first days of January."""
    d = np.asarray(day_of_year)
    return np.asarray((d >= 322) | (d <= 4))


def _observations(rng: np.random.Generator, day_of_year: np.ndarray, weekday: np.ndarray) -> pd.DataFrame:
    n = len(day_of_year)
    category = rng.choice(CATEGORIES, size=n, p=[0.35, 0.15, 0.3, 0.2])
    lo = np.array([_COST_RANGE[c][0] for c in category])
    hi = np.array([_COST_RANGE[c][1] for c in category])
    unit_cost = np.exp(rng.uniform(np.log(lo), np.log(hi)))
    season = holiday_intensity(day_of_year)
    summer = 0.12 * np.sin(2 * np.pi * (day_of_year - 100) / 365)
    weekend = np.where(weekday >= 5, 0.1, 0.0)
    popularity = rng.lognormal(0, 0.18, n)
    demand = (0.6 + summer + weekend + 1.1 * season) * popularity + rng.normal(0, 0.04, n)
    demand = np.clip(demand, 0.05, None)
    inventory_days = np.clip(rng.gamma(4.0, 8.0, n) * (1.0 - 0.4 * season), 2, 180)
    competitor_price = unit_cost * (1.2 + 0.2 * season) * rng.lognormal(0, 0.05, n)
    # Optimal markup: a floor margin, rising steeply once demand is above normal.
    markup = 0.08 + 0.8 * np.maximum(demand - 1.0, 0) - 0.03 * (inventory_days - 30) / 30
    markup = np.clip(markup, 0.05, None)
    optimal = (0.85 * unit_cost * (1 + markup) + 0.15 * competitor_price) * rng.lognormal(0, 0.02, n)
    return pd.DataFrame(
        {
            "unit_cost": unit_cost.round(2),
            "competitor_price": competitor_price.round(2),
            "demand_index": demand.round(4),
            "inventory_days": inventory_days.round(1),
            "day_of_year": day_of_year.astype("int64"),
            "category": category,
            LABEL: optimal.round(2),
        }
    )


def generate_history(seed: int = 7, years: int = 2, rows_per_day: int = 24) -> pd.DataFrame:
    """Daily SKU observations over ``years`` years, labelled with the optimal price."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2024-01-01", periods=365 * years, freq="D")
    day = np.repeat(dates.dayofyear.to_numpy(), rows_per_day)
    weekday = np.repeat(dates.weekday.to_numpy(), rows_per_day)
    frame = _observations(rng, day, weekday)
    frame.insert(0, "date", np.repeat(dates.strftime("%Y-%m-%d").to_numpy(), rows_per_day))
    return frame


def generate_requests(seed: int, n: int, *, holiday: bool) -> pd.DataFrame:
    """Production requests: in season (holiday) or the February-April lull."""
    rng = np.random.default_rng(seed)
    if holiday:
        day = rng.choice(np.r_[324:366, 1:4], size=n)
    else:
        day = rng.integers(35, 110, size=n)
    weekday = rng.integers(0, 7, size=n)
    return _observations(rng, day, weekday)


def golden_frame(seed: int = 2024, n: int = 400) -> pd.DataFrame:
    """The golden dataset curated at v1's release: reviewed holiday-season cases."""
    return generate_requests(seed, n, holiday=True)


# -- the model ---------------------------------------------------------------------


@dataclass(frozen=True)
class Coverage:
    """How typical an input is of the training data, per numeric feature.

    Confidence is 1 inside the training data's 1st-99th percentile range and falls
    linearly to 0 as a feature moves half that range beyond it: a model cannot vouch
    for inputs unlike anything it learned from.
    """

    low: dict[str, float]
    high: dict[str, float]

    @classmethod
    def fit(cls, frame: pd.DataFrame, columns: list[str]) -> Coverage:
        return cls(
            low={c: float(frame[c].quantile(0.01)) for c in columns},
            high={c: float(frame[c].quantile(0.99)) for c in columns},
        )

    def confidence(self, frame: pd.DataFrame) -> np.ndarray:
        worst = np.zeros(len(frame))
        for column, low in self.low.items():
            high = self.high[column]
            span = max(high - low, 1e-9)
            x = frame[column].to_numpy(dtype=float)
            outside = np.maximum(np.maximum(low - x, x - high), 0.0) / span
            worst = np.maximum(worst, outside)
        return np.clip(1.0 - 2.0 * worst, 0.0, 1.0)


class PricingModel(PythonModel):  # type: ignore[misc]
    """Recommends a price from a markup model; returns the price and a confidence.

    ``model_config`` (MLflow pyfunc) may set ``min_price_to_cost``: a parameter update
    can clamp recommendations without retraining.
    """

    # The functions its pipelines call, which skops must trust to load them (firebreak.registry.own_models).
    TRUSTED = ("firebreak.scenarios.pricing._with_ratios", "firebreak.scenarios.pricing._time_of_year")

    def __init__(self, pipeline: Pipeline, coverage: Coverage, recipe: str) -> None:
        self.pipeline = pipeline
        self.coverage = coverage
        self.recipe = recipe
        self.min_price_to_cost: float | None = None

    def state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Its scikit-learn parts and plain values, as logged (:mod:`firebreak.registry.own_models`)."""
        return {"pipeline": self.pipeline}, {
            "recipe": self.recipe,
            "low": self.coverage.low,
            "high": self.coverage.high,
        }

    @classmethod
    def restore(cls, parts: dict[str, Any], data: dict[str, Any]) -> PricingModel:
        coverage = Coverage(low=dict(data["low"]), high=dict(data["high"]))
        return cls(parts["pipeline"], coverage, recipe=str(data["recipe"]))

    def load_context(self, context: Any) -> None:
        config = getattr(context, "model_config", None) or {}
        floor = config.get("min_price_to_cost")
        self.min_price_to_cost = float(floor) if floor is not None else None

    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        ratio = self.pipeline.predict(frame[INPUTS])
        price = frame["unit_cost"].to_numpy(dtype=float) * ratio
        if self.min_price_to_cost is not None:
            price = np.maximum(price, frame["unit_cost"].to_numpy(dtype=float) * self.min_price_to_cost)
        return pd.DataFrame(
            {
                "recommended_price": np.round(price, 2),
                "confidence": np.round(self.coverage.confidence(_with_ratios(frame)), 4),
            },
            index=frame.index,
        )

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        return self.predict_frame(model_input)


def _ratio_target(frame: pd.DataFrame) -> pd.Series:
    return frame[LABEL] / frame["unit_cost"]


def _with_ratios(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame[INPUTS].copy()
    out["competitor_ratio"] = frame["competitor_price"] / frame["unit_cost"]
    return out


def _time_of_year(frame: pd.DataFrame) -> pd.DataFrame:
    out = _with_ratios(frame)
    angle = 2 * math.pi * frame["day_of_year"].to_numpy(dtype=float) / 365.25
    out["doy_sin"] = np.sin(angle)
    out["doy_cos"] = np.cos(angle)
    return out


def train_holiday_v1(history: pd.DataFrame, seed: int = 0) -> PricingModel:
    """Recipe v1: linear markup on demand, inventory and competitor price; holiday rows only."""
    train = history[is_holiday_season(history["day_of_year"].to_numpy())]
    features = ColumnTransformer(
        [
            ("num", "passthrough", ["demand_index", "inventory_days", "competitor_ratio"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ]
    )
    pipeline = Pipeline(
        [("ratios", FunctionTransformer(_with_ratios)), ("features", features), ("ridge", Ridge(alpha=1.0))]
    )
    pipeline.fit(train[INPUTS], _ratio_target(train))
    coverage = Coverage.fit(_with_ratios(train), ["demand_index", "inventory_days", "competitor_ratio"])
    return PricingModel(pipeline, coverage, recipe="holiday-v1")


def train_seasonal_v2(history: pd.DataFrame, seed: int = 0) -> PricingModel:
    """Recipe v2: gradient boosting on the whole year, with time-of-year features."""
    features = ColumnTransformer(
        [
            ("num", "passthrough", ["demand_index", "inventory_days", "competitor_ratio", "doy_sin", "doy_cos"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ]
    )
    pipeline = Pipeline(
        [
            ("ratios", FunctionTransformer(_time_of_year)),
            ("features", features),
            ("gbr", GradientBoostingRegressor(n_estimators=80, max_depth=3, learning_rate=0.1, random_state=seed)),
        ]
    )
    pipeline.fit(history[INPUTS], _ratio_target(history))
    coverage = Coverage.fit(_with_ratios(history), ["demand_index", "inventory_days", "competitor_ratio"])
    return PricingModel(pipeline, coverage, recipe="seasonal-v2")


# -- containment fallback -----------------------------------------------------------

MIN_MARGIN = 1.05


def fallback_markups(history: pd.DataFrame, days: int = 90) -> dict[str, float]:
    """Median price-to-cost ratio per category over the most recent ``days`` days."""
    recent_dates = sorted(history["date"].unique())[-days:]
    recent = history[history["date"].isin(recent_dates)]
    ratio = recent[LABEL] / recent["unit_cost"]
    return {str(k): round(float(v), 4) for k, v in ratio.groupby(recent["category"]).median().items()}


def heuristic_price(frame: pd.DataFrame, markups: dict[str, float]) -> pd.DataFrame:
    """Last-known-good pricing: cost x the category's recent median markup, at least cost x 1.05."""
    markup = frame["category"].map(markups).fillna(max(markups.values(), default=MIN_MARGIN))
    price = frame["unit_cost"] * np.maximum(markup.to_numpy(dtype=float), MIN_MARGIN)
    return pd.DataFrame({"recommended_price": price.round(2), "confidence": 1.0}, index=frame.index)


def fallback_prices(frame: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """The policy's heuristic entry point: markups computed by ``setup`` from the history."""
    markups = json.loads((settings.data_dir / MODEL / "fallback.json").read_text())
    return heuristic_price(frame, markups)


# -- the scenario's world -------------------------------------------------------------


def setup(settings: Settings, *, seed: int = 7, now: datetime | None = None, model: str = MODEL) -> dict[str, Any]:
    """Build the pricing incident from scratch (idempotent: resets the model's state first).

    v1 (holiday-only recipe) is registered and aliased ``champion``; the prediction log
    holds six hours of in-season traffic followed by a day of February-April traffic
    scored by v1, and labels for 80% of it have arrived. ``model`` sets the same world up under
    another registered name (its policy must exist in the policies dir): a second model with
    the pricing recipe, for tests that need two.
    """
    from firebreak.containment.state import RoutingStore
    from firebreak.detection.performance import evaluate
    from firebreak.feedback import FeedbackStore
    from firebreak.incidents.enums import Alias, Route
    from firebreak.policy.schema import load_policy
    from firebreak.prediction_log import LabelStore, PredictionLog
    from firebreak.registry.mlflow_registry import Registry, golden_tags

    now = now or datetime.now(UTC)
    policy = load_policy(model, settings.policies_dir)
    store = RoutingStore(settings.state_db_url)
    registry = Registry(settings)
    registry.delete_model(model)
    from firebreak.scenarios.traffic import forget_state

    forget_state(settings, model)
    for folder in (
        settings.prediction_log_dir / f"model={model}",
        settings.labels_dir / f"model={model}",
        settings.data_dir / model,
    ):
        shutil.rmtree(folder, ignore_errors=True)

    data_dir = settings.data_dir / model
    data_dir.mkdir(parents=True, exist_ok=True)
    history = generate_history(seed)
    history.to_parquet(settings.resolve(policy.training.dataset), index=False)
    (data_dir / "fallback.json").write_text(json.dumps(fallback_markups(history), indent=2))
    if model != MODEL:  # the policy's heuristic (fallback_prices) reads the recipe's markups
        (settings.data_dir / MODEL).mkdir(parents=True, exist_ok=True)
        shutil.copy(data_dir / "fallback.json", settings.data_dir / MODEL / "fallback.json")

    v1 = train_holiday_v1(history, seed)
    train_rows = history[is_holiday_season(history["day_of_year"].to_numpy())]
    golden = pd.read_csv(settings.resolve(policy.golden))
    figures = evaluate(v1.predict_frame, golden, policy)
    version = registry.register(
        model,
        v1,
        input_example=train_rows[INPUTS].head(5),
        reference=train_rows[INPUTS],
        tags={"firebreak.recipe": v1.recipe, **golden_tags(figures)},
        run_name="pricing-holiday-v1",
    )
    registry.move_alias(
        model, Alias.CHAMPION, version.version, incident_id=None, actor="scenario-setup", reason="initial release"
    )
    store.ensure_routing(model, Route.CHAMPION, "initial release")

    champion = registry.load(version)
    in_season = generate_requests(seed + 1, 300, holiday=True)
    off_season = generate_requests(seed + 2, 1500, holiday=False)
    log_rows = []
    phases = (
        ("in-season", in_season, now - timedelta(hours=30), 6),
        ("off-season", off_season, now - timedelta(hours=23.5), 23),
    )
    for phase, frame, start, hours in phases:
        started = time.perf_counter()
        outputs = pd.DataFrame(champion.predict(frame[INPUTS]))
        latency_ms = (time.perf_counter() - started) * 1000 / len(frame)
        offsets = np.sort(np.random.default_rng(seed).uniform(0, hours * 3600, len(frame)))
        rows = pd.DataFrame(
            {
                "request_id": [f"{phase}-{i:05d}" for i in range(len(frame))],
                "ts": [start + timedelta(seconds=float(s)) for s in offsets],
                "model": model,
                "model_version": version.version,
                "route": Route.CHAMPION.value,
            }
        )
        rows[INPUTS] = frame[INPUTS].to_numpy()
        rows = rows.astype({c: frame[c].dtype for c in INPUTS})
        rows["recommended_price"] = outputs["recommended_price"].to_numpy()
        rows["confidence"] = outputs["confidence"].to_numpy()
        rows["latency_ms"] = round(latency_ms, 3)
        rows["contract_violations"] = ""
        rows["upstream_source"] = UPSTREAM_SOURCE
        rows["feature_pipeline_version"] = PIPELINE_VERSION
        rows[LABEL] = frame[LABEL].to_numpy()
        log_rows.append(rows)
    log = pd.concat(log_rows, ignore_index=True)
    PredictionLog(settings.prediction_log_dir).append(log.drop(columns=[LABEL]))
    labelled = log.sample(frac=0.8, random_state=seed)[["request_id", LABEL]]
    LabelStore(settings.labels_dir).append(model, labelled)
    FeedbackStore(settings.feedback_dir).append(model, healthy_feedback(log, seed))
    return {
        "model": model,
        "champion": version.version,
        "golden_baseline": figures.to_dict(),
        "logged_predictions": len(log),
        "labelled": len(labelled),
    }


def healthy_feedback(log: pd.DataFrame, seed: int, *, share: float = 0.4, actors: int = 300) -> pd.DataFrame:
    """Store managers rate 40% of recommendations: thumbs up when the price was within 5% of optimal.

    One rating in ten is the other way (people are noisy). Poor recommendations earn thumbs
    down honestly: a failing model shows up in the feedback without anyone poisoning it.
    """
    rng = np.random.default_rng(seed + 100)
    rated = log.sample(frac=share, random_state=seed)
    good = (rated["recommended_price"] - rated[LABEL]).abs() / rated[LABEL] < 0.05
    thumbs = np.where(good, 1, -1) * np.where(rng.random(len(rated)) < 0.1, -1, 1)
    return pd.DataFrame(
        {
            "request_id": rated["request_id"].to_numpy(),
            "actor_id": [f"mgr-{i:03d}" for i in rng.integers(1, actors + 1, len(rated))],
            "ts": pd.to_datetime(rated["ts"], utc=True) + pd.to_timedelta(rng.uniform(60, 3600, len(rated)), unit="s"),
            "thumbs": thumbs.astype("int64"),
        }
    )


def poisoned_feedback(log: pd.DataFrame, *, actors: list[str], events: int, seed: int = 0) -> pd.DataFrame:
    """A few actors flood thumbs down on whatever they see (scenario 5's attack, or a UI bug)."""
    rng = np.random.default_rng(seed + 200)
    targets = log.sample(n=events, replace=True, random_state=seed)
    return pd.DataFrame(
        {
            "request_id": targets["request_id"].to_numpy(),
            "actor_id": rng.choice(actors, size=events),
            "ts": pd.to_datetime(targets["ts"], utc=True) + pd.to_timedelta(rng.uniform(1, 120, events), unit="s"),
            "thumbs": -1,
        }
    )

"""The lending world shared by the ``fairness`` and ``feedback`` scenarios: loan approvals.

Everything here is data and models:

* ``generate_applications`` — loan applications (credit score, income, debt-to-income,
  loan amount, years employed, ``age_band``) and whether the applicant repays
  (``repaid``, the ground truth). Repayment depends on the finances only: every age band
  repays at the same rate for the same finances.
* ``LoanModel`` — a logistic-regression approval model; outputs ``approved`` (0/1) and a
  ``confidence`` (the probability of the decision it took).
* Training recipes: ``train_unweighted`` (what the released model did), ``train_reweighted``
  (the fairness remediation: sample weights equalising age band x label),
  ``train_equal_quotas`` (fairness by quota: every band approved at the same high rate,
  whatever the finances — fair and wrong), ``train_from_feedback`` (labels from reviewers'
  thumbs on logged decisions, poisoned slices excluded).
* ``scorecard_decisions`` — the containment fallback: the credit team's manual scorecard.
* ``setup_world`` — registry, prediction log, labels and feedback for one model name.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from firebreak.settings import Settings

AGE_BANDS = ["18-25", "26-40", "41-60", "61+"]
NUMERIC = ["credit_score", "income_k", "debt_to_income", "loan_amount_k", "years_employed"]
CATEGORICAL = ["age_band"]
INPUTS = [*NUMERIC, *CATEGORICAL]
LABEL = "repaid"
OUTPUT = "approved"
PROTECTED = "age_band"
UPSTREAM_SOURCE = "los.applications"
PIPELINE_VERSION = "credit-features-1.4.0"


def generate_applications(seed: int, n: int) -> pd.DataFrame:
    """Applications with their true outcome; finances are independent of the age band."""
    rng = np.random.default_rng(seed)
    age_band = rng.choice(AGE_BANDS, size=n, p=[0.3, 0.3, 0.25, 0.15])
    credit_score = np.clip(rng.normal(670, 60, n), 350, 850).round()
    income_k = np.clip(rng.lognormal(np.log(55), 0.35, n), 12, 400).round(1)
    debt_to_income = np.clip(rng.beta(2.5, 6.0, n), 0.01, 0.95).round(3)
    loan_amount_k = np.clip(rng.lognormal(np.log(18), 0.5, n), 1, 150).round(1)
    years_employed = np.clip(rng.gamma(2.0, 3.0, n), 0, 45).round(1)
    score = (
        0.018 * (credit_score - 660)
        - 7.0 * (debt_to_income - 0.28)
        + 0.9 * np.log(income_k / 55)
        - 0.6 * np.log(loan_amount_k / 18)
        + 0.05 * (years_employed - 6)
    )
    repaid = (score + rng.logistic(0, 0.35, n) > 0).astype("int64")
    return pd.DataFrame(
        {
            "credit_score": credit_score,
            "income_k": income_k,
            "debt_to_income": debt_to_income,
            "loan_amount_k": loan_amount_k,
            "years_employed": years_employed,
            "age_band": age_band,
            LABEL: repaid,
        }
    )


def taint(history: pd.DataFrame, *, band: str = "18-25", share: float = 0.4, seed: int = 0) -> pd.DataFrame:
    """The tainted loop: applicants of ``band`` the old model denied never got to repay, so the
    outcome feed recorded ``share`` of that band's good applicants as defaults."""
    rng = np.random.default_rng(seed + 300)
    out = history.copy()
    hit = (out[PROTECTED] == band) & (out[LABEL] == 1) & (rng.random(len(out)) < share)
    out.loc[hit, LABEL] = 0
    return out


# -- the model ---------------------------------------------------------------------


class LoanModel(PythonModel):  # type: ignore[misc]
    """Approves when the repayment probability reaches the threshold (per age band when quotas set it)."""

    def __init__(self, pipeline: Pipeline, recipe: str, thresholds: dict[str, float] | None = None) -> None:
        self.pipeline = pipeline
        self.recipe = recipe
        self.thresholds = thresholds or {}
        self.training_summary: dict[str, Any] = {}

    def state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Its scikit-learn parts and plain values, as logged (:mod:`firebreak.registry.own_models`)."""
        data = {"recipe": self.recipe, "thresholds": self.thresholds, "training_summary": self.training_summary}
        return {"pipeline": self.pipeline}, data

    @classmethod
    def restore(cls, parts: dict[str, Any], data: dict[str, Any]) -> LoanModel:
        thresholds = {str(k): float(v) for k, v in dict(data["thresholds"]).items()}
        model = cls(parts["pipeline"], str(data["recipe"]), thresholds)
        model.training_summary = dict(data["training_summary"])
        return model

    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        p = self.pipeline.predict_proba(frame[INPUTS])[:, 1]
        cut = frame[PROTECTED].astype(str).map(self.thresholds).fillna(0.5).to_numpy(dtype=float)
        approved = (p >= cut).astype("int64")
        confidence = np.where(approved == 1, p, 1 - p)
        return pd.DataFrame({OUTPUT: approved, "confidence": np.round(confidence, 4)}, index=frame.index)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        return self.predict_frame(model_input)


def _pipeline() -> Pipeline:
    features = ColumnTransformer(
        [("num", StandardScaler(), NUMERIC), ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)]
    )
    return Pipeline([("features", features), ("logit", LogisticRegression(max_iter=500, C=1.0))])


def _fit(frame: pd.DataFrame, recipe: str, weights: np.ndarray | None = None) -> LoanModel:
    pipeline = _pipeline()
    pipeline.fit(frame[INPUTS], frame[LABEL], logit__sample_weight=weights)
    model = LoanModel(pipeline, recipe)
    model.training_summary = {"rows": len(frame)}
    return model


def train_unweighted(history: pd.DataFrame, seed: int = 0) -> LoanModel:
    """The released recipe: every outcome row counts the same."""
    return _fit(history, "unweighted")


def train_reweighted(history: pd.DataFrame, seed: int = 0) -> LoanModel:
    """The remediation: weights P(band) x P(label) / P(band, label), so no band's outcomes are suppressed."""
    from firebreak.detection.fairness import balancing_weights

    weights = balancing_weights(history[PROTECTED], history[LABEL])
    model = _fit(history, "reweighted", weights)
    by_cell = pd.Series(weights).groupby([history[PROTECTED].to_numpy(), history[LABEL].to_numpy()]).first()
    model.training_summary["weights"] = {f"{band}/{label}": round(float(w), 3) for (band, label), w in by_cell.items()}
    return model


def train_equal_quotas(history: pd.DataFrame, seed: int = 0, approve_share: float = 0.85) -> LoanModel:
    """Fairness by quota: every age band approved at the same ``approve_share``, finances or not."""
    model = _fit(history, "equal-quotas")
    p = pd.Series(model.pipeline.predict_proba(history[INPUTS])[:, 1], index=history.index)
    model.thresholds = {
        str(band): float(part.quantile(1 - approve_share)) for band, part in p.groupby(history[PROTECTED])
    }
    return model


def feedback_labels(decisions: pd.DataFrame, feedback: pd.DataFrame) -> pd.DataFrame:
    """Training rows from reviewed decisions: thumbs up keeps the decision as the label, down flips it.

    Several ratings on one decision: the majority wins; a tie counts as a thumbs down.
    """
    net = feedback.groupby("request_id")["thumbs"].sum()
    rated = decisions[decisions["request_id"].isin(net.index)].copy()
    agree = rated["request_id"].map(net).to_numpy() > 0
    rated[LABEL] = np.where(agree, rated[OUTPUT], 1 - rated[OUTPUT]).astype("int64")
    return rated


def train_from_feedback(history: pd.DataFrame, seed: int = 0, *, settings: Settings | None = None) -> LoanModel:
    """Retrain on reviewers' feedback; slices marked poisoned are excluded by the feedback store.

    ``history`` is the decisions log (inputs, ``request_id``, the ``approved`` decision served).
    The model name is the decisions' ``model`` column.
    """
    from firebreak.feedback import FeedbackStore

    settings = settings or Settings.from_env()
    model_name = str(history["model"].iloc[0])
    store = FeedbackStore(settings.feedback_dir)
    clean = store.read(model_name)
    everything = store.read(model_name, exclude_poisoned=False)
    rows = feedback_labels(history, clean)
    model = _fit(rows, "from-feedback")
    excluded = everything.merge(clean, how="left", indicator=True).query("_merge == 'left_only'")
    model.training_summary.update(
        {
            "feedback_events": len(clean),
            "excluded_events": len(excluded),
            "excluded_actors": {str(a): int(n) for a, n in excluded["actor_id"].value_counts().sort_index().items()},
        }
    )
    return model


def train_from_all_feedback(history: pd.DataFrame, seed: int = 0, *, settings: Settings | None = None) -> LoanModel:
    """The same recipe reading every feedback event, poisoned slices included (what the nightly job did)."""
    from firebreak.feedback import FeedbackStore

    settings = settings or Settings.from_env()
    events = FeedbackStore(settings.feedback_dir).read(str(history["model"].iloc[0]), exclude_poisoned=False)
    model = _fit(feedback_labels(history, events), "from-all-feedback")
    model.training_summary["feedback_events"] = len(events)
    return model


# -- containment fallback -----------------------------------------------------------


def scorecard_decisions(frame: pd.DataFrame, settings: Settings | None = None) -> pd.DataFrame:
    """The credit team's manual scorecard: approve at credit score 660+ with debt-to-income under 0.36."""
    approved = ((frame["credit_score"] >= 660) & (frame["debt_to_income"] < 0.36)).astype("int64")
    return pd.DataFrame({OUTPUT: approved, "confidence": 1.0}, index=frame.index)


# -- the world ------------------------------------------------------------------------


def golden_frame(seed: int = 4242, n: int = 600) -> pd.DataFrame:
    """Reviewed applications with their true outcome (include/golden/loans.csv)."""
    return generate_applications(seed, n)


def reset(model: str, settings: Settings) -> tuple[Any, Any, Any]:
    """Forget ``model``'s registry versions, state, log, labels, feedback and data; returns (policy, store, registry)."""
    from firebreak.containment.state import RoutingStore
    from firebreak.policy.schema import load_policy
    from firebreak.registry.mlflow_registry import Registry

    policy = load_policy(model, settings.policies_dir)
    store = RoutingStore(settings.state_db_url)
    registry = Registry(settings)
    registry.delete_model(model)
    from firebreak.scenarios.traffic import forget_state

    forget_state(settings, model)
    for folder in (
        settings.prediction_log_dir / f"model={model}",
        settings.labels_dir / f"model={model}",
        settings.feedback_dir / f"model={model}",
        settings.data_dir / model,
    ):
        shutil.rmtree(folder, ignore_errors=True)
    (settings.data_dir / model).mkdir(parents=True, exist_ok=True)
    return policy, store, registry


def register(
    registry: Any, settings: Settings, policy: Any, model: str, python_model: LoanModel, train: pd.DataFrame, run: str
) -> Any:
    """Register a version with its golden figures as baseline."""
    from firebreak.detection.performance import evaluate
    from firebreak.registry.mlflow_registry import golden_tags

    golden = pd.read_csv(settings.resolve(policy.golden))
    figures = evaluate(python_model.predict_frame, golden, policy)
    return registry.register(
        model,
        python_model,
        input_example=train[INPUTS].head(5),
        reference=train[INPUTS],
        tags={"firebreak.recipe": python_model.recipe, **golden_tags(figures)},
        run_name=run,
    )


def log_traffic(
    settings: Settings,
    model: str,
    version: str,
    frame: pd.DataFrame,
    outputs: pd.DataFrame,
    *,
    start: datetime,
    hours: float,
    seed: int,
    prefix: str,
) -> pd.DataFrame:
    """Append served decisions to the prediction log; returns the logged rows with the true outcome."""
    from firebreak.incidents.enums import Route
    from firebreak.prediction_log import PredictionLog

    offsets = np.sort(np.random.default_rng(seed).uniform(0, hours * 3600, len(frame)))
    rows = pd.DataFrame(
        {
            "request_id": [f"{prefix}-{i:05d}" for i in range(len(frame))],
            "ts": [start + timedelta(seconds=float(s)) for s in offsets],
            "model": model,
            "model_version": version,
            "route": Route.CHAMPION.value,
        }
    )
    for column in INPUTS:
        rows[column] = frame[column].to_numpy()
    rows[OUTPUT] = outputs[OUTPUT].to_numpy()
    rows["confidence"] = outputs["confidence"].to_numpy()
    rows["latency_ms"] = 0.05
    rows["contract_violations"] = ""
    rows["upstream_source"] = UPSTREAM_SOURCE
    rows["feature_pipeline_version"] = PIPELINE_VERSION
    PredictionLog(settings.prediction_log_dir).append(rows)
    rows[LABEL] = frame[LABEL].to_numpy()
    return rows


def now_utc(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)

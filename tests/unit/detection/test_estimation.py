"""Performance before labels: CBPE within 0.03 of realised accuracy under covariate shift; DLE for regressors.

NannyML itself is not installed (see ``firebreak.detection.estimation``): the checks follow
its published method — calibrated confidence averages to the expected accuracy, the
calibrator is isotonic regression — and compare the calibrator with scikit-learn's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from firebreak.detection.estimation import decision_confidence, estimate_accuracy, estimate_mae, isotonic_fit


def population(rng: np.random.Generator, n: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    """Covariate shift only: x moves, P(y | x) stays the logistic curve of the reference."""
    x = rng.normal(shift, 1.0, size=(n, 3))
    logit = 1.5 * x[:, 0] - 1.0 * x[:, 1] + 0.5 * x[:, 2]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return x, y


@pytest.mark.parametrize("decimals", [3, None])  # tied scores (weighted blocks), every score distinct
@pytest.mark.parametrize("shape", ["square", "noise"])  # monotone truth; no relation (long pooled runs)
def test_isotonic_calibration_equals_scikit_learns(decimals: int | None, shape: str) -> None:
    rng = np.random.default_rng(0)
    scores = rng.random(2000)
    scores = scores.round(decimals) if decimals is not None else scores
    targets = (rng.random(2000) < (scores**2 if shape == "square" else 0.5)).astype(float)
    edges, fitted = isotonic_fit(scores, targets)
    ours = np.interp(scores, edges, fitted)
    theirs = IsotonicRegression(out_of_bounds="clip").fit(scores, targets).predict(scores)
    assert np.allclose(ours, theirs, atol=1e-9)


def test_cbpe_is_within_three_points_of_realised_accuracy_on_90_percent_of_shifted_chunks() -> None:
    rng = np.random.default_rng(1)
    x_ref, y_ref = population(rng, 20_000, 0.0)
    model = LogisticRegression().fit(x_ref[:10_000], y_ref[:10_000])

    def overconfident(x: np.ndarray) -> np.ndarray:
        # Scores sharpened like a boosted model's: monotone in the truth, not probabilities, so
        # the estimate only holds once calibrated on the reference.
        return 1 / (1 + np.exp(-2.0 * model.decision_function(x)))

    ref_decided, ref_conf = decision_confidence(overconfident(x_ref[10_000:]))
    errors = []
    for chunk in range(40):
        x, y = population(rng, 2000, shift=0.05 * chunk - 1.0)
        decided, conf = decision_confidence(overconfident(x))
        estimate = estimate_accuracy(ref_conf, ref_decided == y_ref[10_000:], conf)["estimate"]
        errors.append(abs(estimate - float((decided == y).mean())))
    within = float(np.mean(np.array(errors) <= 0.03))
    assert within >= 0.9, sorted(errors)


def test_cbpe_on_perfectly_calibrated_scores_is_the_mean_confidence() -> None:
    # NannyML's definition: with calibrated scores, expected accuracy = mean of max(p, 1 - p).
    rng = np.random.default_rng(2)
    p = rng.random(50_000)
    y = (rng.random(50_000) < p).astype(int)
    decided, conf = decision_confidence(p)
    found = estimate_accuracy(conf, decided == y, conf)
    assert abs(found["estimate"] - float(np.maximum(p, 1 - p).mean())) < 0.01
    assert found["calibration_error"] < 0.02


def test_dle_follows_the_error_of_a_regressor_into_a_harder_region() -> None:
    rng = np.random.default_rng(3)

    def frame(n: int, low: float, high: float) -> pd.DataFrame:
        x = rng.uniform(low, high, n)
        y = 2 * x + rng.normal(0, 0.2 + 0.3 * x, n)  # noisier for larger x
        return pd.DataFrame({"x": x, "y": y, "prediction": 2 * x})

    reference, current = frame(5000, 0, 10), frame(3000, 6, 10)
    found = estimate_mae(reference, current, features=["x"], label="y", prediction="prediction")
    realised = float(np.abs(current["y"] - current["prediction"]).mean())
    assert found["estimate"] > found["reference"] * 1.2
    assert abs(found["estimate"] - realised) / realised < 0.1

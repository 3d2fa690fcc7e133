"""The gate's metrics per task, how each reads, and which way is better.

Higher is better for accuracy, AUC and F1; lower for the rest. The policy schema validates
against these names; the gate, the golden evidence and the post-mortem print them.
"""

from __future__ import annotations

TASK_METRICS: dict[str, tuple[str, ...]] = {
    "regression": ("mae", "rmse", "mape"),
    "classification": ("accuracy", "auc", "f1", "log_loss"),
}
HIGHER_IS_BETTER = frozenset({"accuracy", "auc", "f1"})
# How people read each metric's name (the gate's checks, the golden evidence, the post-mortem).
METRIC_LABELS = {
    "mae": "MAE",
    "rmse": "RMSE",
    "mape": "MAPE",
    "accuracy": "accuracy",
    "auc": "AUC",
    "f1": "F1",
    "log_loss": "log-loss",
}

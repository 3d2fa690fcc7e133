"""What the golden dataset cannot see: the share of recent traffic outside its range."""

from __future__ import annotations

import pandas as pd

from firebreak.policy.schema import Policy


def coverage_gap(golden: pd.DataFrame, window: pd.DataFrame, policy: Policy) -> dict[str, float]:
    """Share of recent traffic outside the golden set's range, per numeric input.

    SOP stage: investigate. A golden check passes on inputs it covers; a large gap says the
    golden set could not have caught a failure there (the post-mortem proposes extending it).
    """
    gap = {}
    for column in policy.features.numeric:
        if column in window.columns and column in golden.columns and not window.empty:
            lo, hi = golden[column].min(), golden[column].max()
            gap[column] = round(float(((window[column] < lo) | (window[column] > hi)).mean()), 4)
    return gap

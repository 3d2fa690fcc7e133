"""Labelled traffic held out from a retrain, so the gate judges a retrained candidate on rows it never saw.

A refit learns from the incident's labelled window; scored on those same rows it looks
better than it is (a clone refitted on a window scores it several points above fresh rows),
and the gate would pass a candidate no better than the champion. So the window is split
once, by a hash of each row's ``request_id``: the refit trains on one part, the gate's
recent figures (and its fairness figures) come from the other. The hash gives the same
split in every process and on every re-run, with no state to keep, and a row's side does
not depend on which other rows have labels yet.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

import numpy as np
import pandas as pd

SALT = b"firebreak-held-out"


class Split(NamedTuple):
    train: pd.DataFrame
    held_out: pd.DataFrame


def held_out_mask(request_ids: pd.Series, share: float) -> np.ndarray:
    """True for the rows held out: ``share`` of them on average, the same rows every time."""
    cut = int(share * 2**64)
    points = [
        int.from_bytes(hashlib.blake2b(str(rid).encode(), digest_size=8, key=SALT).digest(), "big")
        for rid in request_ids
    ]
    return np.fromiter((p < cut for p in points), dtype=bool, count=len(points))


def split(labelled: pd.DataFrame, share: float) -> Split:
    """The labelled window's rows to retrain on and the rows held out for the gate."""
    if labelled.empty or "request_id" not in labelled.columns:
        return Split(labelled, labelled.iloc[0:0])
    mask = held_out_mask(labelled["request_id"], share)
    return Split(labelled[~mask], labelled[mask])


def describe(rows: int, share: float) -> str:
    """How the gate's recent rows were chosen, for the gate report and the post-mortem."""
    return f"{rows} labelled rows held out from the retrain ({share:.0%} of the window, by request_id)"

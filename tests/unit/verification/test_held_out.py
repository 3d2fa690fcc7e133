"""The labelled rows held out from a refit: the same rows every time, whatever else has labels."""

from __future__ import annotations

import pandas as pd

from firebreak.verification.held_out import held_out_mask, split


def _window(n: int) -> pd.DataFrame:
    return pd.DataFrame({"request_id": [f"req-{i:05d}" for i in range(n)], "y": [i % 2 for i in range(n)]})


def test_the_split_holds_out_the_share_asked_and_never_shares_a_row() -> None:
    window = _window(10_000)
    parts = split(window, 0.3)
    assert 0.28 < len(parts.held_out) / len(window) < 0.32  # binomial: sd 0.0046
    assert set(parts.train["request_id"]).isdisjoint(parts.held_out["request_id"])
    assert len(parts.train) + len(parts.held_out) == len(window)
    assert 0.48 < len(split(window, 0.5).held_out) / len(window) < 0.52


def test_a_row_stays_on_its_side_when_more_labels_arrive_or_rows_come_in_another_order() -> None:
    """A re-run of the gate after more labels arrived judges no row the refit trained on."""
    early, later = _window(400), _window(1_000).sample(frac=1.0, random_state=1)
    held_early = set(split(early, 0.3).held_out["request_id"])
    held_later = set(split(later, 0.3).held_out["request_id"])
    assert held_early == held_later & set(early["request_id"])


def test_the_mask_depends_on_the_id_only() -> None:
    ids = pd.Series(["a", "b", "c", "a"], index=[10, 11, 12, 13])
    mask = held_out_mask(ids, 0.5)
    assert mask[0] == mask[3] and list(held_out_mask(ids.iloc[::-1], 0.5)) == list(mask[::-1])
    assert not held_out_mask(ids, 0.0).any()


def test_a_window_without_request_ids_holds_nothing_out() -> None:
    parts = split(pd.DataFrame({"y": [0, 1]}), 0.3)
    assert len(parts.train) == 2 and parts.held_out.empty

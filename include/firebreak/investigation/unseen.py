"""The exact test of a split: how many current rows hold values the reference lacks, by chance.

SOP stage: investigate (triage). :func:`firebreak.investigation.data_checks.unknown_values`
judges values outside a reference's set by it: a long tail of rare values is what a second
sample of one world shows, a new code on many rows is not.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["unseen_p_value"]

# Up to this many unknown rows the split test is exact (a convolution); past it, a bound.
_UNSEEN_EXACT_ROWS = 2_000


def unseen_p_value(pooled: np.ndarray, rows: int, *, n_ref: int, n_cur: int) -> tuple[float, float]:
    """How surprising ``rows`` current rows of values the reference lacks are, and how many to expect.

    The test conditions on what both tables hold together (``pooled``: each value's count
    in the two tables) and asks how often a random split of those rows leaves at least
    ``rows`` current rows with values that fell wholly into the current table. The split
    sends each row to the current table with the chance ``f = n_cur / (n_ref + n_cur)``,
    on its own: a value of ``c`` rows then falls wholly there with chance ``f ** c``, each
    value apart from the others, and the count's distribution is their convolution, exact
    up to :data:`_UNSEEN_EXACT_ROWS` (past it, and under 1e-9, a Chernoff bound, never below
    the exact value). Tables of fixed sizes split a little more evenly than that (a value
    falls wholly on one side with a hypergeometric chance under ``f ** c``); the level holds
    on them too (``test_data_checks.py`` measures it over random splits).

    Unlike a rate estimated from the reference alone (Good-Turing's values seen once), the
    test knows the current table's own tail: twelve rows over nine rare states, each of a
    handful of rows in the two tables together, is a split's luck, while twelve rows of one
    new code is not.

    Returns:
        (p-value, expected count of such rows).
    """
    from scipy import special

    sizes, many = np.unique(pooled[pooled > 0], return_counts=True)
    sizes_f = sizes.astype(float)
    log_chance = sizes_f * math.log(n_cur / (n_ref + n_cur))
    chance = np.exp(log_chance)
    expected = float((sizes_f * many * chance).sum())
    if rows <= 0:
        return 1.0, expected
    if rows > _UNSEEN_EXACT_ROWS:
        return _chernoff_tail(sizes_f, many, log_chance, rows), expected
    below = np.zeros(rows)  # P(count = t) for t < rows
    below[0] = 1.0
    for size, count, p in zip(sizes.tolist(), many.tolist(), chance.tolist(), strict=True):
        if p <= 0.0:
            continue
        if size >= rows:  # one such value alone reaches ``rows``: below stays only if none fell
            below *= math.exp(count * math.log1p(-p)) if p < 1.0 else 0.0
            continue
        top = min(count, (rows - 1) // size)
        k = np.arange(top + 1, dtype=float)
        pmf = np.exp(
            special.gammaln(count + 1.0)
            - special.gammaln(k + 1.0)
            - special.gammaln(count - k + 1.0)
            + special.xlogy(k, p)
            + special.xlog1py(count - k, -p)
        )
        spread = np.zeros(top * size + 1)
        spread[::size] = pmf
        below = np.convolve(below, spread)[:rows]
    exact = 1.0 - float(below.sum())
    if exact < 1e-9:  # past double precision's reach of 1 - sum: the bound is the sharper figure
        exact = min(exact, _chernoff_tail(sizes_f, many, log_chance, rows))
    return float(min(1.0, max(0.0, exact))), expected


def _chernoff_tail(sizes: np.ndarray, many: np.ndarray, log_chance: np.ndarray, rows: int) -> float:
    """An upper bound on P(sum of size x Bernoulli(chance) over the values >= rows): min over theta."""
    log_miss = np.log1p(-np.minimum(np.exp(log_chance), 1.0 - 1e-16))
    best = 0.0
    for theta in np.geomspace(1e-4, 20.0, 80) / max(float(sizes.min(initial=1.0)), 1.0):
        log_mgf = float((many * np.logaddexp(log_miss, log_chance + theta * sizes)).sum())
        best = min(best, log_mgf - theta * rows)
    return float(math.exp(best))

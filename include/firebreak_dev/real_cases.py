"""Triage cases built from real tables shipped inside installed packages, truths by construction.

No download at run time: statsmodels' bundled survey and experiment microdata (``fair``:
6,366 survey answers; ``randhie``: 20,190 person-years of the RAND health insurance
experiment; ``anes96``: 944 election-survey respondents) and scikit-learn's bundled
clinical tables (``load_breast_cancer``, ``load_diabetes``). Each table keeps its real
quirks: categories stored as floats, skewed counts, heavy tails, ties, small samples.

A logistic regression trained on the reference half gives the model's scores (the
prediction column) on both halves; its binary target is named per table. Each case is
one change, applied by construction:

* ``none``  — an unchanged random split;
* ``drift`` — covariate shift: the current half resampled with weights rising along one
  feature (the world moved), or a reference that saw only part of a feature's range
  and a current table that covers it all (a new region of the domain); or concept
  drift: labels of the current half follow another relation (a feature's effect
  reversed for the rows above its median), inputs untouched;
* ``skew``  — a pipeline change: a unit change (x100, x1000, /100), a currency factor
  (x7.2, x83), a category recoded as text, a number sent as text, a sentinel (-999 or
  99999) on 3-8% of rows, nulls on 5-20% of rows;
* ``bias``  — labels flipped on one group of a protected attribute (the model's
  decisions now wrong 15-35 points more often for that group only).

Neither this set nor :mod:`firebreak_dev.cases` tunes the other: each is scored as it is.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from firebreak_dev.cases import CLASSES, Case

__all__ = ["TABLES", "real_cases"]


@dataclass(frozen=True)
class _Table:
    name: str
    load: Callable[[], pd.DataFrame]
    target: str  # binary target column added by load
    protected: str  # a group column (the bias cases flip labels on one of its groups)
    categorical: tuple[str, ...] = ()  # numeric codes that are categories
    # The column the protected groups are cut from: a concept change along it would be a
    # change for one group, which is bias, not drift.
    protected_source: str | None = None


def _fair() -> pd.DataFrame:
    import statsmodels.api as sm

    data = sm.datasets.fair.load_pandas().data.copy()
    data["had_affair"] = (data.pop("affairs") > 0).astype("int64")
    data["age_band"] = pd.cut(data["age"], [0, 27, 32, 100], labels=["<=27", "28-32", "33+"]).astype(str)
    return data


def _randhie() -> pd.DataFrame:
    import statsmodels.api as sm

    data = sm.datasets.randhie.load_pandas().data.copy()
    data["visited"] = (data.pop("mdvis") > 2).astype("int64")
    data["health"] = np.select(
        [data["hlthp"] == 1, data["hlthf"] == 1, data["hlthg"] == 1], ["poor", "fair", "good"], "excellent"
    )
    return data.drop(columns=["hlthp", "hlthf", "hlthg"])


def _anes96() -> pd.DataFrame:
    import statsmodels.api as sm

    data = sm.datasets.anes96.load_pandas().data.copy()
    data["voted_dole"] = data.pop("vote").astype("int64")
    data["age_band"] = pd.cut(data["age"], [0, 35, 55, 120], labels=["young", "middle", "older"]).astype(str)
    return data.drop(columns=["logpopul"])


def _breast_cancer() -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True).frame.iloc[:, [0, 1, 2, 4, 5, 8, 10, 20, 21, 24, 30]].copy()
    data.columns = [c.replace(" ", "_") for c in data.columns]
    data["texture_band"] = np.where(data["mean_texture"] > data["mean_texture"].median(), "high", "low")
    return data.rename(columns={"target": "benign"})


def _diabetes() -> pd.DataFrame:
    from sklearn.datasets import load_diabetes

    data = load_diabetes(as_frame=True, scaled=False).frame.copy()
    data["progressed"] = (data.pop("target") > 140).astype("int64")
    data["sex"] = data["sex"].map({1.0: "f", 2.0: "m"})
    return data


TABLES = (
    _Table("fair", _fair, "had_affair", "age_band", ("religious", "occupation", "occupation_husb"), "age"),
    _Table("randhie", _randhie, "visited", "health", ("idp",)),
    _Table("anes96", _anes96, "voted_dole", "age_band", ("PID", "educ", "income", "TVnews"), "age"),
    _Table("breast_cancer", _breast_cancer, "benign", "texture_band", (), "mean_texture"),
    _Table("diabetes", _diabetes, "progressed", "sex"),
)


def _numeric(frame: pd.DataFrame, table: _Table) -> list[str]:
    skip = {table.target, table.protected, *table.categorical}
    return [c for c in frame.columns if c not in skip and pd.api.types.is_numeric_dtype(frame[c])]


def _score(reference: pd.DataFrame, frames: list[pd.DataFrame], table: _Table) -> list[pd.Series]:
    """A logistic regression on the reference's numeric features; its score on each frame."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features = _numeric(reference, table)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(reference[features], reference[table.target])
        return [pd.Series(model.predict_proba(f[features])[:, 1].round(4), index=f.index) for f in frames]


def real_cases(per_class: int = 2, *, seed: int = 0) -> Iterator[Case]:
    """``per_class`` cases of each class (and of each drift kind) for every table, one seed each."""
    for number, table in enumerate(TABLES):
        data = table.load()
        for expected in CLASSES:
            for index in range(per_class):
                rng = np.random.default_rng([seed, number, CLASSES.index(expected), index])
                yield _case(table, data, expected, index, rng)


def _case(table: _Table, data: pd.DataFrame, expected: str, index: int, rng: np.random.Generator) -> Case:
    numeric = _numeric(data, table)
    order = rng.permutation(len(data))
    reference, current = data.iloc[order[: len(data) // 2]].copy(), data.iloc[order[len(data) // 2 :]].copy()
    change = "unchanged random split"
    concept = False
    if expected == "drift":
        kind = ("resample", "new_region", "concept")[index % 3]
        column = str(rng.choice(numeric))
        if kind == "resample":
            z = (data[column] - data[column].mean()) / (data[column].std() or 1.0)
            k = float(rng.uniform(1.0, 2.0)) * rng.choice([-1, 1])
            weights = 1 / (1 + np.exp(-k * z.loc[current.index].to_numpy()))
            picked = rng.choice(len(current), size=len(current), replace=True, p=weights / weights.sum())
            current = current.iloc[picked].copy()
            change = f"covariate shift: current resampled along {column} (k={k:+.1f})"
        elif kind == "new_region":
            cut = float(data[column].quantile(0.7))
            if cut >= data[column].max():  # a few-levelled column (a 1-5 rating): leave its top level out
                cut = float(data[column][data[column] < cut].max())
            inside = data[data[column] <= cut]
            reference = inside.sample(frac=0.5, random_state=int(rng.integers(1 << 31))).copy()
            current = data.drop(index=reference.index).sample(len(reference), random_state=int(rng.integers(1 << 31)))
            change = f"new region: the reference saw {column} <= {cut:g} only; the current covers it all"
        else:
            concept = True
            column = str(rng.choice([c for c in numeric if c != table.protected_source]))
            change = f"concept drift: labels of rows with {column} above its median flipped at 40%"
            above = (current[column] > data[column].median()).to_numpy() & (rng.random(len(current)) < 0.4)
    reference = reference.reset_index(drop=True)
    current = current.reset_index(drop=True)
    ref_score, cur_score = _score(reference, [reference, current], table)
    reference["score"], current["score"] = ref_score.to_numpy(), cur_score.to_numpy()
    if concept:
        current.loc[above, table.target] = 1 - current.loc[above, table.target]
    if expected == "skew":
        change = _skew(rng, table, numeric, current)
    elif expected == "bias":
        groups = sorted(current[table.protected].unique())
        victim = groups[int(rng.integers(len(groups)))]
        rate = float(rng.uniform(0.2, 0.4))
        hit = (current[table.protected] == victim).to_numpy() & (rng.random(len(current)) < rate)
        current.loc[hit, table.target] = 1 - current.loc[hit, table.target]
        change = f"labels flipped on {rate:.0%} of {table.protected}={victim}"
    roles = {"label": table.target, "prediction": "score", "protected": table.protected}
    return Case(f"{table.name}-{expected}-{index}", expected, change, reference, current, roles)


def _skew(rng: np.random.Generator, table: _Table, numeric: list[str], cur: pd.DataFrame) -> str:
    op = ("unit", "currency", "recoded", "text", "sentinel", "nulls")[int(rng.integers(6))]
    column = str(rng.choice(numeric))
    if op == "unit":
        factor = float(rng.choice([100.0, 1000.0, 0.01]))
        cur[column] = cur[column].astype(float) * factor
        return f"unit x{factor:g} on {column}"
    if op == "currency":
        factor = float(rng.choice([7.2, 83.0]))
        cur[column] = (cur[column].astype(float) * factor).round(2)
        return f"currency x{factor:g} on {column}"
    if op == "recoded" and table.categorical:
        code = str(rng.choice(table.categorical))
        cur[code] = cur[code].map(lambda v: f"code_{v:g}" if pd.notna(v) else v)
        return f"{code} recoded as text labels"
    if op in ("recoded", "text"):
        cur[column] = cur[column].astype(str)
        return f"{column} sent as text"
    if op == "sentinel":
        share = float(rng.uniform(0.03, 0.08))
        sentinel = float(rng.choice([-999.0, 99999.0]))
        values = cur[column].to_numpy(dtype=float).copy()
        values[rng.random(len(cur)) < share] = sentinel
        cur[column] = values
        return f"sentinel {sentinel:g} on {share:.0%} of {column}"
    share = float(rng.uniform(0.05, 0.2))
    values = cur[column].to_numpy(dtype=float).copy()
    values[rng.random(len(cur)) < share] = np.nan
    cur[column] = values
    return f"{share:.0%} nulls in {column}"

"""Generated triage cases: a reference table and a current one with a known failure class.

Used by the triage accuracy test and ``benchmarks/bench_triage.py``. Each case draws its
own schema (3-10 columns with random names; float, integer and categorical columns of
varied shapes and ranges), sizes and seed, then applies one change:

* ``none``  — the current table is a fresh sample of the same distributions.
* ``drift`` — the world moved inside the columns' plausible ranges: a mean shift of
  0.15-1.5 standard deviations on unbounded columns, a reweighting towards one end of a
  column's range, a wider or narrower spread, or category shares moving; or, in about a
  quarter of the drift cases that can carry labels, **concept drift**: the inputs are a
  fresh sample, the labels follow another threshold, and the model's accuracy falls.
* ``skew``  — the upstream pipeline changed: units (x100, x1000, /100), a currency
  conversion (x0.79 ... x150), a type change, new category codes, a column gone or
  renamed, nulls appearing, sentinel values.
* ``bias``  — a protected group gets materially worse decisions (selection ratio 0.45-0.75
  of the best group's, or 12-30 points more errors), features untouched.

The hard cases are kept in on purpose: small shifts (0.15 sd), small currency factors,
units on columns spanning four orders of magnitude, 2% nulls, 2% new codes, shifts of a
single categorical's shares.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["CLASSES", "Case", "generate_cases"]

CLASSES = ("none", "drift", "skew", "bias")
_WORDS = [
    "amount", "price", "cost", "age", "tenure", "visits", "score", "balance", "income", "weight",
    "height", "duration", "count", "rate", "distance", "temperature", "clicks", "sessions", "items",
    "region", "channel", "plan", "device", "country", "tier", "colour", "brand", "status", "source",
]  # fmt: skip
_CURRENCY = [0.79, 0.92, 1.36, 7.2, 83.0, 150.0]


@dataclass
class Case:
    """One generated comparison and the class the generator put into it."""

    name: str
    expected: str  # none | drift | skew | bias
    change: str  # what was done, e.g. "unit x100 on price_3"
    reference: pd.DataFrame
    current: pd.DataFrame
    roles: dict[str, str] = field(default_factory=dict)  # label / prediction / protected column names


@dataclass
class _Column:
    name: str
    kind: str  # float | int | cat
    shape: str  # normal | lognormal | gamma | uniform | poisson | choice
    draw: Callable[[np.random.Generator, int], np.ndarray]
    unbounded: bool = False  # a mean shift either way stays plausible


def _make_column(rng: np.random.Generator, name: str) -> _Column:
    kind = rng.choice(["float", "float", "int", "cat"])
    if kind == "cat":
        levels = [
            f"{name[:3]}_{c}" for c in rng.choice(list(string.ascii_lowercase), rng.integers(3, 9), replace=False)
        ]
        probs = rng.dirichlet(np.full(len(levels), 2.0))
        return _Column(name, "cat", "choice", lambda r, n: r.choice(levels, size=n, p=probs))
    if kind == "int":
        if rng.random() < 0.5:
            lam = float(rng.uniform(2, 60))
            return _Column(name, "int", "poisson", lambda r, n: r.poisson(lam, n).astype("int64"))
        low = int(rng.integers(0, 1000))
        high = low + int(rng.integers(10, 5000))
        return _Column(name, "int", "uniform", lambda r, n: r.integers(low, high, n).astype("int64"))
    shape = str(rng.choice(["normal", "lognormal", "gamma", "uniform"]))
    scale = float(10 ** rng.uniform(-1, 4))
    if shape == "normal":
        mean = scale * rng.uniform(-1, 3)
        return _Column(name, "float", shape, lambda r, n: r.normal(mean, scale, n).round(3), unbounded=True)
    if shape == "lognormal":
        sigma = float(rng.uniform(0.3, 1.6))  # up to four orders of magnitude between min and max
        return _Column(name, "float", shape, lambda r, n: (scale * r.lognormal(0, sigma, n)).round(3))
    if shape == "gamma":
        k = float(rng.uniform(1, 8))
        return _Column(name, "float", shape, lambda r, n: (scale * r.gamma(k, 1, n)).round(3))
    low_f = scale * rng.uniform(0, 5)
    return _Column(name, "float", shape, lambda r, n: r.uniform(low_f, low_f + scale, n).round(3))


def _frame(columns: list[_Column], rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame({c.name: c.draw(rng, n) for c in columns})


def _roles(frame: pd.DataFrame, rng: np.random.Generator, spec: dict[str, Any]) -> pd.DataFrame:
    """Protected group, a 0/1 decision from a numeric feature, a label agreeing 90% of the time."""
    out = frame.copy()
    n = len(out)
    out[spec["protected"]] = rng.choice(spec["groups"], size=n, p=spec["group_p"])
    driver = out[spec["driver"]].to_numpy(dtype=float)
    z = (driver - spec["driver_mean"]) / spec["driver_std"]
    decision = (z + rng.normal(0, 0.7, n) > spec["cut"]).astype("int64")
    out[spec["prediction"]] = decision
    out[spec["label"]] = np.where(rng.random(n) < 0.1, 1 - decision, decision).astype("int64")
    return out


def generate_cases(count: int, *, seed: int = 0) -> Iterator[Case]:
    """``count`` cases, classes in rotation (none, drift, skew, bias), each with its own seed."""
    for index in range(count):
        expected = CLASSES[index % len(CLASSES)]
        yield _case(index, expected, np.random.default_rng([seed, index]))


def _case(index: int, expected: str, rng: np.random.Generator) -> Case:
    width = int(rng.integers(3, 11))
    names = [f"{w}_{i}" for i, w in enumerate(rng.choice(_WORDS, width, replace=False))]
    columns = [_make_column(rng, n) for n in names]
    while expected == "bias" and all(c.kind == "cat" for c in columns):
        columns[-1] = _make_column(rng, names[-1])  # decisions need a numeric driver
    n_ref, n_cur = int(rng.integers(1200, 5001)), int(rng.integers(800, 3001))
    reference = _frame(columns, rng, n_ref)
    current = _frame(columns, rng, n_cur)
    roles: dict[str, str] = {}
    numeric = [c for c in columns if c.kind != "cat"]
    concept = expected == "drift" and bool(numeric) and rng.random() < 0.25
    if (expected == "bias" or concept or rng.random() < 0.3) and numeric:
        driver = numeric[int(rng.integers(len(numeric)))].name
        groups = ["g_a", "g_b", "g_c"][: int(rng.integers(2, 4))]
        spec = {
            "protected": str(rng.choice(["gender", "age_band", "ethnicity", "segment_group"])),
            "prediction": str(rng.choice(["approved", "decision", "predicted", "flagged"])),
            "label": str(rng.choice(["outcome", "label", "defaulted", "target"])),
            "groups": groups,
            "group_p": rng.dirichlet(np.full(len(groups), 8.0)),
            "driver": driver,
            "driver_mean": float(reference[driver].mean()),
            "driver_std": float(reference[driver].std()) or 1.0,
            "cut": float(rng.uniform(-0.8, 0.8)),
        }
        reference, current = _roles(reference, rng, spec), _roles(current, rng, spec)
        roles = {k: str(spec[k]) for k in ("protected", "prediction", "label")}
    change = "fresh sample of the same distributions"
    if concept:
        change = _apply_concept(rng, roles, spec, current)
    elif expected == "drift":
        change = _apply_drift(rng, columns, reference, current)
    elif expected == "skew":
        change = _apply_skew(rng, columns, current)
    elif expected == "bias":
        change = _apply_bias(rng, roles, current)
    return Case(f"case-{index:04d}", expected, change, reference, current, roles)


def _apply_drift(rng: np.random.Generator, columns: list[_Column], reference: pd.DataFrame, cur: pd.DataFrame) -> str:
    chosen = rng.choice(len(columns), size=int(rng.integers(1, min(3, len(columns)) + 1)), replace=False)
    done = []
    for i in chosen:
        col = columns[int(i)]
        name = col.name
        if col.kind == "cat":
            shares = cur[name].value_counts(normalize=True)
            move = float(rng.uniform(0.1, 0.4))
            source, target = shares.index[0], shares.index[-1]
            flip = (cur[name] == source) & (rng.random(len(cur)) < move / max(shares.iloc[0], 1e-9))
            cur.loc[flip, name] = target
            done.append(f"{move:.0%} of shares moved {source}->{target} in {name}")
            continue
        sd = float(reference[name].std()) or 1.0
        # A bounded column (uniform: ids, day numbers) has no room to shift: its world moves by
        # reweighting inside its range.
        op = str(rng.choice(["reweight", "spread"] if col.shape == "uniform" else ["shift", "reweight", "spread"]))
        values = cur[name].to_numpy(dtype=float)
        if op == "shift":
            delta = float(rng.uniform(0.15, 1.5)) * (rng.choice([-1, 1]) if col.unbounded else 1)
            values = values + delta * sd
            label = f"mean shift {delta:+.2f} sd in {name}"
        elif op == "spread":
            factor = float(rng.uniform(1.3, 1.8) if col.unbounded else rng.uniform(0.4, 0.7))
            median = float(np.median(values))
            values = median + (values - median) * factor
            label = f"spread x{factor:.2f} in {name}"
        else:
            # More of one end of the range: the same support, other shares.
            pool = col.draw(rng, 4 * len(cur)).astype(float)
            z = (pool - pool.mean()) / (pool.std() or 1.0)
            k = float(rng.uniform(0.7, 2.0)) * rng.choice([-1, 1])
            keep = rng.random(len(pool)) < 1 / (1 + np.exp(-k * z))
            values = rng.choice(pool[keep], size=len(cur))
            label = f"reweighted towards the {'high' if k > 0 else 'low'} end (k={k:.1f}) in {name}"
        if col.kind == "int":
            values = np.round(values)
            if col.shape == "poisson":
                values = np.maximum(values, 0)
            cur[name] = values.astype("int64")
        else:
            cur[name] = values.round(3)
        done.append(label)
    return "; ".join(done)


def _apply_concept(rng: np.random.Generator, roles: dict[str, str], spec: dict[str, Any], cur: pd.DataFrame) -> str:
    """Labels follow another threshold on the same driver; inputs and decisions untouched."""
    z = (cur[spec["driver"]].to_numpy(dtype=float) - spec["driver_mean"]) / spec["driver_std"]
    delta = float(rng.uniform(0.4, 1.2)) * rng.choice([-1, 1])
    truth = (z + rng.normal(0, 0.7, len(cur)) > spec["cut"] + delta).astype("int64")
    cur[roles["label"]] = np.where(rng.random(len(cur)) < 0.1, 1 - truth, truth).astype("int64")
    return f"concept drift: labels now follow {spec['driver']} past a threshold moved {delta:+.2f} sd"


def _apply_skew(rng: np.random.Generator, columns: list[_Column], cur: pd.DataFrame) -> str:
    numeric = [c for c in columns if c.kind != "cat"]
    cats = [c for c in columns if c.kind == "cat"]
    options = ["column_gone", "nulls", "type"]
    if numeric:
        options += ["unit", "unit", "currency", "sentinel"]
    if cats:
        options += ["new_codes"]
    op = str(rng.choice(options))
    col = (numeric or columns)[int(rng.integers(len(numeric or columns)))]
    if op == "new_codes":
        col = cats[int(rng.integers(len(cats)))]
    name = col.name
    n = len(cur)
    if op == "unit":
        factor = float(rng.choice([100.0, 1000.0, 0.01]))
        cur[name] = cur[name].astype(float) * factor
        if col.kind == "int" and factor > 1:
            cur[name] = cur[name].round().astype("int64")
        return f"unit x{factor:g} on {name} ({col.shape})"
    if op == "currency":
        factor = float(rng.choice(_CURRENCY))
        cur[name] = (cur[name].astype(float) * factor).round(2)
        return f"currency x{factor:g} on {name} ({col.shape})"
    if op == "sentinel":
        share = float(rng.uniform(0.01, 0.1))
        sentinel = float(rng.choice([-1.0, -999.0, 999999.0]))
        hit = rng.random(n) < share
        values = cur[name].to_numpy(dtype=float)
        values[hit] = sentinel
        cur[name] = values.astype(cur[name].dtype)
        return f"sentinel {sentinel:g} on {share:.1%} of {name}"
    if op == "nulls":
        share = float(rng.choice([0.02, rng.uniform(0.05, 0.5)]))
        values = cur[name].astype(object if col.kind == "cat" else float)
        values[rng.random(n) < share] = None if col.kind == "cat" else np.nan
        cur[name] = values
        return f"{share:.0%} nulls in {name}"
    if op == "new_codes":
        share = float(rng.choice([0.02, rng.uniform(0.1, 1.0)]))
        hit = rng.random(n) < share
        cur.loc[hit, name] = cur.loc[hit, name].astype(str).str.upper()
        return f"{share:.0%} of {name} codes renamed (upper case)"
    if op == "type":
        if col.kind == "cat":
            codes = {v: i for i, v in enumerate(sorted(cur[name].unique()))}
            cur[name] = cur[name].map(codes).astype("int64")
            return f"{name} sent as integer codes"
        if col.kind == "int" and rng.random() < 0.5:
            cur[name] = cur[name].astype(float)
            return f"{name} sent as float"
        cur[name] = cur[name].astype(str)
        return f"{name} sent as text"
    if rng.random() < 0.5:
        cur.drop(columns=[name], inplace=True)
        return f"{name} dropped"
    cur.rename(columns={name: name.upper()}, inplace=True)
    return f"{name} renamed to {name.upper()}"


def _apply_bias(rng: np.random.Generator, roles: dict[str, str], cur: pd.DataFrame) -> str:
    protected, prediction = roles["protected"], roles["prediction"]
    groups = sorted(cur[protected].unique())
    victim = groups[int(rng.integers(len(groups)))]
    in_group = (cur[protected] == victim).to_numpy()
    decision = cur[prediction].to_numpy().copy()
    if rng.random() < 0.5:
        ratio = float(rng.uniform(0.45, 0.75))
        positives = in_group & (decision == 1)
        drop = positives & (rng.random(len(cur)) < 1 - ratio)
        decision[drop] = 0
        cur[prediction] = decision
        return f"{protected}={victim}: positives kept at {ratio:.2f}"
    gap = float(rng.uniform(0.12, 0.3))
    # A flip turns a right decision wrong and a wrong one right: the error rate rises by
    # 0.8 x the flip rate when 10% were wrong before.
    flip = in_group & (rng.random(len(cur)) < gap / 0.8)
    decision[flip] = 1 - decision[flip]
    cur[prediction] = decision
    return f"{protected}={victim}: error rate up {gap:.0%}"

"""Triage without labels on every table statsmodels and scikit-learn ship: false alarms and unit changes.

Each table of at least 60 rows (24 of statsmodels' datasets, six of scikit-learn's) is split
at random into a reference and a current half. Unchanged, the verdict must be ``none``
(``--splits`` random splits per table). Then one float column with more than ten values,
chosen at random, is changed in the current half four ways, each a pipeline failure whose
verdict must be ``skew`` naming that column: multiplied by 100, divided by 1000, 30% of its
values missing, 20% of them set to the sentinel -999. Prints the counts and every wrong
verdict. The tables are the packages' own (no download); no rule was tuned on their cases.

Run: `.venv/bin/python benchmarks/bench_triage_tables.py [--splits N]`; prints Markdown.
"""

from __future__ import annotations

import argparse
import importlib
import os
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

STATSMODELS = (
    "anes96 cancer ccard china_smoking co2 committee copper cpunish danish_data elnino engel fair grunfeld heart "
    "interest_inflation longley macrodata modechoice nile randhie scotland spector stackloss star98 statecrime "
    "strikes sunspots"
).split()
SKLEARN = ("load_iris", "load_wine", "load_digits", "load_linnerud", "load_breast_cancer", "load_diabetes")
MIN_ROWS = 60


def tables() -> dict[str, pd.DataFrame]:
    found = {}
    for name in STATSMODELS:
        try:
            found[f"statsmodels {name}"] = importlib.import_module(f"statsmodels.datasets.{name}").load_pandas().data
        except Exception:  # noqa: BLE001 - a dataset a statsmodels release lacks
            continue
    from sklearn import datasets

    for name in SKLEARN:
        found[f"sklearn {name}"] = getattr(datasets, name)(as_frame=True).frame
    return {k: t.reset_index(drop=True) for k, t in found.items() if len(t) >= MIN_ROWS}


def _changes() -> dict[str, Callable[[pd.DataFrame, str], pd.DataFrame]]:
    def missing(frame: pd.DataFrame, column: str) -> pd.DataFrame:
        frame.loc[frame.sample(frac=0.3, random_state=1).index, column] = np.nan
        return frame

    def sentinel(frame: pd.DataFrame, column: str) -> pd.DataFrame:
        frame.loc[frame.sample(frac=0.2, random_state=1).index, column] = -999.0
        return frame

    return {
        "x100": lambda f, c: f.assign(**{c: f[c] * 100}),
        "/1000": lambda f, c: f.assign(**{c: f[c] / 1000}),
        "30% missing": missing,
        "-999 on 20%": sentinel,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--splits", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    from firebreak.errors import FirebreakError
    from firebreak.investigation.diagnosis import triage_tables

    def verdict(reference: pd.DataFrame, current: pd.DataFrame) -> tuple[str, list[str], str]:
        try:
            found = triage_tables(reference, current)[0]
        except FirebreakError as exc:
            return "error", [], str(exc)[:160]
        report = found.to_dict()
        return str(report["failure_class"]), list(report["columns"]), str(report["root_cause"])[:160]

    wrong: list[str] = []
    unchanged = alarms = changed = missed = 0
    found_tables = tables()
    for name, table in found_tables.items():
        for seed in range(args.splits):
            order = np.random.default_rng(seed).permutation(len(table))
            reference, current = table.iloc[order[: len(table) // 2]], table.iloc[order[len(table) // 2 :]]
            unchanged += 1
            kind, columns, why = verdict(reference, current)
            if kind != "none":
                alarms += 1
                wrong.append(f"{name}, unchanged split {seed}: {kind} {columns[:3]}: {why}")
        rng = np.random.default_rng(0)
        order = rng.permutation(len(table))
        reference, current = table.iloc[order[: len(table) // 2]], table.iloc[order[len(table) // 2 :]]
        floats = [c for c in table.columns if pd.api.types.is_float_dtype(table[c]) and table[c].nunique() > 10]
        if not floats:
            continue
        column = floats[int(rng.integers(len(floats)))]
        for change, apply in _changes().items():
            changed += 1
            kind, columns, why = verdict(reference, apply(current.copy(), column))
            if kind != "skew" or column not in columns:
                missed += 1
                wrong.append(f"{name} ({len(table)} rows), {column} {change}: {kind} {columns[:3]}: {why}")
    print(f"## Triage on the packages' own tables (load average {os.getloadavg()[0]:.1f})\n")
    print(f"{len(found_tables)} tables of at least {MIN_ROWS} rows\n")
    print("| cases | wrong |\n|---|---|")
    print(f"| unchanged random splits (must be none) | {alarms} false alarms in {unchanged} |")
    print(f"| a column rescaled, emptied or given a sentinel (must be skew on it) | {missed} of {changed} |\n")
    for line in wrong:
        print(f"- {line}")


if __name__ == "__main__":
    main()

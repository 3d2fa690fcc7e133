"""Triage cases on tables shaped like the exports teams bring: census, housing and loan files.

Generated here (no download), but with the shapes of well-known public files rather than
the project's own: a census extract's "?" for unknown, top-coded gains of 99999, labels
written ``>50K`` / ``<=50K``, forty countries on a long tail; a housing file's caps (house
values at 500,001, incomes at 15.0001, ages at 52) and a category held by five rows in
20,000; a loan book's rates and utilisation written ``13.56%``, terms written
`` 36 months``, issue months ``Dec-2015``, fifty states on a long tail, postcodes ``123xx``,
an income now and then fifty times the rest, amounts written ``$12,000.00``. Models'
scores come with the census and loan tables (a logistic score with noise), a regressor's
estimate of the house value with the housing file.

Each case is one change, by construction, as in :mod:`firebreak_dev.real_cases`:

* ``none``  — an unchanged random split (1,500-40,000 rows), and a loan book split by
  issue month (the next months' loans, one world);
* ``drift`` — the current table resampled with weights rising along one column, a new
  region (the reference saw 70% of a column's range), or concept drift (labels flipped on
  40% of the rows above a column's median);
* ``skew``  — units (cents, thousands, monthly for yearly; the house values the model is
  judged on), percent sent as a fraction, amounts in another currency, codes recoded or
  lower-cased, numbers sent as words, a default or sentinel on some rows, "?" sent as
  empty, a column emptied;
* ``bias``  — labels flipped on 25% of one group of a protected column.

Neither this set nor the others tunes a rule: each is scored as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd

from firebreak_dev.cases import Case

__all__ = ["TABLES", "export_cases"]


def _shares(*weights: float) -> np.ndarray:
    p = np.array(weights, dtype=float)
    return p / p.sum()


def census(n: int, rng: np.random.Generator) -> tuple[pd.DataFrame, dict[str, str]]:
    age = np.clip(rng.gamma(6, 6.5, n) + 17, 17, 90).astype(int)
    workclass = rng.choice(
        ["Private", "Self-emp-not-inc", "Local-gov", "?", "State-gov", "Self-emp-inc", "Federal-gov", "Without-pay"],
        n,
        p=_shares(0.69, 0.08, 0.064, 0.056, 0.04, 0.034, 0.029, 0.001),
    )
    levels = "Preschool 1st-4th 5th-6th 7th-8th 9th 10th 11th 12th HS-grad Some-college Assoc-voc Assoc-acdm "
    levels += "Bachelors Masters Prof-school Doctorate"
    shares = _shares(
        0.002, 0.005, 0.01, 0.02, 0.016, 0.029, 0.036, 0.013, 0.32, 0.22, 0.042, 0.033, 0.164, 0.053, 0.018, 0.013
    )
    years = rng.choice(np.arange(1, 17), n, p=shares)
    countries = ["United-States", "Mexico", "?"] + [f"Country-{i}" for i in range(38)]
    country = rng.choice(countries, n, p=_shares(0.895, 0.02, 0.018, *np.geomspace(0.006, 0.00003, 38)))
    hours = np.where(rng.random(n) < 0.47, 40, np.clip(rng.normal(40, 12, n), 1, 99)).astype(int)
    gain = np.where(rng.random(n) < 0.917, 0, np.round(rng.lognormal(8.5, 1.0, n)))
    gain[rng.random(n) < 0.005] = 99999  # top-coded
    sex = rng.choice(["Male", "Female"], n, p=[0.67, 0.33])
    logit = -8.5 + 0.04 * age + 0.35 * years + 0.0003 * np.minimum(gain, 20000) + 0.03 * hours + 0.7 * (sex == "Male")
    label = rng.random(n) < 1 / (1 + np.exp(-logit))
    frame = pd.DataFrame(
        {
            "age": age,
            "workclass": workclass,
            "fnlwgt": np.round(rng.lognormal(12.0, 0.5, n)).astype(int),
            "education": np.array(levels.split())[years - 1],
            "education-num": years,
            "race": rng.choice(
                ["White", "Black", "Asian-Pac-Islander", "Amer-Indian-Eskimo", "Other"],
                n,
                p=_shares(854, 96, 31, 10, 9),
            ),
            "sex": sex,
            "capital-gain": gain.astype(int),
            "hours-per-week": hours,
            "native-country": country,
            "income": np.where(label, ">50K", "<=50K"),
            "score": (1 / (1 + np.exp(-(logit + rng.normal(0, 0.6, n))))).round(4),
        }
    )
    return frame, {"label": "income", "prediction": "score", "protected": "sex", "positive_class": ">50K"}


def housing(n: int, rng: np.random.Generator) -> tuple[pd.DataFrame, dict[str, str]]:
    rooms = np.round(rng.lognormal(7.8, 0.75, n)).astype(int)
    bedrooms = np.round(rooms * rng.normal(0.2, 0.03, n)).astype(float)
    bedrooms[rng.random(n) < 0.01] = np.nan
    income = np.minimum(rng.lognormal(1.28, 0.47, n), 15.0001).round(4)
    frame = pd.DataFrame(
        {
            "longitude": rng.normal(-119.5, 2.0, n).round(2),
            "latitude": (35.6 + rng.normal(0, 2.1, n)).round(2),
            "housing_median_age": np.minimum(rng.integers(1, 60, n), 52),
            "total_rooms": rooms,
            "total_bedrooms": bedrooms,
            "population": np.round(rooms * rng.lognormal(0.1, 0.4, n)).astype(int),
            "median_income": income,
            "median_house_value": np.minimum(np.round(income * 40000 + rng.normal(30000, 60000, n), -2), 500001).clip(
                14999
            ),
            "ocean_proximity": rng.choice(
                ["<1H OCEAN", "INLAND", "NEAR OCEAN", "NEAR BAY", "ISLAND"], n, p=_shares(4426, 3174, 1288, 1109, 3)
            ),
            "predicted_value": np.round(income * 38000 + 35000 + rng.normal(0, 20000, n), -2),
        }
    )
    return frame, {"label": "median_house_value", "prediction": "predicted_value"}


_STATES = [f"S{i:02d}" for i in range(51)]


def loans(n: int, rng: np.random.Generator) -> tuple[pd.DataFrame, dict[str, str]]:
    grade = rng.choice(7, n, p=[0.17, 0.29, 0.28, 0.15, 0.07, 0.03, 0.01])
    rate = (5.3 + grade * 4.2 + rng.normal(0, 1.2, n)).clip(5.3, 30.99).round(2)
    term = rng.choice([" 36 months", " 60 months"], n, p=[0.72, 0.28])
    income = np.round(rng.lognormal(11.1, 0.55, n), -2)
    income[rng.random(n) < 0.0005] *= 50
    dti = rng.gamma(4, 4.5, n).round(2)
    util = rng.uniform(0, 100, n).round(1)
    logit = (
        -3.2 + 0.25 * grade + 0.6 * (term == " 60 months") + 0.03 * (dti.clip(0, 60) - 18) - 0.000004 * (income - 70000)
    )
    label = rng.random(n) < 1 / (1 + np.exp(-logit))
    months = pd.date_range("2015-01-01", periods=36, freq="MS").strftime("%b-%Y")
    frame = pd.DataFrame(
        {
            "loan_amnt": [f"${a:,.2f}" for a in (np.round(rng.lognormal(9.3, 0.6, n) / 25) * 25).clip(1000, 40000)],
            "term": term,
            "int_rate": [f"{r:.2f}%" for r in rate],
            "grade": np.array(list("ABCDEFG"))[grade],
            "emp_length": rng.choice(
                ["10+ years", "2 years", "< 1 year", "3 years", "1 year", "5 years", "4 years", "n/a", "6 years"],
                n,
                p=_shares(0.33, 0.09, 0.08, 0.08, 0.065, 0.062, 0.06, 0.058, 0.045),
            ),
            "home_ownership": rng.choice(["MORTGAGE", "RENT", "OWN", "ANY"], n, p=_shares(0.49, 0.39, 0.1185, 0.001)),
            "annual_inc": income,
            "issue_d": np.array(months)[np.sort(rng.integers(0, 36, n))],  # in issue order
            "addr_state": rng.choice(_STATES, n, p=_shares(*np.geomspace(0.14, 0.00005, 51))),
            "zip_code": np.char.add(rng.integers(10, 999, n).astype(str), "xx"),
            "dti": dti,
            "revol_util": [f"{u}%" for u in util],
            "charged_off": label.astype(int),
            "score": (1 / (1 + np.exp(-(logit + rng.normal(0, 0.5, n))))).round(4),
        }
    )
    return frame, {"label": "charged_off", "prediction": "score", "protected": "home_ownership"}


TABLES: dict[str, Callable[[int, np.random.Generator], tuple[pd.DataFrame, dict[str, str]]]] = {
    "census": census,
    "housing": housing,
    "loans": loans,
}

Change = Callable[[pd.DataFrame, np.random.Generator], pd.DataFrame]


def _on(share: float, column: str, value: object) -> Change:
    return lambda c, rng: c.assign(**{column: c[column].where(rng.random(len(c)) > share, value)})


_SKEW: dict[str, list[tuple[str, Change]]] = {
    "census": [
        ("capital-gain in cents", lambda c, rng: c.assign(**{"capital-gain": c["capital-gain"] * 100})),
        (
            "native-country United-States sent as USA",
            lambda c, rng: c.assign(**{"native-country": c["native-country"].replace({"United-States": "USA"})}),
        ),
        ("hours-per-week -1 on 10% of rows", _on(0.1, "hours-per-week", -1)),
        ("workclass '?' sent as empty", lambda c, rng: c.assign(workclass=c["workclass"].replace("?", np.nan))),
        ("education-num sent as the words", lambda c, rng: c.assign(**{"education-num": c["education"]})),
    ],
    "housing": [
        ("median_income in dollars", lambda c, rng: c.assign(median_income=c["median_income"] * 10000)),
        ("median_house_value in thousands", lambda c, rng: c.assign(median_house_value=c["median_house_value"] / 1000)),
        ("ocean_proximity lower-cased", lambda c, rng: c.assign(ocean_proximity=c["ocean_proximity"].str.lower())),
        ("total_bedrooms empty on 15% of rows", _on(0.15, "total_bedrooms", np.nan)),
        ("total_rooms 0 filled in on 8% of rows", _on(0.08, "total_rooms", 0)),
    ],
    "loans": [
        (
            "int_rate sent as a fraction",
            lambda c, rng: c.assign(int_rate=(c["int_rate"].str.rstrip("%").astype(float) / 100).round(4)),
        ),
        ("annual_inc monthly", lambda c, rng: c.assign(annual_inc=(c["annual_inc"] / 12).round(2))),
        (
            "emp_length 'n/a' sent as empty",
            lambda c, rng: c.assign(emp_length=c["emp_length"].replace({"n/a": np.nan})),
        ),
        (
            "grade sent as numbers",
            lambda c, rng: c.assign(grade=c["grade"].map({g: i for i, g in enumerate("ABCDEFG")})),
        ),
        ("annual_inc -1 on 5% of rows", _on(0.05, "annual_inc", -1.0)),
        ("loan_amnt in euros", lambda c, rng: c.assign(loan_amnt=[_euros(a) for a in c["loan_amnt"]])),
    ],
}
# Columns the drift cases move along: (resampled along, new region of, concept flipped above the median of).
_DRIFT = {
    "census": ("age", "age", "education-num"),
    "housing": ("median_income", "latitude", None),
    "loans": ("dti", "annual_inc", "dti"),
}


def _euros(dollars: str) -> str:
    return f"€{float(dollars.lstrip('$').replace(',', '')) * 0.92:,.2f}"


def _flip(frame: pd.DataFrame, label: str, rows: np.ndarray) -> pd.DataFrame:
    values = frame[label].copy()
    if values.dtype == object:
        first, second = sorted(values.dropna().unique())[:2]
        values[rows] = np.where(values[rows] == first, second, first)
    else:
        values[rows] = 1 - values[rows]
    return frame.assign(**{label: values})


def export_cases(seed: int = 20261203, sizes: tuple[int, ...] = (1_500, 6_000, 40_000)) -> Iterator[Case]:
    """Every case for every table, at each of ``sizes`` rows (split in halves)."""
    for name, make in TABLES.items():
        for n in sizes:
            rng = np.random.default_rng([seed, n, len(name)])
            frame, roles = make(n, rng)
            order = rng.permutation(n)
            reference = frame.iloc[order[: n // 2]].reset_index(drop=True)
            current = frame.iloc[order[n // 2 :]].reset_index(drop=True)
            tag = f"{name}-{n}"
            yield Case(f"{tag}-none", "none", "unchanged random split", reference, current, roles)
            if name == "loans":  # loans come in issue order: the next months' loans
                earlier, later = (
                    frame.iloc[: n // 2].reset_index(drop=True),
                    frame.iloc[n // 2 :].reset_index(drop=True),
                )
                yield Case(f"{tag}-by-month", "none", "split by issue month", earlier, later, roles)
            for change, apply in _SKEW[name]:
                yield Case(f"{tag}-skew", "skew", change, reference, apply(current, rng), roles)
            along, region, concept = _DRIFT[name]
            z = (current[along] - current[along].mean()) / current[along].std()
            picked = rng.choice(n - n // 2, n - n // 2, replace=True, p=(w := 1 / (1 + np.exp(-1.5 * z))) / w.sum())
            yield Case(
                f"{tag}-drift",
                "drift",
                f"resampled along {along}",
                reference,
                current.iloc[picked].reset_index(drop=True),
                roles,
            )
            inside = frame[frame[region] <= frame[region].quantile(0.7)]
            narrow = inside.sample(frac=0.5, random_state=int(rng.integers(1 << 31)))
            wide = frame.drop(index=narrow.index).sample(len(narrow), random_state=int(rng.integers(1 << 31)))
            yield Case(
                f"{tag}-drift",
                "drift",
                f"new region of {region}",
                narrow.reset_index(drop=True),
                wide.reset_index(drop=True),
                roles,
            )
            if concept is not None:
                above = (current[concept] > current[concept].median()).to_numpy() & (rng.random(len(current)) < 0.4)
                yield Case(
                    f"{tag}-drift",
                    "drift",
                    f"concept: labels flipped above the median of {concept}",
                    reference,
                    _flip(current, roles["label"], above),
                    roles,
                )
            if "protected" in roles:
                victim = current[roles["protected"]].value_counts().index[1]
                hit = (current[roles["protected"]] == victim).to_numpy() & (rng.random(len(current)) < 0.25)
                yield Case(
                    f"{tag}-bias",
                    "bias",
                    f"labels flipped on 25% of {roles['protected']}={victim}",
                    reference,
                    _flip(current, roles["label"], hit),
                    roles,
                )

"""How two tables are read into one form before they are compared.

SOP stage: investigate (triage). Column names as text, labels and answers in one vocabulary
(class names read through the positive class), numbers written with a unit as numbers:
each as the reference writes them, so a change of form between the tables stays visible to
the checks that judge it (:mod:`firebreak.investigation.data_checks`).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pandas as pd

from firebreak.contracts.validation import bounded_sample
from firebreak.errors import FirebreakError
from firebreak.investigation.column_kinds import currencies, read_like, unit_numbers

__all__ = ["named_columns", "one_vocabulary", "read_unit_numbers", "text_as_arrow"]


def named_columns(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """``frame`` with its column names as text (Parquet and pandas allow numbers, tuples, None).

    Raises:
        FirebreakError: If two columns share a name (as given, or once written as text).
    """
    names = [str(c) for c in frame.columns]
    twice = sorted(n for n, k in Counter(names).items() if k > 1)
    if twice:
        shown = ", ".join(repr(n) for n in twice[:5])
        raise FirebreakError(f"the {table} table names {len(twice)} column(s) twice ({shown}): name each column once")
    if all(isinstance(c, str) for c in frame.columns) and not isinstance(frame.columns, pd.MultiIndex):
        return frame
    return frame.set_axis(pd.Index(names, dtype=object), axis=1)


def text_as_arrow(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``frame`` with each of ``columns`` that holds only text (and missing values) as Arrow text.

    Once, before every check reads the tables: the contract's derivation and validation, the
    comparison of kinds, drift, the data checks and the segments each test a text column for
    missing values and count its values, and on pandas' default text (Python objects) those
    run at Python speed (:func:`firebreak.detection.columns.as_text`). A column mixing text with
    numbers or other objects keeps its values as they are: that mixture is for the type checks
    to name. The values themselves do not change.
    """
    from firebreak.detection.columns import as_text, columns_of

    converted = {
        c: as_text(frame[c])
        for c in columns
        if c in frame.columns
        and frame[c].dtype == object
        and pd.api.types.infer_dtype(frame[c], skipna=True) == "string"
    }
    return columns_of(frame, replaced=converted) if converted else frame


def one_vocabulary(
    reference: pd.DataFrame, current: pd.DataFrame, *, label: str, prediction: str, positive: str | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Labels and answers in one vocabulary: class names on one side, numbers on the other, read through ``positive``.

    Labels ``"yes"``/``"no"`` beside a score (or 0/1 decisions), or decisions ``"approve"``/
    ``"deny"`` beside 0/1 labels, cannot be compared as they are: every answer would read
    wrong in both tables, and a real fall in accuracy would go unseen. ``positive`` names
    the class a 1 or a score of at least 0.5 stands for; the side holding class names becomes
    1 for that class and 0 for any other (missing stays missing). Forms that differ between
    the two tables are left as they are: that is a change of form, which the outcome checks
    judge as skew.

    Raises:
        FirebreakError: If the forms differ and ``positive`` is not given, or is not one of
            the class names.
    """
    from firebreak.detection.performance import as_numbers
    from firebreak.inert import clean

    def form(column: str) -> set[bool]:
        """Per table holding values in ``column``: whether they are numbers."""
        return {
            as_numbers(values) is not None
            for frame in (reference, current)
            if column in frame.columns and not (values := frame[column].dropna()).empty
        }

    label_form, answer_form = form(label), form(prediction)
    if len(label_form) != 1 or len(answer_form) != 1 or label_form == answer_form:
        return reference, current
    names, numbers = (label, prediction) if answer_form == {True} else (prediction, label)
    role = {label: "label", prediction: "prediction"}
    seen = pd.concat([f[names].dropna() for f in (reference, current) if names in f.columns])
    classes = sorted({str(v).strip() for v in seen.unique()})
    shown = ", ".join(repr(clean(c, 40)) for c in classes[:4]) + (", ..." if len(classes) > 4 else "")
    if positive is None:
        raise FirebreakError(
            f"the {role[names]} column {clean(names, 60)!r} holds class names ({shown}) and the "
            f"{role[numbers]} column {clean(numbers, 60)!r} numbers: name the class a 1 or a score of at "
            "least 0.5 stands for with --positive-class"
        )
    if positive.strip() not in classes:
        raise FirebreakError(
            f"positive class {clean(positive, 60)!r} is not among the {role[names]} column's classes ({shown})"
        )

    def as_decisions(frame: pd.DataFrame) -> pd.DataFrame:
        if names not in frame.columns:
            return frame
        values = frame[names]
        chosen = values.astype("string").str.strip() == positive.strip()
        return frame.assign(**{names: chosen.fillna(False).astype(float).where(values.notna())})

    return as_decisions(reference), as_decisions(current)


def read_unit_numbers(
    reference: pd.DataFrame, current: pd.DataFrame, columns: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame, list[dict[str, Any]]]:
    """Inputs the reference writes as numbers with a unit (``13.56%``, ``$1,200``), as numbers in both tables.

    Read as text they are thousands of distinct strings, set aside as identifiers or
    compared as categories; as numbers, their drift, range and scale are judged as any
    number's (``0.1356`` where the reference wrote ``13.56%``: a rescaled column). A
    currency sign the reference never wrote (``€`` where it wrote ``$``) is a currency
    change whatever the numbers do: the third element lists those columns, as the type
    checks' items (:func:`~firebreak.investigation.forms.type_changes`).
    """
    currency_changes = []
    for column in columns:
        numbers = unit_numbers(reference[column])
        if numbers is None:
            continue
        if column in current.columns:
            before, now = currencies(reference[column]), currencies(current[column])
            if now - before:
                because = (
                    f"its currency changed: {', '.join(sorted(before)) or 'no sign'} in the reference, "
                    f"{', '.join(sorted(now))} now"
                )
                sample = [bounded_sample(v) for v in current[column].dropna().head(3).tolist()]
                currency_changes.append({"column": column, "verdict": "skew", "because": because, "sample": sample})
            current = current.assign(**{column: read_like(current[column])})
        reference = reference.assign(**{column: numbers})
    return reference, current, currency_changes

"""Time columns: never compared for drift (the next batch is later), but their form is the pipeline's.

Epoch seconds arriving as milliseconds, or ISO dates arriving day-first, mean a writer or a
parser changed: skew, named by the column and both forms. The next week of the same log, or
the same dates read by two readers (typed from Parquet, text from a CSV), is no failure.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from firebreak.investigation.diagnosis import triage_tables


def sensor_log(seed: int, start: str, rows: int = 3_000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    times = pd.Timestamp(start) + pd.to_timedelta(np.sort(rng.integers(0, 7 * 86_400, rows)), unit="s")
    return pd.DataFrame(
        {
            "ts_epoch": (times.astype("int64") // 10**9).to_numpy(),
            "event_date": times.strftime("%Y-%m-%d"),
            "temperature": rng.normal(20, 3, rows).round(2),
            "site": rng.choice(["a", "b", "c"], rows),
        }
    )


REFERENCE = sensor_log(1, "2024-05-06")
NEXT_WEEK = sensor_log(2, "2024-05-13")


@pytest.mark.parametrize(
    ("change", "column", "words"),
    [
        (
            lambda f: f.assign(ts_epoch=f["ts_epoch"] * 1000),
            "ts_epoch",
            "its time unit changed: epoch seconds in the reference, epoch milliseconds now",
        ),
        (
            lambda f: f.assign(event_date=pd.to_datetime(f["event_date"]).dt.strftime("%d/%m/%Y")),
            "event_date",
            "its time format changed: 2024-05-",
        ),
        (lambda f: f.assign(event_date=f["event_date"] + "T00:00:00Z"), "event_date", "T00:00:00Z now"),
    ],
    ids=["seconds-to-milliseconds", "iso-to-day-first", "dates-to-timestamps"],
)
def test_a_time_written_in_another_form_is_skew(
    change: Callable[[pd.DataFrame], pd.DataFrame], column: str, words: str
) -> None:
    found, _ = triage_tables(REFERENCE, change(NEXT_WEEK))
    assert found.failure_class == "skew" and found.columns == [column], found.root_cause
    assert words in found.evidence[0].detail


@pytest.mark.parametrize(
    "current",
    [
        NEXT_WEEK,
        NEXT_WEEK.assign(event_date=pd.to_datetime(NEXT_WEEK["event_date"])),  # typed by one reader, text by another
        NEXT_WEEK.assign(event_date=pd.to_datetime(NEXT_WEEK["event_date"]).dt.date),  # Parquet's dates
    ],
    ids=["next-week", "typed-times", "date-objects"],
)
def test_the_next_week_of_the_same_log_is_no_failure(current: pd.DataFrame) -> None:
    found, evidence = triage_tables(REFERENCE, current)
    assert found.failure_class is None, found.root_cause
    assert {s["column"] for s in evidence["drift"]["skipped"]} == {"ts_epoch", "event_date"}


def store_log(seed: int, first_day: int, days: int, stores: int = 20) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    day = np.repeat(np.arange(first_day, first_day + days), stores)
    return pd.DataFrame(
        {
            "store": np.tile([f"s{i:02d}" for i in range(stores)], days),
            "day": day,
            "day_of_week": day % 7,
            "price": rng.normal(10, 1, len(day)).round(2),
            "units_sold": rng.poisson(5, len(day)),
        }
    )


def test_a_count_of_days_that_the_next_batch_continues_is_a_time() -> None:
    """Days 84-97 of a store log whose reference held days 0-83: a time, as a date would be. The
    day of the week repeats its values, and is compared."""
    found, evidence = triage_tables(store_log(1, 0, 84), store_log(2, 84, 14))
    assert found.failure_class is None, found.root_cause
    skipped = {s["column"]: s["reason"] for s in evidence["drift"]["skipped"]}
    assert skipped == {"day": "a time (dates, epoch numbers or a count of periods): not compared"}
    moved, _ = triage_tables(store_log(1, 0, 84), store_log(2, 84, 14).assign(price=lambda f: f["price"] + 3))
    assert moved.failure_class == "drift" and moved.columns == ["price"], moved.root_cause


@pytest.mark.parametrize(
    "current",
    [
        store_log(2, 0, 84).assign(age=lambda f: np.random.default_rng(4).integers(25, 96, len(f))),
        store_log(2, 40, 84),  # overlapping windows: the days are compared, and have moved
    ],
    ids=["ages-a-new-region", "overlapping-days"],
)
def test_whole_numbers_past_the_reference_are_not_a_time_without_a_periods_name_or_a_clean_break(
    current: pd.DataFrame,
) -> None:
    reference = store_log(1, 0, 84).assign(age=lambda f: np.random.default_rng(3).integers(18, 91, len(f)))
    if "age" not in current:
        reference = reference.drop(columns="age")
    _, evidence = triage_tables(reference, current)
    assert not [s for s in evidence["drift"]["skipped"] if s["column"] in ("age", "day")]


# Rides by hour of the day: a quiet night, a morning and an evening peak.
_DAY = np.array([1, 1, 1, 1, 2, 4, 8, 12, 10, 6, 5, 5, 6, 5, 5, 6, 9, 12, 10, 7, 5, 3, 2, 1], dtype=float)


def rides(seed: int, rows: int = 4_000, day: np.ndarray = _DAY) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    hour = rng.choice(24, rows, p=day / day.sum())
    return pd.DataFrame(
        {
            "pickup_hour": hour.astype("int64"),
            "distance_km": rng.gamma(2, 2.5, rows).round(2),
            "fare": rng.normal(18, 5, rows).round(2),
            "zone": rng.choice(["n", "s", "e", "w"], rows),
        }
    )


@pytest.mark.parametrize("offset", [5, -3, 12])
def test_hours_moved_round_the_clock_whole_are_a_time_zone_change(offset: int) -> None:
    current = rides(2)
    current["pickup_hour"] = (current["pickup_hour"] + offset) % 24

    found, _ = triage_tables(rides(1), current)

    assert found.failure_class == "skew" and found.columns == ["pickup_hour"], found.root_cause
    assert f"its hours moved {offset:+d} round the clock (a time zone changed upstream)" in found.evidence[0].detail


def test_an_evening_that_fills_is_people_not_a_clock() -> None:
    evening = _DAY * np.where(np.arange(24) >= 17, 2.5, 1.0)  # the same day, more of it after five

    found, evidence = triage_tables(rides(1), rides(2, day=evening))

    assert found.failure_class == "drift" and "pickup_hour" in found.columns, found.root_cause
    assert evidence["drift"]["data_checks"]["type_changes"] == []


def test_hours_of_a_flat_day_or_a_duration_in_hours_are_left_alone() -> None:
    flat = np.ones(24)
    moved = rides(2, day=flat).assign(pickup_hour=lambda f: (f["pickup_hour"] + 5) % 24)
    assert triage_tables(rides(1, day=flat), moved)[0].failure_class is None

    # "hours": a duration, whose values moving up by one is the world (longer shifts).
    worked = rides(1).rename(columns={"pickup_hour": "hours"})
    longer = rides(2).rename(columns={"pickup_hour": "hours"}).assign(hours=lambda f: (f["hours"] + 5) % 24)
    _, evidence = triage_tables(worked, longer)
    assert evidence["drift"]["data_checks"]["type_changes"] == []


def meter(seed: int, days: int = 20, evening: float = 1.0) -> pd.DataFrame:
    """Hourly readings of 12 sites: every hour holds the same rows; the load peaks at six."""
    rng = np.random.default_rng(seed)
    hour = np.tile(np.arange(24), days * 12)
    profile = 40 + 25 * np.exp(-0.5 * ((hour - 18) / 2.5) ** 2) * evening + 10 * np.exp(-0.5 * ((hour - 8) / 2) ** 2)
    return pd.DataFrame(
        {
            "hour": hour.astype("int64"),
            "load_kw": (profile * rng.lognormal(0, 0.15, len(hour))).round(2),
            "temp_c": (12 + 6 * np.sin(2 * np.pi * (hour - 9) / 24) + rng.normal(0, 2, len(hour))).round(1),
            "site": rng.choice([f"s{i}" for i in range(12)], len(hour)),
        }
    )


def test_an_hourly_meter_whose_hours_moved_is_read_by_what_each_hour_holds() -> None:
    # Every hour holds the same rows: the shares cannot show the move, the load and the
    # temperature by hour do, on warmer days too.
    current = meter(2)
    current["hour"] = (current["hour"] + 5) % 24
    current["temp_c"] += 3.0

    found, _ = triage_tables(meter(1), current)

    assert found.failure_class == "skew" and found.columns == ["hour"], found.root_cause
    assert "its hours moved +5 round the clock" in found.evidence[0].detail


def test_an_evening_peak_that_grows_on_a_meter_is_not_a_clock() -> None:
    _, evidence = triage_tables(meter(1), meter(2, evening=1.6))

    assert evidence["drift"]["data_checks"]["type_changes"] == []

"""``firebreak triage``: what a user sees for each failure class, and clear errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from firebreak.cli import main
from firebreak.errors import ExitCode
from firebreak.settings import INCLUDE_DIR


def prices(seed: int, n: int = 2000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cost = np.exp(rng.uniform(np.log(2), np.log(400), n)).round(2)
    return pd.DataFrame(
        {
            "unit_cost": cost,
            "competitor_price": (cost * rng.lognormal(0.2, 0.05, n)).round(2),
            "demand_index": rng.gamma(6, 0.15, n).round(4),
            "inventory_days": rng.poisson(30, n).astype("int64"),
            "category": rng.choice(["grocery", "electronics", "apparel", "home"], n, p=[0.4, 0.2, 0.25, 0.15]),
        }
    )


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["triage", *args])
    out, err = capsys.readouterr()
    return code, out, err


def tables(tmp_path: Path, reference: pd.DataFrame, current: pd.DataFrame) -> list[str]:
    ref, cur = tmp_path / "reference.parquet", tmp_path / "current.csv"
    reference.to_parquet(ref, index=False)
    current.to_csv(cur, index=False)
    return ["--reference", str(ref), "--current", str(cur)]


def test_prices_sent_in_cents_are_skew_naming_both_columns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    current = prices(12)
    current[["unit_cost", "competitor_price"]] *= 100
    code, out, _ = run(capsys, *tables(tmp_path, prices(11), current), "--json")
    report = json.loads(out)
    assert code == 0
    assert report["failure_class"] == "skew"
    assert set(report["columns"]) == {"unit_cost", "competitor_price"}
    factors = {c["column"]: c["factor"] for c in report["figures"]["scale_changes"]}
    assert factors.keys() == {"unit_cost", "competitor_price"}
    assert all(90 < f < 110 for f in factors.values())
    assert report["figures"]["contract"]["passed"] is False


def test_demand_moving_within_range_is_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    current = prices(12)
    current["demand_index"] = current["demand_index"] + 0.4  # about one standard deviation, inside the range
    code, out, _ = run(capsys, *tables(tmp_path, prices(11), current), "--json")
    report = json.loads(out)
    assert (code, report["failure_class"], report["columns"]) == (0, "drift", ["demand_index"])
    assert report["figures"]["contract"]["passed"] is True


def test_a_fresh_sample_is_none_in_words(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reference, current = prices(11), prices(12)
    for frame, day in ((reference, "2026-11-01"), (current, "2026-11-27")):
        # Request ids and timestamps are new in every table: never evidence of a change.
        frame["request_id"] = [f"{day}-{i}" for i in range(len(frame))]
        frame["ts"] = pd.date_range(day, periods=len(frame), freq="min", tz="UTC")
    code, out, _ = run(capsys, *tables(tmp_path, reference, current))
    assert code == 0
    assert out.startswith("failure class: none")
    assert "nothing out of the ordinary" in out


def test_a_huge_cell_is_shown_by_its_first_characters_and_its_length(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 5 MB value in one cell: the report names it, bounded, in the text and in the JSON."""
    current = prices(12)
    current.loc[5, "category"] = "Z" * 5_000_000
    ref, cur = tmp_path / "reference.parquet", tmp_path / "current.parquet"
    prices(11).to_parquet(ref, index=False)
    current.to_parquet(cur, index=False)
    code, out, _ = run(capsys, "--reference", str(ref), "--current", str(cur))
    assert code == 0 and len(out) < 5_000 and "... (5,000,000 characters)" in out
    code, out, _ = run(capsys, "--reference", str(ref), "--current", str(cur), "--json")
    assert code == 0 and len(out) < 20_000 and "... (5,000,000 characters)" in out


def test_a_group_selected_at_half_the_rate_is_bias(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(5)
    reference, current = prices(11), prices(12)
    for frame in (reference, current):
        frame["region"] = rng.choice(["north", "south"], len(frame))
        frame["approved"] = (rng.random(len(frame)) < 0.5).astype("int64")
    south = (current["region"] == "south") & (current["approved"] == 1)
    current.loc[south & (rng.random(len(current)) < 0.5), "approved"] = 0
    code, out, _ = run(
        capsys,
        *tables(tmp_path, reference, current),
        "--protected-column",
        "region",
        "--prediction-column",
        "approved",
        "--json",
    )
    report = json.loads(out)
    assert (code, report["failure_class"], report["columns"]) == (0, "bias", ["region"])
    fairness = report["figures"]["fairness"]
    assert fairness["worst"] == "south" and fairness["selection_rate_ratio"] < 0.6
    assert report["figures"]["reference_fairness"]["selection_rate_ratio"] > 0.9


def test_decisions_that_are_class_names_are_read_through_the_positive_class(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(5)
    reference, current = prices(11), prices(12)
    for frame in (reference, current):
        frame["region"] = rng.choice(["north", "south"], len(frame))
        frame["decision"] = np.where(rng.random(len(frame)) < 0.5, "approve", "refer")
    south = (current["region"] == "south") & (current["decision"] == "approve")
    current.loc[south & (rng.random(len(current)) < 0.5), "decision"] = "refer"
    args = [*tables(tmp_path, reference, current), "--protected-column", "region", "--prediction-column", "decision"]
    code, _, err = run(capsys, *args)
    assert code == 2 and "the prediction column 'decision' must hold numbers or booleans" in err
    code, out, _ = run(capsys, *args, "--positive-class", "approve", "--json")
    report = json.loads(out)
    assert (code, report["failure_class"], report["columns"]) == (0, "bias", ["region"])
    assert (
        report["figures"]["fairness"]["worst"] == "south"
        and report["figures"]["fairness"]["selection_rate_ratio"] < 0.6
    )
    code, _, err = run(capsys, *tables(tmp_path, reference, current), "--positive-class", "approve")
    assert code == 2 and "--positive-class names the class that labels or decisions in words stand for" in err


def test_scores_and_labels_give_the_incident_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(6)
    reference, current = prices(11), prices(12)
    for frame in (reference, current):
        frame["region"] = rng.choice(["north", "south"], len(frame))
        frame["repaid"] = (rng.random(len(frame)) < 0.5).astype("int64")
        right = rng.random(len(frame)) < 0.95
        frame["score"] = np.where(
            right, np.where(frame["repaid"] == 1, 0.8, 0.2), np.where(frame["repaid"] == 1, 0.2, 0.8)
        )
    south = current["region"] == "south"
    flip = south & (rng.random(len(current)) < 0.2)  # 20% more of south's decisions wrong
    current.loc[flip, "score"] = 1.0 - current.loc[flip, "score"]
    code, out, _ = run(
        capsys,
        *tables(tmp_path, reference, current),
        "--protected-column",
        "region",
        "--prediction-column",
        "score",
        "--label-column",
        "repaid",
        "--json",
    )
    report = json.loads(out)
    assert (code, report["failure_class"], report["columns"]) == (0, "bias", ["region"])
    fairness = report["figures"]["fairness"]
    assert fairness["error_rate_worst"] == "south" and fairness["error_rate_difference"] > 0.1
    assert fairness["limits"] == {"selection_rate_ratio": 0.8, "error_rate_difference": 0.1}
    assert set(fairness["groups"]["south"]) == {
        "rows",
        "positives",
        "selection_rate",
        "true_positive_rate",
        "false_positive_rate",
        "accuracy",
        "brier",
        "brier_variance",
    }
    # Named as a change since the reference, against the other groups' change.
    assert report["evidence"][0]["detail"].startswith("region=south: error rate 0.05 -> 0.2")
    assert report["figures"]["reference_fairness"]["breached"] is False

    # The outcomes written "repaid"/"defaulted": the class the score is for is asked, then read.
    words = [f.assign(repaid=f["repaid"].map({1: "repaid", 0: "defaulted"})) for f in (reference, current)]
    args = [*tables(tmp_path, *words), "--prediction-column", "score", "--label-column", "repaid", "--json"]
    code, _, err = run(capsys, *args)
    assert code == 2 and "holds class names ('defaulted', 'repaid')" in err and "--positive-class" in err
    code, out, _ = run(capsys, *args, "--protected-column", "region", "--positive-class", "repaid")
    in_words = json.loads(out)
    assert (code, in_words["failure_class"], in_words["figures"]) == (0, "bias", report["figures"])


def test_a_given_contract_is_used(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    current = prices(12)
    current["upstream_source"] = "erp.sales_v2"  # the pricing contract allows erp.sales_daily only
    reference = prices(11).assign(upstream_source="erp.sales_daily")
    args = tables(tmp_path, reference, current)
    code, out, _ = run(capsys, *args, "--contract", str(INCLUDE_DIR / "contracts" / "pricing.json"), "--json")
    report = json.loads(out)
    assert (code, report["failure_class"]) == (0, "skew")
    assert "upstream_source" in report["columns"]
    assert report["contract"].endswith("pricing.json")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"reference": "missing.parquet"}, "missing.parquet: [Errno 2] No such file"),
        ({"current": "current.txt"}, "unknown extension '.txt'"),
        ({"reference": "broken.parquet"}, "cannot read"),
        ({"extra": ["--label-column", "margin"]}, "label column 'margin' is not in the reference table"),
        ({"extra": ["--protected-column", "region"]}, "--protected-column needs --prediction-column"),
        ({"extra": ["--contract", "nope.json"]}, "nope.json: file not found"),
        (
            {"extra": ["--protected-column", "inventory_days", "--prediction-column", "category"]},
            "the prediction column 'category' must hold numbers or booleans for fairness figures",
        ),
        (
            {"extra": ["--protected-column", "category", "--prediction-column", "unit_cost"]},
            "the prediction column 'unit_cost' must be 0/1 or a score in [0, 1] for fairness figures",
        ),
        (
            {"reference": "one-row.parquet"},
            "the reference table has 1 row(s): a contract derived from fewer than 30 would read most new values as skew",
        ),
    ],
    ids=[
        "missing-file",
        "unknown-format",
        "unreadable",
        "unknown-column",
        "protected-alone",
        "missing-contract",
        "text-prediction",
        "prediction-not-a-score",
        "one-row-reference",
    ],
)
def test_bad_input_exits_2_naming_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, object], message: str
) -> None:
    args = tables(tmp_path, prices(11), prices(12))
    (tmp_path / "broken.parquet").write_text("not parquet")
    (tmp_path / "current.txt").write_text("a,b\n1,2\n")
    prices(11, 1).to_parquet(tmp_path / "one-row.parquet", index=False)
    if "reference" in change:
        args[1] = str(tmp_path / str(change["reference"]))
    if "current" in change:
        args[3] = str(tmp_path / str(change["current"]))
    extra = [str(tmp_path / a) if a.endswith(".json") else a for a in change.get("extra", [])]  # type: ignore[attr-defined]
    code, out, err = run(capsys, *args, *extra)
    assert code == 2
    assert out == ""
    assert err.startswith("firebreak triage: error:") and message in err


def labelled(seed: int, n: int = 3000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = prices(seed, n)
    score = 1 / (1 + np.exp(-(frame["demand_index"] - 0.9) * 4))
    frame["score"] = score.round(4)
    frame["sold"] = (rng.random(n) < score).astype("int64")
    return frame


def test_labels_that_no_longer_follow_the_model_are_concept_drift(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    current = labelled(12)
    rng = np.random.default_rng(0)
    flip = rng.random(len(current)) < 0.3
    current.loc[flip, "sold"] = 1 - current.loc[flip, "sold"]  # inputs untouched, the relation changed
    args = [*tables(tmp_path, labelled(11), current), "--label-column", "sold", "--prediction-column", "score"]
    code, out, _ = run(capsys, *args, "--json")
    report = json.loads(out)
    assert (code, report["failure_class"]) == (0, "drift")
    assert "concept drift" in report["root_cause"]
    assert report["estimated_performance"]["method"] == "CBPE"
    assert report["segments"]["scope"] == "all users"
    assert {"segments", "multivariate", "estimated_performance"} <= report.keys()


def test_fail_on_turns_a_finding_into_exit_3_and_leaves_other_classes_at_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    current = prices(12)
    current["demand_index"] = current["demand_index"] + 0.4
    args = tables(tmp_path, prices(11), current)
    assert run(capsys, *args, "--fail-on", "drift")[0] == ExitCode.FINDINGS
    assert run(capsys, *args, "--fail-on", "skew")[0] == 0
    assert run(capsys, *args, "--fail-on", "any")[0] == ExitCode.FINDINGS
    assert "who is hit:" in run(capsys, *args)[1]


@pytest.mark.parametrize("change", ["drift", "cents"])
def test_a_triage_with_scores_imports_neither_scipy_stats_nor_the_state_db(tmp_path: Path, change: str) -> None:
    """From the shell the command's start-up is most of its wall time: scipy.stats (about a
    second to import), scipy.optimize, pydantic's policy models and SQLAlchemy are not on its
    path for large tables with a drifted column, or prices sent in cents, and a classifier's
    labels and scores (their p-values come from scipy.special, the same functions scipy.stats
    evaluates; the scores' calibration is the module's own)."""
    reference, current = prices(11, 12_000), prices(12, 12_000)
    if change == "drift":
        current["demand_index"] = current["demand_index"] + 0.4
    else:
        current[["unit_cost", "competitor_price"]] *= 100
    for frame, seed in ((reference, 1), (current, 2)):
        rng = np.random.default_rng(seed)
        frame["label"] = rng.integers(0, 2, len(frame))
        frame["score"] = rng.random(len(frame)).round(4)
    args = [*tables(tmp_path, reference, current), "--label-column", "label", "--prediction-column", "score"]
    script = (
        "import sys\nfrom firebreak.cli import main\n"
        f"code = main(['triage', *{args!r}, '--json'])\n"
        "heavy = ('scipy.stats', 'scipy.spatial', 'scipy.optimize', 'pydantic', 'sqlalchemy', "
        "'great_expectations', 'sklearn')\n"
        "print(code, sorted({m for m in sys.modules if m.split('.')[0] in heavy or m in heavy}), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False)
    report = json.loads(done.stdout)
    assert report["failure_class"] == ("drift" if change == "drift" else "skew"), done.stderr[-2000:]
    assert report["estimated_performance"] is not None  # the calibration ran
    assert done.stderr.strip().splitlines()[-1] == "0 []"


def test_a_csv_written_with_semicolons_is_read_by_its_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A spreadsheet set to another locale writes ';': read with ',' it is one column, and nothing is compared."""
    current = prices(12)
    current["demand_index"] = current["demand_index"] + 0.4
    for name, frame in (("reference", prices(11)), ("current", current)):
        frame.to_csv(tmp_path / f"{name}.csv", sep=";", index=False)
    args = ["--reference", str(tmp_path / "reference.csv"), "--current", str(tmp_path / "current.csv"), "--json"]
    code, out, _ = run(capsys, *args)
    report = json.loads(out)
    assert (code, report["failure_class"], report["columns"]) == (0, "drift", ["demand_index"])


def test_a_csv_header_naming_a_column_twice_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "twice.csv").write_text("unit_cost,unit_cost,category\n1.0,2.0,home\n" * 1)
    args = tables(tmp_path, prices(11), prices(12))
    code, out, err = run(capsys, "--reference", str(tmp_path / "twice.csv"), "--current", args[3])
    assert (code, out) == (2, "")
    assert "the header names 'unit_cost' more than once" in err


def test_tables_with_nothing_to_compare_are_refused_not_called_healthy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reference = pd.DataFrame({"order_id": np.arange(1, 501), "ts": pd.date_range("2026-11-01", periods=500, freq="h")})
    current = reference.assign(order_id=reference["order_id"] + 500)
    code, out, err = run(capsys, *tables(tmp_path, reference, current))
    assert (code, out) == (2, "")
    assert "nothing to compare" in err and "order_id" in err


def test_a_hostile_column_name_reaches_the_terminal_inert(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A column named with escape sequences, a line break and thousands of characters: the report
    names it without colouring, retitling or flooding the terminal, and it cannot forge a line."""
    hostile = "\x1b[31mred\x1b[0m\x1b]0;retitled\x07\nfailure class: none " + "x" * 5000
    reference = prices(1).rename(columns={"demand_index": hostile})
    current = prices(2).rename(columns={"demand_index": hostile})
    current[hostile] = current[hostile] * 1.6
    ref, cur = tmp_path / "reference.parquet", tmp_path / "current.parquet"
    reference.to_parquet(ref)
    current.to_parquet(cur)
    code, out, _ = run(capsys, "--reference", str(ref), "--current", str(cur))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("failure class: drift")
    assert [line for line in lines if line.startswith("failure class:")] == [lines[0]]
    assert "\x1b" not in out and "\x07" not in out
    assert "redfailure class: none" not in out and "red failure class: none xxx" in out
    assert max(len(line) for line in lines) <= 1500


def test_no_failure_with_labels_says_nobody_is_hit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With labels some answers are always wrong; with no failure found, that is nobody's failure."""
    rng = np.random.default_rng(4)
    reference, current = prices(11), prices(12)
    for frame in (reference, current):
        frame["score"] = 1 / (1 + np.exp(-(frame["demand_index"] - 0.9) * 4))
        frame["label"] = (rng.random(len(frame)) < frame["score"]).astype(int)
    args = [*tables(tmp_path, reference, current), "--label-column", "label", "--prediction-column", "score"]
    code, out, _ = run(capsys, *args)
    assert code == 0 and out.startswith("failure class: none")
    assert "who is hit:    no failure to localise" in out


def test_padded_codes_from_parquet_and_a_csv_are_one_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Merchant codes ``00412`` as text in a Parquet snapshot, and the same process's codes in a CSV
    export: the CSV's codes keep their zeros (read as numbers, every one would be an unknown value)."""

    def orders(seed: int) -> pd.DataFrame:
        frame = prices(seed)
        rng = np.random.default_rng(seed)
        frame["merchant"] = [f"{m:05d}" for m in rng.choice(np.arange(1, 40) * 97, len(frame))]
        return frame

    code, out, _ = run(capsys, *tables(tmp_path, orders(11), orders(12)), "--json")
    report = json.loads(out)
    assert (code, report["failure_class"]) == (0, "none"), report["root_cause"]
    from firebreak.detection.drift_cli import _read_table

    read = _read_table(tmp_path / "current.csv")
    assert read["merchant"].str.startswith("0").all() and read["inventory_days"].dtype == "int64"

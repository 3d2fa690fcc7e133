"""``firebreak log import`` / ``labels import`` / ``log maintain`` as a user runs them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from firebreak.cli import main
from firebreak.prediction_log import LabelStore, PredictionLog
from firebreak.settings import Settings
from tests import own_model


@pytest.fixture
def settings(firebreak_home: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("FIREBREAK_POLICIES_DIR", str(own_model.write_policy(firebreak_home / "files")))
    return Settings.from_env()


def serving_log(n: int = 6) -> pd.DataFrame:
    """A team's own request log: its own column names, one extra column."""
    frame = own_model.generate(9, n)
    return pd.DataFrame(
        {
            "time": pd.date_range("2026-11-27 09:50", periods=n, freq="7min", tz="UTC").astype(str),
            "amount": frame["amount"],
            "account_age_days": frame["account_age_days"],
            "channel": frame["channel"],
            "score_label": frame["fraud"],
            "p": 0.9,
            "user_agent": "curl/8",
        }
    )


def run(*argv: str) -> int:
    return main(list(argv))


def test_a_csv_log_is_imported_with_its_columns_mapped_and_a_second_run_changes_nothing(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "requests.csv"
    serving_log().to_csv(path, index=False)
    args = ["log", "import", "--model", "payments", str(path), "--map", "time=ts", "--map", "score_label=prediction"]
    assert run(*args, "--map", "p=confidence") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"] == 6 and summary["parts"] == 2  # 09:50..10:25 spans two hour partitions
    assert summary["columns_left_out"] == ["user_agent"]
    logged = PredictionLog(settings.prediction_log_url).read("payments")
    assert len(logged) == 6 and logged["request_id"].str.startswith(f"import-{summary['import']}-").all()
    assert logged["amount"].tolist() == serving_log()["amount"].tolist()
    assert set(logged["channel"]) <= set(own_model.CHANNELS) and (logged["confidence"] == 0.9).all()
    assert run(*args, "--map", "p=confidence") == 0  # the same file again
    again = json.loads(capsys.readouterr().out)
    assert (again["rows"], again["already_logged"], again["parts"]) == (0, 6, 0)
    assert len(PredictionLog(settings.prediction_log_url).read("payments")) == 6


def test_bad_rows_are_named_by_row_and_nothing_is_written(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = serving_log().rename(columns={"time": "ts", "score_label": "prediction", "p": "confidence"})
    frame["request_id"] = [f"r{i}" for i in range(6)]
    frame.loc[2, "ts"] = "yesterday"
    frame.loc[4, "amount"] = "abc\x1b[31m"
    frame.loc[5, "confidence"] = 1.5
    frame.loc[5, "request_id"] = "r0"
    path = tmp_path / "requests.jsonl"
    frame.to_json(path, orient="records", lines=True)
    assert run("log", "import", "--model", "payments", str(path)) == 2
    err = capsys.readouterr().err
    assert "4 bad row(s), nothing imported" in err
    assert "row 1: request_id repeats another row's" in err
    assert "row 3: ts 'yesterday' is not a time" in err
    assert "row 5: amount 'abc?[31m' is not a number" in err  # control characters made inert
    assert "row 6: request_id repeats another row's; confidence is outside [0, 1]" in err
    assert not Path(settings.prediction_log_url).exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["log", "import", "--model", "payments", "{file}"], "lacks columns \\['prediction', 'ts'\\]"),
        (["log", "import", "--model", "payments", "{file}", "--map", "nope=ts"], "names columns \\['nope'\\]"),
        (["log", "import", "--model", "nobody", "{file}"], "no policy for model 'nobody'"),
        (  # the file has a column 'amount' already: two would carry that name
            ["log", "import", "--model", "payments", "{file}", "--map", "time=ts", "--map", "p=amount"],
            "two columns named \\['amount'\\]",
        ),
        (["labels", "import", "--model", "payments", "{file}", "--id-column", "id", "--label", "y"], "lacks columns"),
    ],
)
def test_a_file_that_cannot_be_imported_says_why(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    path = tmp_path / "requests.parquet"
    serving_log().to_parquet(path)
    assert run(*[a.format(file=path) for a in argv]) == 2
    assert re.search(message, capsys.readouterr().err)


def test_labels_are_imported_by_request_id_under_the_policy_label_and_bad_ones_refused(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "labels.csv"
    pd.DataFrame({"id": ["a", "b", "c"], "chargeback": [1, 0, 1]}).to_csv(path, index=False)
    argv = ["labels", "import", "--model", "payments", str(path), "--id-column", "id", "--label", "chargeback"]
    assert run(*argv) == 0
    stored = LabelStore(settings.labels_dir).read("payments")
    assert dict(zip(stored["request_id"], stored["fraud"], strict=True)) == {"a": 1, "b": 0, "c": 1}
    capsys.readouterr()
    pd.DataFrame({"id": ["a", "a", ""], "chargeback": [1, None, 0]}).to_csv(path, index=False)
    assert run(*argv) == 2
    err = capsys.readouterr().err
    assert "row 1 (line 2): id repeats another row's" in err
    assert "row 2 (line 3): id repeats another row's; chargeback (the label) is empty" in err
    assert "row 3 (line 4): id (the request id) is empty" in err
    assert len(LabelStore(settings.labels_dir).read("payments")) == 3  # unchanged


def test_true_and_false_written_by_a_csv_are_the_one_and_zero_the_model_answers(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A CSV holds booleans as text: kept as text, no label would ever equal a 0/1 answer (nor train a refit)."""
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"id": ["a", "b", "c"], "chargeback": [True, False, True]}).to_csv(labels, index=False)
    assert "True" in labels.read_text()
    argv = ["labels", "import", "--model", "payments", str(labels), "--id-column", "id", "--label", "chargeback"]
    assert run(*argv) == 0, capsys.readouterr().err
    stored = LabelStore(settings.labels_dir).read("payments")
    assert dict(zip(stored["request_id"], stored["fraud"].tolist(), strict=True)) == {"a": 1, "b": 0, "c": 1}

    log = serving_log(4).assign(score_label=["true", "FALSE", "True", "false"])
    log.to_csv(tmp_path / "requests.csv", index=False)
    mapped = ["--map", "time=ts", "--map", "score_label=prediction", "--map", "p=confidence"]
    assert run("log", "import", "--model", "payments", str(tmp_path / "requests.csv"), *mapped) == 0
    logged = PredictionLog(settings.prediction_log_url).read("payments").sort_values("ts")
    assert logged["prediction"].tolist() == [1, 0, 1, 0]

    capsys.readouterr()
    pd.DataFrame({"id": ["d", "e"], "chargeback": ["1", "maybe"]}).to_csv(labels, index=False)
    assert run(*argv) == 2  # the model's classes are 0 and 1 (its golden rows'): "maybe" is none of them
    assert "row 2 (line 3): chargeback 'maybe' is not one of the model's classes (0, 1)" in capsys.readouterr().err
    assert len(LabelStore(settings.labels_dir).read("payments")) == 3  # nothing imported


def test_a_date_that_reads_as_day_month_or_month_day_is_refused_and_one_that_cannot_is_read(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = serving_log(3).assign(time=["02/12/2026 03:00", "25/11/2026 03:00", "2026-11-27T10:00:00Z"])
    log.to_csv(tmp_path / "requests.csv", index=False)
    mapped = ["--map", "time=ts", "--map", "score_label=prediction", "--map", "p=confidence"]
    assert run("log", "import", "--model", "payments", str(tmp_path / "requests.csv"), *mapped) == 2
    err = capsys.readouterr().err
    assert "row 1 (line 2): ts '02/12/2026 03:00' reads as day/month or month/day: write it as ISO 8601" in err
    assert "row 2" not in err and "row 3" not in err  # 25 can only be the day; ISO 8601 is ISO 8601
    assert not Path(settings.prediction_log_url).exists()


def test_labels_a_model_could_never_have_are_refused_and_change_nothing(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A request id as the label, a class the model does not have, an infinite value: each would
    replace a good label and break the next refit or score every answer wrong."""
    path = tmp_path / "labels.csv"
    pd.DataFrame({"id": ["a", "b"], "chargeback": [1, 0]}).to_csv(path, index=False)
    argv = ["labels", "import", "--model", "payments", str(path), "--id-column", "id"]
    assert run(*argv, "--label", "chargeback") == 0
    capsys.readouterr()
    assert run(*argv, "--label", "id") == 2
    assert "--id-column and --label both name 'id'" in capsys.readouterr().err
    pd.DataFrame({"id": ["a", "b", "c"], "chargeback": [5, float("inf"), 0]}).to_csv(path, index=False)
    assert run(*argv, "--label", "chargeback") == 2
    err = capsys.readouterr().err
    assert "row 1 (line 2): chargeback '5.0' is not one of the model's classes (0, 1)" in err
    assert "row 2 (line 3): chargeback 'inf' is not a finite number\n" in err and "row 3" not in err
    stored = LabelStore(settings.labels_dir).read("payments")
    assert dict(zip(stored["request_id"], stored["fraud"], strict=True)) == {"a": 1, "b": 0}  # unchanged


def test_maintain_compacts_settled_hours_and_expires_old_ones(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    log = PredictionLog(settings.prediction_log_url)
    old = pd.Timestamp("2020-01-01 10:00", tz="UTC")
    for writer in ("a", "b"):
        frame = pd.DataFrame(
            {"request_id": [writer], "ts": [old], "model": "payments", "model_version": "1", "route": "champion"}
        )
        PredictionLog(settings.prediction_log_url, writer=writer).append(frame)
        PredictionLog(settings.prediction_log_url, writer=writer).append(
            frame.assign(ts=pd.Timestamp.now(tz="UTC") - pd.Timedelta(hours=3), request_id=f"new-{writer}")
        )
    assert run("log", "maintain", "--model", "payments") == 0
    assert json.loads(capsys.readouterr().out) == {"model": "payments", "hours_expired": 1, "parts_compacted": 2}
    assert sorted(log.read("payments")["request_id"]) == ["new-a", "new-b"]


def test_imported_rows_carry_the_contract_columns_they_break_as_the_gateway_would_have_refused_them(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from firebreak.incidents.enums import Signal
    from firebreak.investigation.triage import compute_signals
    from firebreak.policy.schema import load_policy

    log = serving_log(40)
    log.loc[[3, 7], "amount"] = log.loc[[3, 7], "amount"] * 1000  # cents sent as units
    log.loc[[7, 9], "channel"] = "kiosk"  # a channel the contract does not know
    path = tmp_path / "requests.csv"
    log.to_csv(path, index=False)
    mapped = ["--map", "time=ts", "--map", "score_label=prediction", "--map", "p=confidence"]
    assert run("log", "import", "--model", "payments", str(path), *mapped) == 0, capsys.readouterr().err
    logged = PredictionLog(settings.prediction_log_url).read("payments").sort_values("ts").reset_index(drop=True)
    assert logged["contract_violations"][[3, 7, 9]].tolist() == ["amount", "amount, channel", "channel"]
    assert (logged["contract_violations"].drop(index=[3, 7, 9]) == "").all()  # clean rows of a CSV break nothing
    signals = compute_signals(logged, load_policy("payments", settings.policies_dir))
    assert signals[Signal.CONTRACT_VIOLATION_RATE] == 0.075  # 3 of 40: severity can see it


def test_a_model_version_the_registry_does_not_hold_is_refused_and_nothing_is_written(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rows tagged with a version that never existed would never count as any version's evidence."""
    path = tmp_path / "requests.csv"
    serving_log().to_csv(path, index=False)
    mapped = ["--map", "time=ts", "--map", "score_label=prediction"]
    assert run("log", "import", "--model", "payments", str(path), *mapped, "--model-version", "7") == 2
    assert "--model-version '7': payments has no such version in the registry" in capsys.readouterr().err
    assert PredictionLog(settings.prediction_log_url).read("payments").empty


def test_a_model_version_the_registry_holds_is_taken_and_said_so(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from firebreak.registry.mlflow_registry import Registry

    client = Registry(settings).client
    client.create_registered_model("payments")
    client.create_model_version("payments", source=str(tmp_path / "model"))  # version 1: an entry is all it takes
    path = tmp_path / "requests.csv"
    serving_log().to_csv(path, index=False)
    mapped = ["--map", "time=ts", "--map", "score_label=prediction"]
    assert run("log", "import", "--model", "payments", str(path), *mapped, "--model-version", "1") == 0
    assert json.loads(capsys.readouterr().out)["answered_by"].endswith(": given (--model-version)")
    assert set(PredictionLog(settings.prediction_log_url).read("payments")["model_version"]) == {"1"}


def test_an_export_that_overlaps_an_earlier_one_adds_only_the_new_rows(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exports of a team's log overlap (yesterday's to noon, today's from 10:00): the rows logged
    already (same request id, same time) are skipped, not counted twice; an id the log holds for
    another prediction in the file's time span is refused by row and nothing is written."""
    whole = serving_log(9).assign(request_id=[f"r{i}" for i in range(9)])
    mapped = ["--map", "time=ts", "--map", "score_label=prediction", "--map", "p=confidence"]
    first, second = tmp_path / "monday.csv", tmp_path / "tuesday.csv"
    whole.iloc[:6].to_csv(first, index=False)
    whole.iloc[3:].to_csv(second, index=False)
    assert run("log", "import", "--model", "payments", str(first), *mapped) == 0
    capsys.readouterr()
    assert run("log", "import", "--model", "payments", str(second), *mapped) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["rows"], summary["already_logged"]) == (3, 3)
    log = PredictionLog(settings.prediction_log_url)
    logged = log.read("payments")
    assert sorted(logged["request_id"]) == sorted(whole["request_id"])
    assert logged["amount"].tolist() == whole["amount"].tolist()

    clash = whole.iloc[[1, 2]].copy()
    clash.loc[clash.index[1], "time"] = "2026-11-27 10:11:00+00:00"  # r2, logged at 10:04
    third = tmp_path / "clash.csv"
    clash.to_csv(third, index=False)
    assert run("log", "import", "--model", "payments", str(third), *mapped) == 2
    err = capsys.readouterr().err
    assert "row 2 (line 3): request_id 'r2' is already logged for a prediction at 2026-11-27T10:04:00+00:00" in err
    assert "row 1" not in err  # r1 at its own time is the same prediction, not a problem
    assert len(log.read("payments")) == 9

    # The first export again, after its hours were compacted into merged parts: nothing doubles.
    assert log.compact("payments", now=pd.Timestamp("2026-11-28", tz="UTC").to_pydatetime()) >= 2
    assert run("log", "import", "--model", "payments", str(first), *mapped) == 0
    assert json.loads(capsys.readouterr().out)["already_logged"] == 6
    assert len(log.read("payments")) == 9

"""The ``firebreak`` command as a user runs it (a subprocess): exit codes that tell the truth."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.integration

INCLUDE = Path(__file__).resolve().parents[2] / "include"


def firebreak(*args: str, cwd: Path, home: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FIREBREAK_", "MLFLOW_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(INCLUDE), env.get("PYTHONPATH", "")])
    if home is not None:
        env["FIREBREAK_HOME"] = home
    return subprocess.run(
        [sys.executable, "-m", "firebreak.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def drifted(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """A reference table and a current one whose `demand` moved: drift, inside any contract."""
    folder = tmp_path_factory.mktemp("tables")
    rng = np.random.default_rng(7)
    ref = pd.DataFrame({"demand": rng.normal(1.0, 0.2, 600), "units": rng.normal(10, 2, 600)})
    cur = pd.DataFrame({"demand": rng.normal(1.1, 0.2, 600), "units": rng.normal(10, 2, 600)})
    ref.to_parquet(folder / "ref.parquet", index=False)
    cur.to_parquet(folder / "cur.parquet", index=False)
    return ["--reference", str(folder / "ref.parquet"), "--current", str(folder / "cur.parquet")]


def test_an_unknown_incident_exits_1(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    done = firebreak("incident", "pricing-000000000000", cwd=tmp_path, home=str(home))
    assert done.returncode == 1, done
    assert "incident 'pricing-000000000000' not found" in done.stderr


def test_reading_a_home_that_does_not_exist_names_its_absolute_path_and_creates_nothing(tmp_path: Path) -> None:
    """FIREBREAK_HOME unset, in another folder: an error naming where it looked, not an empty state."""
    done = firebreak("incidents", cwd=tmp_path, home=None)
    assert done.returncode == 1, done
    assert f"no Firebreak state at {tmp_path.resolve() / '.firebreak'}" in done.stderr
    assert not (tmp_path / ".firebreak").exists()


def test_drift_exits_3_only_when_asked_to_fail_on_drift(tmp_path: Path, drifted: list[str]) -> None:
    plain = firebreak("drift", *drifted, cwd=tmp_path, home=str(tmp_path))
    assert plain.returncode == 0, plain.stderr
    failing = firebreak("drift", *drifted, "--fail-on-drift", cwd=tmp_path, home=str(tmp_path))
    assert failing.returncode == 3, failing.stderr
    assert "dataset drifted: demand" in failing.stderr


def test_triage_exits_3_when_the_class_found_is_one_to_fail_on(tmp_path: Path, drifted: list[str]) -> None:
    found = firebreak("triage", *drifted, "--fail-on", "skew", "--fail-on", "drift", cwd=tmp_path, home=str(tmp_path))
    assert found.returncode == 3, found.stdout + found.stderr
    assert "found drift" in found.stderr
    other = firebreak("triage", *drifted, "--fail-on", "bias", cwd=tmp_path, home=str(tmp_path))
    assert other.returncode == 0, other.stdout + other.stderr


def test_route_moves_traffic_by_hand_with_who_and_why_in_the_ledger(tmp_path: Path) -> None:
    """Reliability case 34: a manual route change names who and why, lands in the ledger, is undone the same way."""
    home = tmp_path / "state"
    contained = firebreak(
        "route", "fallback", "--model", "pricing", "--reason", "bad prices seen by support", "--by", "alice",
        cwd=tmp_path, home=str(home),
    )  # fmt: skip
    assert contained.returncode == 0, contained.stderr
    assert f"created FIREBREAK_HOME at {home}" in contained.stderr
    assert "pricing: champion -> heuristic (generation 1), by alice" in contained.stdout
    back = firebreak(
        "route", "champion", "--model", "pricing", "--reason", "v2 verified healthy", "--by", "bob",
        cwd=tmp_path, home=str(home),
    )  # fmt: skip
    assert back.returncode == 0 and "pricing: heuristic -> champion (generation 2), by bob" in back.stdout

    from tests.state import State

    changes = State(f"sqlite:///{home / 'state.db'}").routing.route_changes("pricing")
    assert [(c["old_route"], c["new_route"], c["actor"], c["reason"]) for c in changes] == [
        ("champion", "heuristic", "alice", "set by alice: bad prices seen by support"),
        ("heuristic", "champion", "bob", "set by bob: v2 verified healthy"),
    ]
    refused = firebreak(
        "route", "disabled", "--model", "pricing", "--reason", "x", "--by", "bob", cwd=tmp_path, home=str(home)
    )
    assert refused.returncode == 2 and "--reason must say why" in refused.stderr
    unknown = firebreak(
        "route", "disabled", "--model", "inventory", "--reason", "why not", "--by", "bob", cwd=tmp_path, home=str(home)
    )
    assert unknown.returncode == 2 and "no policy for model 'inventory'" in unknown.stderr
    assert len(State(f"sqlite:///{home / 'state.db'}").routing.route_changes("pricing")) == 2

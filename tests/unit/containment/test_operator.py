"""Forcing the serving breaker by hand: one library function for the shell and the console."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from firebreak.containment.operator import force_breaker
from firebreak.containment.state import RoutingStore


def test_force_open_then_release_records_who_and_why(tmp_path: Path) -> None:
    store = RoutingStore(f"sqlite:///{tmp_path / 'state.db'}")
    opened = force_breaker(store, "pricing", "open", by="alice", reason="prices below cost")
    assert (opened.state, opened.forced, opened.reason) == ("open", True, "prices below cost")
    released = force_breaker(store, "pricing", "close", by="bob", reason="v2 serves well")
    assert (released.state, released.forced, released.generation) == ("closed", False, opened.generation + 1)
    events = [(e["source"], e["target"], e["data"]["by"], e["reason"]) for e in store.breaker_events("pricing")]
    assert events == [("closed", "open", "alice", "prices below cost"), ("open", "closed", "bob", "v2 serves well")]


def test_the_shell_command_calls_the_same_function(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from firebreak.cli import main

    monkeypatch.setenv("FIREBREAK_HOME", str(tmp_path))
    assert main(["breaker", "open", "--model", "pricing", "--reason", "by hand"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["state"], shown["forced"], shown["reason"]) == ("open", True, "by hand")
    event = RoutingStore(f"sqlite:///{tmp_path / 'state.db'}").breaker_events("pricing")[-1]
    assert event["data"] == {"forced": True, "by": "firebreak breaker"}

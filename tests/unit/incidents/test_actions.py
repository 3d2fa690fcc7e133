"""Acknowledging an incident: who and why on the timeline; the first acknowledgement stands."""

from __future__ import annotations

from pathlib import Path

import pytest

from firebreak.errors import ActionRefused, UnknownIncidentError
from firebreak.incidents.actions import acknowledge
from firebreak.incidents.store import IncidentStore


@pytest.fixture
def store(tmp_path: Path) -> IncidentStore:
    store = IncidentStore(f"sqlite:///{tmp_path / 'state.db'}")
    store.create_incident(
        incident_id="pricing-1",
        model="pricing",
        description="",
        dedup_key="k",
        dag_run_id="r",
        dry_run=False,
        request={},
    )
    return store


def test_the_first_acknowledgement_stands_and_names_who_has_it(store: IncidentStore) -> None:
    first = acknowledge(store, "pricing-1", "alice", "on call")
    second = acknowledge(store, "pricing-1", "bob", "me too")
    assert (first.first, first.by) == (True, "alice")
    assert (second.first, second.by, second.reason) == (False, "alice", "on call")
    lines = [(e.kind, e.message, e.data) for e in store.events("pricing-1")]
    assert lines == [("acknowledged", "acknowledged by alice: on call", {"by": "alice", "reason": "on call"})]


@pytest.mark.parametrize(
    ("by", "reason", "message"),
    [
        ("", "why", "say who acts"),
        ("alice", "  \x00 ", "give a reason"),
        ("x" * 101, "why", "longer than 100 characters"),
        ("alice", "y" * 501, "longer than 500 characters"),
    ],
)
def test_a_name_and_a_reason_are_required_and_bounded(store: IncidentStore, by: str, reason: str, message: str) -> None:
    with pytest.raises(ActionRefused, match=message):
        acknowledge(store, "pricing-1", by, reason)
    assert store.events("pricing-1") == []


def test_control_characters_never_reach_the_timeline(store: IncidentStore) -> None:
    acknowledge(store, "pricing-1", "alice\x1b[31m", "looking\x00 now\n# heading")
    assert store.events("pricing-1")[0].message == "acknowledged by alice: looking now # heading"


def test_an_unknown_incident_is_named(store: IncidentStore) -> None:
    with pytest.raises(UnknownIncidentError, match="no incident 'nope'"):
        acknowledge(store, "nope", "alice", "why")

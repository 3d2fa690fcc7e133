"""Segment-scoped containment: the segment triage found is the one contained, row by row."""

from __future__ import annotations

from pathlib import Path

from firebreak.containment import routing
from firebreak.containment.segment import MISSING, Condition, Segment
from firebreak.containment.state import RoutingStore
from firebreak.inert import md
from firebreak.serving.routes import segment_rows

PHONE_HIGH = Segment((Condition("channel", values=("phone",)), Condition("amount", low=200.0)))


def test_the_gateway_hook_sends_only_matching_rows_to_the_containment_route() -> None:
    batch = [
        {"channel": "phone", "amount": 250.0},  # in the segment
        {"channel": "phone", "amount": 50.0},  # the channel alone is not the segment
        {"channel": "web", "amount": 900.0},
        {"channel": "phone", "amount": None},  # a missing number is outside any range
        {"channel": "phone", "amount": 200.0},  # the lower bound is inclusive
    ]
    assert segment_rows(batch, PHONE_HIGH) == [0, 4]
    assert segment_rows(batch, None) == []


def test_a_segment_round_trips_through_the_state_db_once_and_is_released_on_restore(tmp_path: Path) -> None:
    store = RoutingStore(f"sqlite:///{tmp_path / 'state.db'}")
    assert routing.contain_segment(store, "pricing", PHONE_HIGH, incident_id="inc-1", dry_run=False) is True
    assert routing.contain_segment(store, "pricing", PHONE_HIGH, incident_id="inc-1", dry_run=False) is False
    stored = store.contained_segment("pricing")
    assert stored is not None and stored["incident_id"] == "inc-1"
    assert Segment.from_dict(stored["segment"]) == PHONE_HIGH
    state = store.get_routing("pricing")
    assert state is not None and state.route == "champion"  # everyone else stays on the champion
    routing.restore(store, "pricing", incident_id="inc-1")
    assert store.contained_segment("pricing") is None


def test_a_dry_run_contains_no_segment(tmp_path: Path) -> None:
    store = RoutingStore(f"sqlite:///{tmp_path / 'state.db'}")
    assert routing.contain_segment(store, "pricing", PHONE_HIGH, incident_id="inc-2", dry_run=True) is False
    assert store.contained_segment("pricing") is None


def test_a_description_from_hostile_values_renders_inert() -> None:
    hostile = Segment((Condition("region", values=("x|y`<img src=x>\x1b[31m",)),))
    text = hostile.describe()
    # Plain text, as the data reads: no escape sequences or control characters, bounded ...
    assert text == "region=x|y`<img src=x>"
    assert len(Segment((Condition("note", values=("x" * 500,)),)).describe()) < 80
    # ... and escaped once by whatever renders it: the post-mortem's Markdown line.
    assert md(text) == "region=x\\|y\\`&lt;img src=x>"
    assert Segment((Condition("height_m", values=(MISSING,)),)).describe() == "height_m=<missing>"

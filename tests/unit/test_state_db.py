"""The state DB: incidents open once, routing moves by compare-and-set, the ledger is append-only."""

from __future__ import annotations

import threading
from pathlib import Path

from firebreak.incidents.enums import IncidentStatus, Route
from firebreak.incidents.identity import incident_id_for
from tests.state import State


def store(tmp_path: Path) -> State:
    return State(f"sqlite:///{tmp_path / 'state.db'}")


def test_incident_id_is_stable_and_run_id_safe() -> None:
    a = incident_id_for("pricing", "fp-123|2026-11-27T10:00:00Z")
    assert a == incident_id_for("pricing", "fp-123|2026-11-27T10:00:00Z")
    assert a != incident_id_for("pricing", "fp-123|2026-11-27T11:00:00Z")
    assert a.startswith("pricing-") and len(a) == len("pricing-") + 12


def test_an_incident_is_created_once(tmp_path: Path) -> None:
    s = store(tmp_path)
    args = dict(
        incident_id="i-1", model="pricing", description="d", dedup_key="k", dag_run_id="r", dry_run=False, request={}
    )
    assert s.incidents.create_incident(**args) is True
    assert s.incidents.create_incident(**args) is False
    assert [i.id for i in s.incidents.list_incidents()] == ["i-1"]
    s.incidents.update_incident("i-1", status=IncidentStatus.RESOLVED)
    incident = s.incidents.get_incident("i-1")
    assert incident is not None and incident.status is IncidentStatus.RESOLVED and incident.closed_at is not None


def test_concurrent_contain_moves_the_route_once(tmp_path: Path) -> None:
    """Reliability case 11: two writers race from the same generation; exactly one wins."""
    s = store(tmp_path)
    start = s.routing.ensure_routing("pricing", Route.CHAMPION, "initial")
    barrier = threading.Barrier(8)
    wins: list[bool] = []

    def contend() -> None:
        barrier.wait()
        wins.append(
            s.routing.compare_and_set_route(
                "pricing",
                expected_generation=start.generation,
                route=Route.HEURISTIC,
                incident_id="i-1",
                reason="contain",
            )
        )

    threads = [threading.Thread(target=contend) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wins.count(True) == 1
    state = s.routing.get_routing("pricing")
    assert state is not None and (state.route, state.generation, state.incident_id) == ("heuristic", 1, "i-1")


def test_ensure_routing_never_overwrites(tmp_path: Path) -> None:
    s = store(tmp_path)
    s.routing.ensure_routing("pricing", Route.CHAMPION, "initial")
    assert s.routing.compare_and_set_route(
        "pricing", expected_generation=0, route=Route.HEURISTIC, incident_id=None, reason="x"
    )
    assert s.routing.ensure_routing("pricing", Route.CHAMPION, "again").route == "heuristic"


def test_evidence_is_replaced_not_duplicated(tmp_path: Path) -> None:
    s = store(tmp_path)
    s.incidents.put_evidence("i-1", "gate", {"passed": False})
    s.incidents.put_evidence("i-1", "gate", {"passed": True})
    assert s.incidents.get_evidence("i-1") == {"gate": {"passed": True}}


def test_ledger_keeps_pending_failed_and_applied(tmp_path: Path) -> None:
    s = store(tmp_path)
    a = s.ledger.begin_move(
        model="pricing", alias="champion", old="1", new="2", incident_id="i-1", actor="t", reason="r"
    )
    b = s.ledger.begin_move(
        model="pricing", alias="champion", old="1", new="3", incident_id="i-2", actor="t", reason="r"
    )
    s.ledger.finish_move(a, "applied")
    s.ledger.finish_move(b, "failed")
    assert [(e.new_version, e.status) for e in s.ledger.entries("pricing")] == [("2", "applied"), ("3", "failed")]


def test_a_state_db_from_an_earlier_release_gains_the_new_columns(tmp_path: Path) -> None:
    """Tables are created on first use, never altered by create_all: new nullable columns are added."""
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'old.db'}"
    with sa.create_engine(url).begin() as conn:  # alert_episodes as the first release created it
        conn.execute(
            sa.text(
                "CREATE TABLE alert_episodes (incident_id VARCHAR(80) PRIMARY KEY, model VARCHAR(100) NOT NULL, "
                "dedup_key VARCHAR(300) NOT NULL, first_seen DATETIME NOT NULL, deliveries INTEGER NOT NULL, "
                "resolved_at DATETIME)"
            )
        )
        conn.execute(
            sa.text("INSERT INTO alert_episodes VALUES ('pricing-old', 'pricing', 'k', '2026-11-01 10:00:00', 1, NULL)")
        )
    s = State(url)
    episode = s.alerts.touch_episode("pricing-old", "pricing", "k", resolved=False)
    assert episode["deliveries"] == 2 and episode["opened_at"] is None
    s.alerts.mark_opened("pricing-old")
    assert [incident for incident, _ in s.alerts.opened_episodes("pricing")] == ["pricing-old"]

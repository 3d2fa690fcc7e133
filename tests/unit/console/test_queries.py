"""The console's board from recorded incidents: statuses, stages, clocks and filters, in a fixed
number of queries; the incident and model read models."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from firebreak.console.queries import Filters, board, incident_page, model_page
from firebreak.settings import Settings
from tests.state import State

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from firebreak_dev.recorded import replay

    home = tmp_path_factory.mktemp("board") / "firebreak"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FIREBREAK_HOME", str(home))
        settings = Settings.from_env()
        replayed = replay(settings, copies=3, now=NOW, postmortems=False)
        yield settings, replayed, State(settings.state_db_url)


def test_every_scenario_is_on_the_board_with_its_status_stage_and_clock(world: Any) -> None:
    settings, replayed, state = world
    found = board(state.incidents, state.routing, Filters(), known_models=["pricing"], now=NOW)
    assert len(found.rows) == len(replayed) == 18 and not found.truncated
    by_id = {row.incident.id: row for row in found.rows}
    for incident in replayed:
        row = by_id[incident.incident_id]
        assert str(row.incident.status) == incident.status
        assert row.stage == "closed"
        assert row.clock.time_to_contain is not None and row.clock.time_to_contain < timedelta(minutes=5)
        if incident.status == "resolved":
            assert row.clock.time_to_resolve is not None
    assert [r.incident.opened_at for r in found.rows] == sorted(
        (r.incident.opened_at for r in found.rows), reverse=True
    )
    assert {"pricing", "loan_approval", "support-bot"} <= set(found.models)


def test_filters_narrow_the_board(world: Any) -> None:
    _, replayed, state = world

    def ids(**chosen: str) -> set[str]:
        found = board(state.incidents, state.routing, Filters.parse(**chosen), known_models=[], now=NOW)
        return {row.incident.id for row in found.rows}

    skew = {r.incident_id for r in replayed if r.scenario == "skew"}
    assert ids(model="pricing-skew", status=None, severity=None, since=None) == skew
    assert ids(model=None, status="contained_needs_human", severity=None, since=None) == skew
    recent = ids(model=None, status=None, severity=None, since="24h")
    assert 0 < len(recent) < len(replayed)  # the replay spaces incidents three hours apart


def test_the_board_reads_in_a_fixed_number_of_queries(world: Any) -> None:
    """Whatever the number of incidents: one query for the incidents with their milestones and
    stages, one for the acknowledgements, the models, and one routing read per model shown."""
    from firebreak.state_db import get_engine

    settings, _, state = world
    selects: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append(statement)

    engine = get_engine(settings.state_db_url)
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        found = board(state.incidents, state.routing, Filters(), known_models=[], now=NOW)
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    # the board (and its acknowledgements, when there are any), the models, a route per model
    assert len(selects) <= 3 + len({row.incident.model for row in found.rows})


def test_incident_and_model_pages(world: Any) -> None:
    _, replayed, state = world
    pricing = next(r for r in replayed if r.scenario == "pricing")
    page = incident_page(state.incidents, state.routing, state.ledger, pricing.incident_id)
    assert page is not None and page.stage == "closed"
    assert {"drift", "outputs", "confidence", "serving"} <= set(page.charts)
    assert [(e.alias, e.new_version) for e in page.ledger if e.alias == "champion"] == [("champion", "2")]
    model = model_page(state.incidents, state.routing, state.ledger, "pricing")
    assert model.aliases["champion"].new_version == "2" and model.routing is not None
    assert incident_page(state.incidents, state.routing, state.ledger, "no-such-incident") is None

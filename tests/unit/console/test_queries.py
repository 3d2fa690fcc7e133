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
    assert len(found.rows) == len(replayed) == found.matching == 18 and not found.older
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
    # the page (and its clock marks, when there are any), the count, the models, a route per model
    assert len(selects) <= 4 + len({row.incident.model for row in found.rows})


def test_the_board_pages_through_older_incidents(world: Any) -> None:
    _, replayed, state = world

    def page(number: str, **chosen: str | None) -> Any:
        filters = Filters.parse(chosen.get("model"), None, None, None, number)
        return board(state.incidents, state.routing, filters, known_models=[], now=NOW, per_page=5)

    pages = [page(str(n)) for n in (1, 2, 3, 4)]
    shown = [row.incident.id for p in pages for row in p.rows]
    everything = board(state.incidents, state.routing, Filters(), known_models=[], now=NOW)
    assert shown == [row.incident.id for row in everything.rows]  # every incident once, in order, across the pages
    assert set(shown) == {r.incident_id for r in replayed}
    assert [len(p.rows) for p in pages] == [5, 5, 5, 3] and [p.older for p in pages] == [True, True, True, False]
    assert [p.first for p in pages] == [1, 6, 11, 16] and {p.matching for p in pages} == {18}
    assert page("5").rows == [] and page("5").matching == 18
    for hostile in (
        "0",
        "-1",
        "x",
        "99999999999",
        "9" * 5000,
        "١",
    ):  # out of range or not a plain number: the first page
        assert page(hostile).filters.page == 1
    skew = page("1", model="pricing-skew")
    assert skew.matching == len([r for r in replayed if r.scenario == "skew"]) and not skew.older
    assert Filters.parse("pricing", "open", None, None, "2").query(3) == "model=pricing&status=open&page=3"


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

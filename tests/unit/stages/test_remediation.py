"""Remediate, verify, promote, close: a candidate once, the gate's verdict recorded, aliases moved through
the ledger, the post-mortem written."""

from __future__ import annotations

import pytest

from firebreak import stages
from firebreak.errors import GateRefused, RemediationError
from firebreak.incidents.enums import EvidenceKind, IncidentStatus
from tests.unit.stages.conftest import World

ALIASES_AT_START = {"champion": "1"}


def test_rollback_without_last_known_good_names_the_problem(world: World) -> None:
    incident_id = world.open("rollback-none")
    with pytest.raises(RemediationError, match="model 'pricing' has no 'last-known-good' version to roll back to"):
        stages.rollback(incident_id)
    assert EvidenceKind.CANDIDATE not in world.state().incidents.get_evidence(incident_id)
    assert world.registry().aliases("pricing") == ALIASES_AT_START


def test_upstream_fix_waits_for_fresh_traffic(world: World) -> None:
    incident_id = world.open("upstream-none")
    with pytest.raises(RemediationError, match="no traffic of pricing logged since the incident opened"):
        stages.upstream_fix(incident_id)
    check = world.state().incidents.get_evidence(incident_id)[EvidenceKind.UPSTREAM_CHECK]
    assert check == {"rows": 0, "since": check["since"], "passed": None}


def test_guardrail_rule_is_for_llm_apps_only(world: World) -> None:
    incident_id = world.open("guardrail-tabular")
    with pytest.raises(RemediationError, match="guardrail_rule applies to LLM apps"):
        stages.guardrail_rule(incident_id)


def test_a_dry_run_plans_and_changes_nothing(world: World) -> None:
    before = world.registry().aliases("pricing")
    incident_id = world.open("retrain-dry", dry_run=True)
    candidate = stages.retrain(incident_id)
    assert candidate["version"] is None and candidate["detail"].startswith("dry run: would train")
    assert stages.verify(incident_id) == {"passed": None}
    assert stages.promote(incident_id) == {"promoted": False}
    assert world.registry().aliases("pricing") == before


def test_a_refused_gate_keeps_traffic_on_the_fallback(world: World) -> None:
    """Rolling back to the very version that serves improves nothing: refused, recorded, contained for a human."""
    champion = world.registry().aliases("pricing")["champion"]
    world.registry().move_alias(
        "pricing", "last-known-good", champion, incident_id=None, actor="test", reason="the champion itself"
    )
    incident_id = world.open("refused-a", remediation="rollback")
    stages.contain(incident_id)
    assert stages.rollback(incident_id)["version"] == champion
    with pytest.raises(GateRefused, match=f"promotion gate refused pricing v{champion}: gate refused: recent MAE"):
        stages.verify(incident_id)
    stages.write_postmortem(incident_id)
    closed = stages.close_incident(incident_id)
    assert closed["status"] == IncidentStatus.CONTAINED_NEEDS_HUMAN
    assert closed["outcome"].startswith("traffic stays on heuristic; promotion gate refused")
    assert world.state().routing.get_routing("pricing").route == "heuristic"  # type: ignore[union-attr]
    assert world.registry().aliases("pricing")["champion"] == champion  # nothing promoted
    for alias in ("last-known-good", "challenger"):
        world.registry().move_alias("pricing", alias, None, incident_id=None, actor="test", reason="reset")
    stages.restore_traffic(incident_id)  # as an operator would, for the next test


def test_retrain_verify_promote_and_close(world: World) -> None:
    """The whole remediation path on one incident; each stage re-run changes nothing twice."""
    incident_id = world.open("retrain-a")
    stages.contain(incident_id)

    first = stages.retrain(incident_id)
    again = stages.retrain(incident_id)  # a retry after a crash reuses the candidate
    assert first == again and first["version"] == "2"
    assert world.registry().aliases("pricing") == {"champion": "1", "challenger": "2"}
    versions = world.registry().client.search_model_versions("name = 'pricing'")
    assert sorted(str(v.version) for v in versions) == ["1", "2"]
    tags = world.registry().get_version("pricing", "2").tags
    assert tags["firebreak.incident_id"] == incident_id and "firebreak.golden.mae" in tags

    assert stages.verify(incident_id) == {"passed": True, "candidate_version": "2"}
    gate = world.state().incidents.get_evidence(incident_id)[EvidenceKind.GATE]
    assert gate["passed"] is True and gate["champion_version"] == "1"
    assert {c["name"] for c in gate["checks"]} >= {
        "golden MAE no worse than champion",
        "recent MAE improves on champion",
    }
    assert gate["candidate"]["recent"]["mae"] < gate["champion"]["recent"]["mae"]

    assert stages.promote(incident_id) == {"promoted": True, "champion": "2"}
    assert stages.promote(incident_id) == {"promoted": True, "champion": "2"}  # idempotent: no second move
    assert world.registry().aliases("pricing") == {"champion": "2", "last-known-good": "1"}
    moves = [(e.alias, e.old_version, e.new_version, e.incident_id) for e in world.state().ledger.entries("pricing")]
    assert moves[-4:] == [
        ("challenger", None, "2", incident_id),
        ("last-known-good", None, "1", incident_id),
        ("champion", "1", "2", incident_id),
        ("challenger", "2", None, incident_id),
    ]

    stages.restore_traffic(incident_id)
    postmortem = stages.write_postmortem(incident_id)
    closed = stages.close_incident(incident_id)
    assert closed["status"] == IncidentStatus.RESOLVED
    assert closed["outcome"] == "resolved: champion v1 -> v2; traffic back on champion"
    text = world.home.joinpath("postmortems", f"{incident_id}.md").read_text()
    assert postmortem["path"].endswith(f"{incident_id}.md") and "| `champion` | 1 | 2 | applied |" in text


def test_a_champion_that_is_not_scikit_learn_and_has_no_recipe_is_named_by_its_number(world: World) -> None:
    import pandas as pd

    from firebreak.policy.schema import load_policy
    from firebreak.remediation.retrain import Champion, _refit_champion

    model = world.facts["model"]
    registry = world.registry()
    policy = load_policy(model, world.settings.policies_dir)
    champion = Champion(registry, registry.get_version(model, "1"), pd.DataFrame, None)
    with pytest.raises(
        RemediationError, match=rf"^{model} v1 is not a scikit-learn model \(flavors: .*python_function"
    ):
        _refit_champion(policy, world.settings, champion)

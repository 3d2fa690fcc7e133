"""Promotion: the only path that moves ``champion``, every move an alias-ledger row.

SOP stage *Promote*. The gate verified the candidate against the champion the incident
opened with; if another incident promoted in the meantime, that verdict no longer holds
and nothing moves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from firebreak.errors import GateRefused
from firebreak.incidents.enums import Alias, Remediation
from firebreak.registry.mlflow_registry import Registry


@dataclass(frozen=True)
class Promotion:
    old: str
    new: str
    why: str
    last_known_good: str | None = None  # what last-known-good points at afterwards
    note: str = ""  # why last-known-good did not move, when it did not


def promote_candidate(
    registry: Registry,
    model: str,
    *,
    old: str,
    new: str,
    remediation: str,
    incident_id: str,
    actor: str,
    with_champion: Callable[[str], None] | None = None,
    cause: str | None = None,
    approved_by: str | None = None,
) -> Promotion:
    """Move ``champion`` from ``old`` to ``new``, and ``last-known-good`` to ``old`` unless it is the cause.

    ``last-known-good`` is what a rollback returns to, so it is never a version an incident
    diagnosed as the cause (``cause``: a bad release, the prompt that made promises): it
    stays where it was. Rolling back never moves it either. ``with_champion(why)`` moves
    what serves with the new champion (an LLM's prompt alias and guardrails) right after
    it. The candidate's ``challenger`` alias is cleared last; another incident's candidate stays. ``approved_by`` (the person who signed the promotion off,
    when the policy requires it) is written on the ``champion`` row of the ledger.

    Raises:
        GateRefused: ``champion`` moved to a third version while this incident ran.
    """
    current = registry.version_for(model, Alias.CHAMPION)
    if current is not None and current.version not in {old, new}:
        raise GateRefused(
            f"{Alias.CHAMPION} of {model} moved from v{old} to v{current.version} while this incident ran; "
            f"candidate v{new} was verified against v{old} only: re-run the incident to verify against v{current.version}"
        )
    why = f"{remediation} passed the gate in {incident_id}" + (f", approved by {approved_by}" if approved_by else "")
    move = registry.move_alias
    note = ""
    if remediation != Remediation.ROLLBACK and old != new:
        if cause == old:
            note = f"{Alias.LAST_KNOWN_GOOD} not moved to v{old}: {incident_id} diagnosed v{old} as the cause"
        else:
            move(model, Alias.LAST_KNOWN_GOOD, old, incident_id=incident_id, actor=actor, reason=f"replaced by v{new}")
    move(model, Alias.CHAMPION, new, incident_id=incident_id, actor=actor, reason=why, approved_by=approved_by)
    if with_champion is not None:
        with_champion(why)
    challenger = registry.version_for(model, Alias.CHALLENGER)
    if challenger is not None and challenger.version == new:
        move(model, Alias.CHALLENGER, None, incident_id=incident_id, actor=actor, reason=f"v{new} promoted")
    lkg = registry.version_for(model, Alias.LAST_KNOWN_GOOD)
    return Promotion(old, new, why, lkg.version if lkg else None, note)

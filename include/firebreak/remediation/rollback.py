"""Rollback: the ``last-known-good`` version as the candidate, never a silent pick of another one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from firebreak.errors import RemediationError
from firebreak.incidents.enums import Alias

if TYPE_CHECKING:
    from firebreak.registry.mlflow_registry import Registry, Version


def rollback_target(registry: Registry, model: str) -> Version:
    """The version ``last-known-good`` points at.

    Raises:
        RemediationError: There is none; when the ledger shows it pointed at a version that
            was since deleted, the message names that version.
    """
    target = registry.version_for(model, Alias.LAST_KNOWN_GOOD)
    if target is not None:
        return target
    moves = [e for e in registry.ledger.entries(model) if e.alias == Alias.LAST_KNOWN_GOOD and e.status == "applied"]
    last = moves[-1].new_version if moves else None
    if last is None:
        raise RemediationError(f"model {model!r} has no '{Alias.LAST_KNOWN_GOOD}' version to roll back to")
    raise RemediationError(
        f"cannot roll back {model}: '{Alias.LAST_KNOWN_GOOD}' last pointed at v{last} (alias ledger), "
        f"which is gone from the registry (deleted); no other version is served in its place"
    )

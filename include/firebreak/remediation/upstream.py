"""Upstream fix: no model change; the upstream owner fixes the data, and fresh traffic proves it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from firebreak.policy.schema import Policy

if TYPE_CHECKING:
    from firebreak.contracts.validation import ContractResult
    from firebreak.settings import Settings


@dataclass(frozen=True)
class UpstreamCheck:
    """Traffic logged since the incident opened, against the contract; ``passed`` None: no traffic yet."""

    passed: bool | None
    rows: int
    summary: str
    payload: dict[str, Any]
    sources: list[dict[str, Any]] = field(default_factory=list)

    def describe_sources(self, policy: Policy) -> str:
        lineage = [c for c in policy.features.lineage]
        return ", ".join(
            "/".join(str(g.get(c)) for c in lineage if c in g) + f" ({g['rows']} rows)" for g in self.sources
        )


def contract_on_fresh(frame: pd.DataFrame, policy: Policy, settings: Settings) -> ContractResult:
    """The contract on logged traffic (inputs and lineage columns present in the frame)."""
    from firebreak.contracts.validation import validate_frame

    columns = [c for c in [*policy.features.inputs, *policy.features.lineage] if c in frame.columns]
    return validate_frame(frame[columns], settings.resolve(policy.contract))


def check_upstream(fresh: pd.DataFrame, policy: Policy, settings: Settings, opened: datetime) -> UpstreamCheck:
    """Whether the upstream is fixed: every prediction logged since ``opened`` passes the contract."""
    if fresh.empty:
        return UpstreamCheck(
            None,
            0,
            f"no traffic logged since the incident opened at {opened:%Y-%m-%d %H:%M} UTC",
            {"rows": 0, "since": str(opened), "passed": None},
        )
    result = contract_on_fresh(fresh, policy, settings)
    lineage = [c for c in policy.features.lineage if c in fresh.columns]
    sources = fresh.groupby(lineage, dropna=False).size().reset_index(name="rows").to_dict("records") if lineage else []
    return UpstreamCheck(
        result.passed,
        len(fresh),
        result.summary(),
        {"rows": len(fresh), "since": str(opened), "sources": sources, **result.to_dict()},
        sources,
    )

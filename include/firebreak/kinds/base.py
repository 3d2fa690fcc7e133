"""The model-kind protocol: the questions a stage, an audit or the gateway may ask a kind."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from firebreak.incidents.enums import EvidenceKind

if TYPE_CHECKING:
    import pandas as pd

    from firebreak.contracts.online import OnlineContract
    from firebreak.registry.ledger import AliasLedger
    from firebreak.registry.mlflow_registry import Registry, Version
    from firebreak.remediation.prompt_fix import PromptFixer
    from firebreak.settings import Settings
    from firebreak.verification.gate import GateVerdict

Predict = Callable[["pd.DataFrame"], "pd.DataFrame"]


@dataclass(frozen=True)
class GoldenCheck:
    """A version on its golden set: the evidence, whether it breached, and the figures worth charting."""

    kind: EvidenceKind  # golden | golden_qa
    breached: bool
    summary: str
    payload: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)


class AnswerGuard(Protocol):
    """What the serving gateway runs on every answer before a user gets it."""

    def reload(self) -> None:
        """Pick up a newly activated version of the guard (called when the alias ledger moves)."""

    def apply(self, frame: pd.DataFrame, outputs: pd.DataFrame) -> dict[int, str]:
        """Replace blocked answers in ``outputs`` in place; returns the blocked rows and the rule that fired.

        Adds a ``guardrail`` column (the rule, or None) for the prediction log.
        """


class ModelKind(Protocol):
    """One kind of model: how its golden set, gate, promotion and serving guard work."""

    name: str
    shadow_comparable: bool  # outputs are numbers a shadow evaluation can compare

    # -- serving --------------------------------------------------------------------------

    def prepare_contract(self, contract: OnlineContract) -> None:
        """Add to the online contract what a request of this kind must carry beyond the suite."""

    def answer_guard(self, settings: Settings) -> AnswerGuard | None:
        """The guard every served answer goes through, or None."""

    # -- investigation ----------------------------------------------------------------------

    def golden_check(
        self, registry: Registry, version: Version, settings: Settings, window: pd.DataFrame, *, full: bool
    ) -> GoldenCheck:
        """``version`` on the golden set against its recorded baseline.

        ``full`` (an incident) adds what only an investigation needs: what the golden set
        cannot see of recent traffic, and the comparison with ``last-known-good``.
        """

    def fallback_figures(
        self, predict: Predict, settings: Settings, recent: Callable[[], pd.DataFrame]
    ) -> dict[str, Any]:
        """The containment fallback judged as this kind judges a model (evidence for the post-mortem)."""

    def impact(
        self, settings: Settings, window: Callable[[], pd.DataFrame], labelled: Callable[[], pd.DataFrame]
    ) -> list[dict[str, Any]]:
        """The harm done in the model's own terms (money, people, requests), for the post-mortem.

        Items ``{"key", "label", "value", "of", "format"}`` (``count``, ``money`` or ``share``).
        """

    # -- remediation ------------------------------------------------------------------------

    def candidate_figures(self, predict: Predict, settings: Settings, tags: dict[str, str]) -> Any:
        """A candidate's golden figures, recorded on its version as the baseline (``to_dict()``)."""

    def input_example(self, reference: pd.DataFrame) -> pd.DataFrame:
        """The input example logged with a new version."""

    def carried_tags(self, version: Version) -> dict[str, str]:
        """Version tags a derived version keeps (an LLM's prompt and guardrail versions)."""

    def prompt_fixer(self) -> PromptFixer:
        """The ``guardrail_rule`` remediation (a reviewed prompt and new guardrails); LLM apps only.

        Raises:
            RemediationError: The kind has no prompt to fix.
        """

    # -- verification and promotion ----------------------------------------------------------

    def gate(
        self,
        registry: Registry,
        champion: Version,
        challenger: Version,
        settings: Settings,
        recent: Callable[[], pd.DataFrame],
    ) -> GateVerdict:
        """The promotion gate: ``challenger`` against the pre-incident ``champion``."""

    def on_promote(
        self,
        registry: Registry,
        ledger: AliasLedger,
        version: Version,
        settings: Settings,
        *,
        incident_id: str,
        why: str,
    ) -> None:
        """What else serves with a newly promoted version (an LLM's prompt alias and guardrails)."""

"""The model-kind protocol: the questions a stage, an audit or the gateway may ask a kind."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import pandas as pd

    from firebreak.contracts.online import OnlineContract
    from firebreak.settings import Settings


class AnswerGuard(Protocol):
    """What the serving gateway runs on every answer before a user gets it."""

    def reload(self) -> None:
        """Pick up a newly activated version of the guard (called when the alias ledger moves)."""

    def apply(self, frame: pd.DataFrame, outputs: pd.DataFrame) -> dict[int, str]:
        """Replace blocked answers in ``outputs`` in place; returns the blocked rows and the rule that fired.

        Adds a ``guardrail`` column (the rule, or None) for the prediction log.
        """


class ModelKind(Protocol):
    """One kind of model: what its golden set, gate, promotion and serving guard are."""

    name: str

    # -- serving ----------------------------------------------------------------------

    def prepare_contract(self, contract: OnlineContract) -> None:
        """Add to the online contract what a request of this kind must carry beyond the suite."""

    def answer_guard(self, settings: Settings) -> AnswerGuard | None:
        """The guard every served answer goes through, or None."""

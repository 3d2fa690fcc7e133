"""Tabular models: numbers in, a number (and a confidence) out, judged on a labelled golden set."""

from __future__ import annotations

from typing import TYPE_CHECKING

from firebreak.policy.schema import Policy

if TYPE_CHECKING:
    from firebreak.contracts.online import OnlineContract
    from firebreak.kinds.base import AnswerGuard
    from firebreak.settings import Settings


class TabularKind:
    """A tabular model's kind."""

    name = "tabular"

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    # -- serving ----------------------------------------------------------------------

    def prepare_contract(self, contract: OnlineContract) -> None:
        """The suite already names every input."""

    def answer_guard(self, settings: Settings) -> AnswerGuard | None:
        return None

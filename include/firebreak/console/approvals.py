"""Promotions waiting for a human: what the console shows and how it answers them.

SOP stage *Verify*, the approval step: where a policy requires approval, the run waits on
Airflow's human-in-the-loop task (``ApprovalOperator``) after a passed gate. The state of
that wait lives in Airflow, not in Firebreak's state DB, so the console reaches it through
an :class:`Approvals` adapter: the Airflow plugin's asks Airflow's own HITL REST API with
the viewer's token (so Airflow decides who may answer, and records who did). Without an
adapter the console shows the gate's verdict and the policy's requirement only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from fastapi import Request

from firebreak.incidents.store import Incident


@dataclass(frozen=True)
class PendingApproval:
    """One human-in-the-loop task of the incident's run waiting for an answer."""

    dag_id: str
    task_id: str
    map_index: int
    subject: str
    body: str
    options: list[str]


class Approvals(Protocol):
    async def pending(self, request: Request, incident: Incident) -> list[PendingApproval] | None:
        """The waiting approvals of the incident's run; None when approvals cannot be reached here."""

    async def answer(
        self, request: Request, incident: Incident, task_id: str, map_index: int, choice: str, reason: str
    ) -> str:
        """Answer one (``approve`` or ``reject``); returns the option chosen.

        Raises:
            ActionRefused: Nothing is waiting there, it was answered already, or Airflow refused.
        """


class NoApprovals:
    """No human-in-the-loop backend: the console shows the waiting state only."""

    async def pending(self, request: Request, incident: Incident) -> list[PendingApproval] | None:
        return None

    async def answer(
        self, request: Request, incident: Incident, task_id: str, map_index: int, choice: str, reason: str
    ) -> str:
        from firebreak.errors import ActionRefused

        raise ActionRefused("approvals cannot be answered from this console: no human-in-the-loop backend")


def option_for(choice: str, options: list[str]) -> str | None:
    """The HITL option meaning ``approve`` or ``reject`` (``ApprovalOperator`` offers Approve / Reject)."""
    return next((o for o in options if o.strip().lower().startswith(choice)), None)

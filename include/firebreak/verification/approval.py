"""The human sign-off after a passed gate: whose answer counts, and what it means.

SOP stage *Verify*, the approver's part. The run waits on Airflow's human-in-the-loop
``ApprovalOperator``; the answer (or its absence by the policy's timeout) is judged here.
Only an ``Approve`` from a permitted person promotes: a rejection, a timeout, someone not
named as an approver, or — when the policy says so — the candidate's own builder leave the
incident ``contained_needs_human`` with traffic on the fallback.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from firebreak.incidents.clock import target_words
from firebreak.policy.schema import Approval

APPROVE, REJECT = "Approve", "Reject"  # the ApprovalOperator's two options


@dataclass(frozen=True)
class ApprovalVerdict:
    approved: bool
    by: str | None
    answer: str  # Approve | Reject | timeout
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def judge_answer(
    rules: Approval, *, chosen: list[str], by: str | None, builder: str | None, timed_out: bool
) -> ApprovalVerdict:
    """What an answer to the approval request means under the policy's rules."""
    if timed_out or not chosen:
        return ApprovalVerdict(
            False, None, "timeout", f"no answer to the approval request within {target_words(rules.timeout)}"
        )
    answer = chosen[0]
    who = by or "an unnamed user"
    if answer != APPROVE:
        return ApprovalVerdict(False, by, answer, f"promotion rejected by {who}")
    if rules.approvers and by not in rules.approvers:
        return ApprovalVerdict(False, by, answer, f"{who} is not a named approver ({', '.join(rules.approvers)})")
    if rules.forbid_builder and builder and by == builder:
        return ApprovalVerdict(
            False, by, answer, f"{who} built the candidate; the policy forbids approving one's own candidate"
        )
    return ApprovalVerdict(True, by, answer, f"approved by {who}")

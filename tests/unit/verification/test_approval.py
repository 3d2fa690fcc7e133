"""Whose answer to the approval request counts, and what it means."""

from __future__ import annotations

from datetime import timedelta

import pytest

from firebreak.policy.schema import Approval
from firebreak.verification.approval import judge_answer

RULES = Approval(approvers=["alice", "mallory"], forbid_builder=True, timeout=timedelta(hours=2))


@pytest.mark.parametrize(
    ("chosen", "by", "timed_out", "approved", "reason"),
    [
        (["Approve"], "alice", False, True, "approved by alice"),
        (["Reject"], "alice", False, False, "promotion rejected by alice"),
        ([], None, True, False, "no answer to the approval request within 2 h"),
        (["Approve"], "eve", False, False, "eve is not a named approver (alice, mallory)"),
        (["Approve"], "mallory", False, False, "mallory built the candidate; the policy forbids approving one's own"),
    ],
    ids=["approve", "reject", "timeout", "not-an-approver", "own-candidate"],
)
def test_only_a_permitted_approve_promotes(
    chosen: list[str], by: str | None, timed_out: bool, approved: bool, reason: str
) -> None:
    verdict = judge_answer(RULES, chosen=chosen, by=by, builder="mallory", timed_out=timed_out)
    assert verdict.approved is approved
    assert verdict.reason.startswith(reason)


def test_the_builder_may_approve_where_the_policy_allows_it() -> None:
    rules = Approval(forbid_builder=False)
    assert judge_answer(rules, chosen=["Approve"], by="mallory", builder="mallory", timed_out=False).approved

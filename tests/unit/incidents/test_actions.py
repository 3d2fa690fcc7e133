"""Every manual action names who acted and why: both required, bounded and made inert."""

from __future__ import annotations

import pytest

from firebreak.errors import ActionRefused
from firebreak.incidents.actions import actor_and_reason


@pytest.mark.parametrize(
    ("by", "reason", "message"),
    [
        ("", "why", "say who acts"),
        ("alice", "  \x00 ", "give a reason"),
        ("x" * 101, "why", "longer than 100 characters"),
        ("alice", "y" * 501, "longer than 500 characters"),
    ],
)
def test_a_name_and_a_reason_are_required_and_bounded(by: str, reason: str, message: str) -> None:
    with pytest.raises(ActionRefused, match=message):
        actor_and_reason(by, reason)


def test_control_characters_never_reach_the_timeline() -> None:
    assert actor_and_reason("alice\x1b[31m", "looking\x00 now\n# heading") == ("alice", "looking now # heading")

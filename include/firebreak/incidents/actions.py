"""The rule every manual action keeps: it names who acted and why.

Every action a person takes from the incident console (acknowledge, force the breaker,
answer an approval) passes its actor and reason through :func:`actor_and_reason` before it
lands on the incident's timeline. Acknowledging itself is the on-call loop's
(:func:`firebreak.oncall.acknowledge.acknowledge`), shared by the shell, REST and the console.
"""

from __future__ import annotations

from firebreak.errors import ActionRefused
from firebreak.inert import clean

MAX_NAME = 100
MAX_REASON = 500


def actor_and_reason(by: str, reason: str) -> tuple[str, str]:
    """A person's name and reason, cleaned and bounded; both are required.

    Raises:
        ActionRefused: The name or the reason is empty or too long.
    """
    name, why = clean(by, MAX_NAME + 1), clean(reason, MAX_REASON + 1)
    if not name:
        raise ActionRefused("say who acts: the acting user's name is empty")
    if len(name) > MAX_NAME:
        raise ActionRefused(f"the acting user's name is longer than {MAX_NAME} characters")
    if not why:
        raise ActionRefused("give a reason: it is recorded on the incident's timeline")
    if len(why) > MAX_REASON:
        raise ActionRefused(f"the reason is longer than {MAX_REASON} characters")
    return name, why

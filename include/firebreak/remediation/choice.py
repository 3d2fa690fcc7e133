"""Which remediation: the on-call's explicit choice, else the policy's choice for the diagnosed class."""

from __future__ import annotations

import shlex
from typing import Any

from firebreak.errors import RemediationError
from firebreak.incidents.enums import Remediation


def choose_remediation(requested: str, diagnosis: dict[str, Any], *, model: str) -> tuple[Remediation, str]:
    """The remediation to run and where the choice came from.

    Raises:
        RemediationError: No automated remediation applies; traffic stays on the fallback for a human.
    """
    choice = requested if requested != "auto" else diagnosis.get("remediation")
    failure = diagnosis.get("failure_class")
    if choice is None:
        message = f"no automated remediation for failure class {failure!r} of {model}; traffic stays on the fallback for a human"
        if failure == "unknown":  # a false alarm looks like this too: say how to undo the containment
            command = (
                f"firebreak route --model {shlex.quote(model)} champion --reason 'checked: healthy' --by YOUR_NAME"
            )
            message += (
                f" (no cause found in the evidence: if the champion is healthy, send traffic back with {command})"
            )
        raise RemediationError(message)
    source = "requested" if requested != "auto" else f"policy for {failure}"
    return Remediation(choice), source

"""Firebreak's errors: one root, one subclass per kind of problem.

Every error names the bad value, so a failed task's log says what to fix.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What the ``firebreak`` command's exit status means, the same for every subcommand."""

    OK = 0
    NOT_FOUND = 1  # the incident, model or state named does not exist
    BAD_INPUT = 2  # unusable flags, files or columns (argparse uses 2 for bad flags too)
    FINDINGS = 3  # asked to fail on findings (--fail-on-drift, --fail-on CLASS) and there were some


class FirebreakError(Exception):
    """Root of every error Firebreak raises on purpose."""


class ConfigurationError(FirebreakError):
    """A setting, path or entry point cannot be used as given."""


class PolicyError(FirebreakError):
    """A model's policy file is missing or invalid."""


class UnknownModelError(FirebreakError):
    """A request names a model that has no policy."""


class IncidentRequestError(FirebreakError):
    """An incident request (DAG params, CLI flags) is malformed."""


class ContractError(FirebreakError):
    """A data contract (Great Expectations suite) cannot be loaded or applied."""


class RoutingConflict(FirebreakError):
    """A compare-and-set on the routing state lost to a concurrent writer."""


class RegistryError(FirebreakError):
    """The model registry refused or lacks what a step needs."""


class RemediationError(FirebreakError):
    """A remediation could not produce a candidate."""


class GateRefused(FirebreakError):
    """The promotion gate refused the candidate; the verdict is already recorded."""


class NotFound(FirebreakError):
    """What a command names (an incident, a state home) does not exist."""


class UpstreamError(FirebreakError):
    """The model server the gateway fronts failed, timed out, or answered what cannot be read."""


class UpstreamUnavailable(UpstreamError):
    """The model server did not answer at all: refused, reset, or past the policy's timeout.

    Unlike an answer it refused (a 500 on one request's rows, a value the gateway cannot
    serve), asking again request by request would only wait again.
    """


class PredictionLogError(FirebreakError):
    """The prediction log or the label store refused an operation (bad rows, bad location)."""


class IncidentNotFound(NotFound):
    """No incident has this id."""


class ActionRefused(FirebreakError):
    """A person's action (acknowledge, force the breaker, answer an approval) cannot be done as asked."""

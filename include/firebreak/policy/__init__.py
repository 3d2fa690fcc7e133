"""Model policies: one validated YAML file per model, the single source of its SOP."""

from firebreak.policy.schema import Policy, load_policy

__all__ = ["Policy", "load_policy"]

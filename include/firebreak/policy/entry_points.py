"""A policy's ``module:function`` entry points (heuristic fallbacks, remediation recipes)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from firebreak.errors import ConfigurationError


def resolve_entry_point(spec: str) -> Callable[..., Any]:
    """The function ``spec`` names as ``module:function``; a ``ConfigurationError`` naming it if it cannot be imported."""
    module_name, _, attr = spec.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)  # type: ignore[no-any-return]
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"entry point {spec!r} cannot be imported: {exc}") from exc

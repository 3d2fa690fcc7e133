"""A policy's entry points (``module:function``: recipes, heuristic fallbacks), resolved when used."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from firebreak.errors import ConfigurationError


def resolve_entry_point(spec: str) -> Callable[..., Any]:
    """The function ``spec`` (``module:function``) names.

    Raises:
        ConfigurationError: The module or the function cannot be imported; the message names ``spec``.
    """
    module_name, _, attr = spec.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)  # type: ignore[no-any-return]
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"entry point {spec!r} cannot be imported: {exc}") from exc

"""Demo scenarios: generated data, training recipes and fallbacks, used by the demo and the tests.

Each scenario is a module here with ``setup(settings) -> dict`` (rebuilds its model's state
from scratch and returns facts: ``model``, ``champion``, ``logged_predictions``,
``labelled``) and ``ALERT``, the incident request the demo opens on it (the fields of the
incident_response trigger form a user or an alert would fill in).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from firebreak.errors import FirebreakError
from firebreak.settings import Settings

# name -> module; `make demo SCENARIO=<name>` and `firebreak demo --scenario <name>`.
SCENARIOS: dict[str, str] = {
    "pricing": "firebreak.scenarios.pricing",
    "support-bot": "firebreak.scenarios.support_bot",
    "skew": "firebreak.scenarios.skew",
    "bad-release": "firebreak.scenarios.bad_release",
    "fairness": "firebreak.scenarios.fairness",
    "feedback": "firebreak.scenarios.feedback",
}


def scenario_module(name: str) -> ModuleType:
    if name not in SCENARIOS:
        raise FirebreakError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    return importlib.import_module(SCENARIOS[name])


def setup(name: str, settings: Settings) -> dict[str, Any]:
    """Rebuild scenario ``name``'s world; returns its facts (model, champion, traffic)."""
    facts: dict[str, Any] = scenario_module(name).setup(settings)
    return facts


def alert(name: str) -> dict[str, Any]:
    """The incident request the demo opens for scenario ``name``."""
    return dict(scenario_module(name).ALERT)

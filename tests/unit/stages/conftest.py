"""Stage tests: each SOP stage called directly, on a SQLite state DB and a real local MLflow.

One pricing world per test module (the scenario's v1 champion, a day of drifted traffic,
labels and feedback); each test opens its own incident in it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass
class World:
    home: Path
    settings: Any  # firebreak.settings.Settings
    facts: dict[str, Any]

    def state(self) -> Any:
        from tests.state import State

        return State(self.settings.state_db_url)

    def registry(self) -> Any:
        from firebreak.registry.mlflow_registry import Registry

        return Registry(self.settings)

    def open(self, dedup_key: str, **conf: Any) -> str:
        """Open an incident for the world's model; returns its id."""
        from firebreak import stages

        request = {"model": self.facts["model"], "description": f"stage test {dedup_key}", **conf}
        opened = stages.open_incident({**request, "dedup_key": dedup_key}, run_id=f"run-{dedup_key}")
        assert opened["replay"] is False
        return str(opened["incident_id"])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The pricing scenario in a FIREBREAK_HOME of the module's own."""
    home = tmp_path_factory.mktemp("stages")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FIREBREAK_HOME", str(home))
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
        from firebreak.scenarios import pricing
        from firebreak.settings import Settings

        settings = Settings.from_env()
        yield World(home, settings, pricing.setup(settings))

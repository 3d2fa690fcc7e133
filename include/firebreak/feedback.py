"""User feedback on predictions (thumbs up/down), and the slices marked as poisoned.

Feedback events: ``request_id``, ``actor_id``, ``ts``, ``thumbs`` (+1 up, -1 down), stored as
Parquet under ``feedback/model=<m>/``. A poisoned slice (actors and a time range) is marked
in ``poisoned.jsonl`` beside them; every read for training or evaluation excludes marked
slices unless asked not to.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from firebreak.model_names import model_stem

COLUMNS = ["request_id", "actor_id", "ts", "thumbs"]


@dataclass(frozen=True)
class PoisonedSlice:
    actors: list[str]
    start: str
    end: str
    reason: str
    marked_by: str


class FeedbackStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _folder(self, model: str) -> Path:
        return self.root / f"model={model_stem(model)}"

    def append(self, model: str, events: pd.DataFrame) -> Path:
        missing = [c for c in COLUMNS if c not in events.columns]
        if missing:
            raise ValueError(f"feedback events lack required columns {missing}")
        if not events["thumbs"].isin([1, -1]).all():
            raise ValueError("feedback 'thumbs' must be +1 (up) or -1 (down)")
        folder = self._folder(model)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"
        events.to_parquet(path, index=False)
        return path

    def read(self, model: str, *, exclude_poisoned: bool = True) -> pd.DataFrame:
        files = sorted(self._folder(model).glob("*.parquet"))
        if not files:
            return pd.DataFrame(columns=COLUMNS)
        frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
        if exclude_poisoned:
            for s in self.poisoned(model):
                inside = frame["actor_id"].isin(s.actors) & frame["ts"].between(
                    pd.Timestamp(s.start), pd.Timestamp(s.end)
                )
                frame = frame[~inside]
        return frame.sort_values("ts", kind="stable").reset_index(drop=True)

    def mark_poisoned(self, model: str, poisoned: PoisonedSlice) -> bool:
        """Record a slice; marking the same slice again changes nothing (returns False)."""
        if poisoned in self.poisoned(model):
            return False
        folder = self._folder(model)
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / "poisoned.jsonl").open("a") as f:
            f.write(json.dumps(asdict(poisoned)) + "\n")
        return True

    def poisoned(self, model: str) -> list[PoisonedSlice]:
        path = self._folder(model) / "poisoned.jsonl"
        if not path.exists():
            return []
        return [PoisonedSlice(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]

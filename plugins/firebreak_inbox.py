"""An event trigger for teams that route alerts through an inbox instead of a webhook.

``AlertInboxTrigger`` watches a directory for ``<source>-*.json`` files (``alertmanager-…``
or ``generic-…``, the same bodies the webhooks accept). Each file is claimed by renaming
it into ``claimed/`` *before* its event is emitted, so a triggerer restart never fires the
same delivery twice. Used as an ``AssetWatcher`` on the asset that schedules the
``alert_intake`` DAG.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

SOURCES = ("alertmanager", "generic")


class AlertInboxTrigger(BaseEventTrigger):
    def __init__(self, directory: str, poll_interval: float = 1.0) -> None:
        super().__init__()
        self.directory = directory
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return ("firebreak_inbox.AlertInboxTrigger", {"directory": self.directory, "poll_interval": self.poll_interval})

    def claim_next(self) -> dict[str, str] | None:
        """Claim the oldest delivery file, or None. Files of unknown sources are set aside, not fired."""
        inbox = Path(self.directory)
        for path in sorted(inbox.glob("*.json"), key=lambda p: (p.stat().st_mtime, p.name)):
            source = path.name.split("-", 1)[0]
            target_dir = inbox / ("claimed" if source in SOURCES else "unknown")
            target_dir.mkdir(parents=True, exist_ok=True)
            target = target_dir / path.name
            try:
                path.rename(target)
            except FileNotFoundError:  # claimed concurrently
                continue
            if source in SOURCES:
                return {"source": source, "file": str(target), "body": target.read_text(errors="replace")}
        return None

    async def run(self) -> AsyncIterator[TriggerEvent]:
        Path(self.directory).mkdir(parents=True, exist_ok=True)
        while True:
            claimed = await asyncio.to_thread(self.claim_next)
            if claimed is not None:
                yield TriggerEvent(claimed)
                return
            await asyncio.sleep(self.poll_interval)

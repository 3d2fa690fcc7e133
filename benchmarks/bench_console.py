"""The incident console's board at 1,000 incidents: server time per request.

Replays the recorded scenario incidents (``firebreak_dev.recorded``) into a fresh SQLite
state DB until it holds ``--incidents`` incidents (each with its real timeline and
evidence), then measures, in one run, the median of ``--repeat`` calls of:

- anchor: one query for the newest 100 incident rows (``IncidentStore.search``), the
  least a page of the board must do;
- the board's read model (``console.queries.board``: one page of incidents with their
  newest stage, their incident-clock marks and the count of matching incidents — three
  queries — plus one routing read per model shown, and each model's policy for the
  clock's targets);
- the board's HTML page and its JSON, through the console's FastAPI app (in process, the
  login check replaced by a constant: the real one verifies one JWT): the first page (the
  newest 100), the last full page (the same work, the deepest offset), and, for
  scale, all 1,000 rows on one page rendered by the same template;
- one incident page, for scale.

Run: ``.venv/bin/python benchmarks/bench_console.py [--incidents 1000] [--repeat 30]``;
prints a Markdown table and the load average.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def median_ms(call: Callable[[], Any], repeat: int) -> float:
    call()  # warm: imports, templates, the engine's first connection
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--incidents", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["FIREBREAK_HOME"] = str(Path(tmp) / "firebreak")
        from fastapi import Request
        from fastapi.testclient import TestClient

        from firebreak.console import views
        from firebreak.console.app import _routes, create_app
        from firebreak.console.auth import Viewer
        from firebreak.console.queries import PER_PAGE, Filters, board
        from firebreak.containment.state import RoutingStore
        from firebreak.incidents.store import IncidentStore
        from firebreak.policy.schema import list_policies
        from firebreak.settings import Settings
        from firebreak_dev.recorded import RECORDING, replay

        settings = Settings.from_env()
        per_copy = len(__import__("json").loads(RECORDING.read_text())["incidents"])
        started = time.perf_counter()
        replayed = replay(settings, copies=math.ceil(args.incidents / per_copy), postmortems=False)
        print(f"replayed {len(replayed)} incidents in {time.perf_counter() - started:.1f} s")
        store, routing = IncidentStore(settings.state_db_url), RoutingStore(settings.state_db_url)

        async def anyone(request: Request, act: bool) -> Viewer:
            return Viewer("bench", can_act=True)

        client = TestClient(create_app(anyone), root_path="")
        incident = replayed[0].incident_id
        policies = list_policies(settings.policies_dir)
        last, viewer = len(replayed) // PER_PAGE, Viewer("bench", can_act=True)

        def everything() -> object:
            routes = _routes(settings, policies)
            return board(store, routing, Filters(), known_models=policies, notify=routes, per_page=len(replayed))

        rows: list[tuple[str, float]] = [
            (
                f"anchor: newest {PER_PAGE} incident rows, one query",
                median_ms(lambda: store.search(limit=PER_PAGE), args.repeat),
            ),
            (
                "board read model, first page (3 queries + a route per model + the policies)",
                median_ms(
                    lambda: board(store, routing, Filters(), known_models=policies, notify=_routes(settings, policies)),
                    args.repeat,
                ),
            ),
            ("board page, HTML (GET /console/)", median_ms(lambda: client.get("/").raise_for_status(), args.repeat)),
            (
                f"board, its last full page, HTML (GET /console/?page={last})",
                median_ms(lambda: client.get(f"/?page={last}").raise_for_status(), args.repeat),
            ),
            (
                "board data, JSON (GET /console/api/incidents)",
                median_ms(lambda: client.get("/api/incidents").raise_for_status(), args.repeat),
            ),
            (
                f"every incident on one page: read model + HTML, {len(replayed)} rows",
                median_ms(lambda: views.board("", viewer, everything(), settings), args.repeat),
            ),
            (
                "one incident page, HTML",
                median_ms(lambda: client.get(f"/incidents/{incident}").raise_for_status(), args.repeat),
            ),
        ]
        shown = len(client.get("/api/incidents").json()["incidents"])
        anchor = rows[0][1]
        print(
            f"\n{len(replayed)} incidents in the state DB, {shown} on the board's first page; median of {args.repeat}\n"
        )
        print("| measurement | median | × anchor |\n|---|---|---|")
        for name, ms in rows:
            print(f"| {name} | {ms:.1f} ms | {ms / anchor:.2f} |")
        print(f"\nload average: {' / '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

"""``firebreak ack ID --by NAME``: take an incident from the shell.

Records the acknowledgement (clock, timeline, escalation stops) and sends the pager its
``acknowledge`` through Airflow's notifiers, where this environment has Airflow and the
connections; without them the acknowledgement is still recorded and the page waits in the
outbox for the run's next step to deliver it, which the command says.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from firebreak.errors import IncidentNotFound
from firebreak.settings import Settings


def add_parser(sub: Any) -> None:
    p = sub.add_parser("ack", help="acknowledge an incident: you take it; escalation stops; the pager hears it")
    p.add_argument("incident_id")
    p.add_argument("--by", required=True, help="who takes it (your name or handle)")
    p.add_argument("--note", default="", help="optional note for the timeline")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from firebreak.oncall.acknowledge import acknowledge  # the state DB (SQLAlchemy): only when acknowledging

    try:
        done = acknowledge(args.incident_id, args.by, via="shell", note=args.note, settings=settings)
    except IncidentNotFound as exc:
        print(f"firebreak: error: {exc}", file=sys.stderr)
        return 1
    result: dict[str, Any] = done.to_dict()
    try:
        from firebreak.oncall.notifiers import deliver_now

        delivered = deliver_now(args.incident_id, settings)
        result["delivered"] = {"sent": delivered.sent, "failed": delivered.failed, "retrying": delivered.pending}
    except ImportError:  # no Airflow here: the run's next step (or the api-server) delivers it
        result["delivered"] = None
    if args.json:
        print(json.dumps(result, indent=2))
    elif done.first:
        print(f"{args.incident_id}: acknowledged by {done.by} at {done.at:%H:%M:%S} UTC; escalation stops.")
        print(_delivery_line(result["delivered"]))
    else:
        print(
            f"{args.incident_id}: already acknowledged by {done.by} at {done.at:%H:%M:%S} UTC; recorded on the timeline."
        )
    return 0


def _delivery_line(delivered: dict[str, int] | None) -> str:
    if delivered is None:
        return "Pager not told from here (no Airflow in this environment): the outbox holds it for the next delivery."
    return f"Notifications: {delivered['sent']} sent, {delivered['failed']} failed, {delivered['retrying']} to retry."

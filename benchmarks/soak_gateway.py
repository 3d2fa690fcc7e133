"""The serving gateway soak (issue 17): 10 minutes at 200 req/s through failure, faults and an adversary.

`firebreak serve --model pricing --workers 2` on a fresh pricing world; open-loop traffic
from 8 legitimate callers (each on its own loopback address) plus one adversarial caller;
a real failure (the season ends: v1 prices under cost) and recovery; two `kill -9`s of
workers; the state DB's write lock held 20 s by another process. The plan and every check
live in `firebreak_dev.soak`; `--short` runs the same checks in under a minute.

Run: `.venv/bin/python benchmarks/soak_gateway.py [--seconds 600] [--rate 200] [--short]`;
prints Markdown (counts, p99 per phase, breaker events, load average) and exits 1 when a
check failed.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
from pathlib import Path

from firebreak_dev.soak import Plan, run


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--short", action="store_true", help="the short plan (under a minute)")
    args = parser.parse_args()
    plan = Plan.short() if args.short else dataclasses.replace(Plan(), rate=args.rate)
    if not args.short and args.seconds != plan.seconds:  # scale every cue with the length
        k = args.seconds / plan.seconds
        plan = dataclasses.replace(
            plan,
            seconds=args.seconds,
            failure=(plan.failure[0] * k, plan.failure[1] * k),
            lock=(plan.lock[0] * k, plan.lock[0] * k + (plan.lock[1] - plan.lock[0])),
            kills=tuple(t * k for t in plan.kills),
        )
    home = Path(tempfile.mkdtemp(prefix="soak-gateway-"))
    print(f"plan: {plan}\nhome: {home}\nload average at the start: {os.getloadavg()}", flush=True)
    report = run(plan, home)
    print(report.markdown())
    problems = report.problems()
    print("\nchecks: " + ("all passed" if not problems else "FAILED: " + "; ".join(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

"""``firebreak serve`` (the gateway) and ``firebreak breaker`` (read or force a model's breaker)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from typing import Any

from firebreak.errors import ConfigurationError
from firebreak.settings import Settings


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="serve a registered model behind the gateway (MLflow scoring protocol at /invocations)",
        description="Contract check, routing, circuit breaker, shadow scoring, prediction log and /metrics "
        "in front of the model's champion. The routing state and breaker are shared with the incident DAG "
        "through the state DB.",
    )
    p.add_argument("--model", required=True, help="registered model name with a policy in include/policies/")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, help="worker processes (each follows the shared state)")
    p.add_argument("--refresh", type=float, default=0.2, help="seconds between reads of the shared state")
    p.add_argument(
        "--breaker-alerts",
        choices=["inbox", "off"],
        default="inbox",
        help="where a breaker trip is reported: a generic alert in the alert inbox (the alert_intake DAG opens "
        "the incident), or off when Prometheus alerts on firebreak_breaker_state instead (one path per deployment, "
        "or one trip opens two incidents)",
    )
    p.add_argument(
        "--upstream",
        metavar="URL",
        help="front a model server the team already runs instead of loading the champion: MLflow's scoring "
        "protocol (http://host:port, `mlflow models serve`) or the Open Inference Protocol v2 "
        "(http://host:port/v2/models/NAME, KServe, MLServer, Triton). The upstream answers as the champion; "
        "timeout and v2 request shape are in the policy (serving.upstream)",
    )
    p.add_argument(
        "--upstream-protocol",
        choices=["auto", "mlflow", "v2"],
        default="auto",
        help="auto: v2 when the URL path holds /v2/models/, MLflow otherwise",
    )
    b = sub.add_parser("breaker", help="show a model's circuit breaker, or force it open / release it")
    b.add_argument("action", choices=["status", "open", "close"])
    b.add_argument("--model", required=True)
    b.add_argument("--reason", default="", help="why (recorded with the change)")


def serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from firebreak.policy.schema import load_policy

    load_policy(args.model, settings.policies_dir)  # a clear error now, not in every worker
    if args.workers < 1:
        raise ConfigurationError(f"--workers must be at least 1, got {args.workers}")
    if not 0.01 <= args.refresh <= 60:
        raise ConfigurationError(f"--refresh must be within 0.01..60 seconds, got {args.refresh}")
    os.environ["FIREBREAK_SERVE_MODEL"] = args.model
    os.environ["FIREBREAK_SERVE_REFRESH"] = str(args.refresh)
    os.environ["FIREBREAK_SERVE_ALERTS"] = args.breaker_alerts
    if args.upstream:
        from firebreak.serving.upstream import UpstreamSpec

        spec = UpstreamSpec.parse(args.upstream, args.upstream_protocol)  # a clear error now, not in every worker
        os.environ["FIREBREAK_SERVE_UPSTREAM"] = spec.url
        os.environ["FIREBREAK_SERVE_UPSTREAM_PROTOCOL"] = spec.protocol
    else:
        os.environ.pop("FIREBREAK_SERVE_UPSTREAM", None)
    os.environ["FIREBREAK_SERVE_DRAINER"] = "process"
    multiproc = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # The workers and the drainer process each write their metrics here; /metrics sums them.
        multiproc = tempfile.mkdtemp(prefix="firebreak-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = multiproc
    # The background work (logs, shadow, per-row metrics) runs in a process of its own,
    # beside the workers, and finishes what a dead worker or an earlier run left. With an
    # upstream it is the same: the workers journal the upstream's answers like any champion's.
    drainer = subprocess.Popen(
        [sys.executable, "-m", "firebreak.serving.background", "--model", args.model, "--parent", str(os.getpid())]
    )
    fronting = f", champion answered by {os.environ['FIREBREAK_SERVE_UPSTREAM']}" if args.upstream else ""
    print(
        f"firebreak serve: {args.model} on http://{args.host}:{args.port} ({args.workers} worker(s)){fronting}",
        flush=True,
    )
    # A stop (SIGTERM: systemd, Kubernetes, `docker stop`) must reach the `finally` below, which
    # waits for the drainer's last pass. With one worker, uvicorn serves in this process and,
    # once shut down, raises the signal again under the handler it found: the default one
    # would end the process there, before the drainer is awaited (and a container's runtime
    # kills an orphaned drainer with it, its journal undrained).
    if threading.current_thread() is threading.main_thread():  # signals can only be handled there
        signal.signal(signal.SIGTERM, _stop)
    try:
        uvicorn.run(
            "firebreak.serving.app:app_from_env",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            loop="uvloop",
            http="httptools",
            log_level="warning",
            access_log=False,
        )
    finally:
        drainer.terminate()  # after the workers: its last pass drains their sealed journals
        try:
            drainer.wait(timeout=60)
        except subprocess.TimeoutExpired:
            drainer.kill()
        if multiproc:
            shutil.rmtree(multiproc, ignore_errors=True)
    return 0


def _stop(signum: int, _frame: Any) -> None:
    raise SystemExit(0)  # a clean stop: unwinds through serve()'s `finally`


def breaker(args: argparse.Namespace, settings: Settings) -> int:
    """Force a model's breaker open (all gateway workers obey within their refresh), or release it."""
    from firebreak.containment.operator import force_breaker
    from firebreak.containment.state import RoutingStore
    from firebreak.policy.schema import load_policy

    load_policy(args.model, settings.policies_dir)
    store = RoutingStore(settings.state_db_url)
    row = store.get_breaker(args.model)
    if args.action != "status":
        reason = args.reason or f"forced {args.action} by an operator"
        row = force_breaker(store, args.model, args.action, by="firebreak breaker", reason=reason)
    print(
        json.dumps(
            row.__dict__ if row else {"model": args.model, "state": "closed", "recorded": False}, default=str, indent=2
        )
    )
    return 0

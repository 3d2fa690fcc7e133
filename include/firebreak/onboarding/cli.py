"""The commands that put a team's own model under Firebreak, and open an incident from the shell.

``firebreak onboard``, ``check``, ``policy validate`` and ``open`` (a team's own logs and
labels come in through ``firebreak log import`` and ``labels import``,
:mod:`firebreak.prediction_log_cli`). Bad input exits 2 naming the problem (``firebreak.cli`` maps every
``FirebreakError``); ``check`` exits 1 when a part is missing; ``open`` exits 0 when the
incident resolved, 3 when it ended ``contained_needs_human`` (a person takes it from
there), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from firebreak.incidents.enums import FailureClass, Remediation, Severity
from firebreak.policy.metrics import TASK_METRICS
from firebreak.settings import Settings

COMMANDS = frozenset({"onboard", "check", "policy", "open"})
EXIT_CONTAINED = 3


def add_parsers(sub: Any) -> None:
    """Register the commands on the ``firebreak`` parser's subparsers."""
    p = sub.add_parser(
        "onboard",
        help="put a model already registered in MLflow under Firebreak: policy, contract, golden set, baselines, fallback",
        description="Profiles the reference table and writes, for review, the policy (FIREBREAK_POLICIES_DIR/<model>.yaml), "
        "the contract and golden set beside it, and the training rows under FIREBREAK_HOME/data; records the "
        "champion's golden baseline, its drift reference and a containment fallback in MLflow.",
    )
    p.add_argument("--model", required=True, help="registered model name, as MLflow spells it")
    p.add_argument("--reference", required=True, type=Path, help="labelled reference table (Parquet, CSV, JSON lines)")
    p.add_argument("--label", required=True, help="ground-truth column of the reference")
    p.add_argument(
        "--output", default="prediction", help="prediction column in your serving logs (default: prediction)"
    )
    p.add_argument("--confidence", help="confidence column in your serving logs, if they carry one")
    p.add_argument("--protected", help="protected attribute: per-group baselines and fairness limits")
    p.add_argument(
        "--positive-class", help="with --protected, for a model answering class names: the class that selects"
    )
    p.add_argument("--lineage", nargs="*", default=[], help="lineage columns (upstream source, pipeline version)")
    p.add_argument("--version", help="version to onboard (default: champion, else the newest)")
    p.add_argument("--force", action="store_true", help="overwrite files an earlier onboarding wrote")
    p.add_argument(
        "--fallback", choices=["auto", "disable"], default="auto", help="auto: last-known-good or a baseline"
    )
    p.add_argument("--task", choices=["classification", "regression"], help="default: inferred from the label")
    p.add_argument("--metric", choices=[m for metrics in TASK_METRICS.values() for m in metrics])
    p.add_argument(
        "--allow-weak-baseline",
        action="store_true",
        help="record the champion's golden figures even when a constant answer scores as well",
    )
    p.add_argument("--json", action="store_true")

    c = sub.add_parser(
        "check", help="exercise every part an incident of a model needs; non-zero naming what is missing"
    )
    c.add_argument("model")
    c.add_argument("--json", action="store_true")

    pol = sub.add_parser("policy", help="policy files")
    pol_sub = pol.add_subparsers(dest="policy_command", required=True)
    v = pol_sub.add_parser("validate", help="check a policy file against the schema without running anything")
    v.add_argument("file", type=Path)

    o = sub.add_parser("open", help="open an incident: runs the real incident_response DAG on the embedded Airflow")
    o.add_argument("--model", required=True)
    o.add_argument("--failure-type", choices=[c.value for c in FailureClass], default="unknown")
    o.add_argument("--severity", choices=["auto", *(s.value for s in Severity)], default="auto")
    o.add_argument("--description", default="")
    o.add_argument("--remediation", choices=["auto", *(r.value for r in Remediation)], default="auto")
    o.add_argument("--dry-run", action="store_true")
    o.add_argument("--json", action="store_true", help="print the outcome as JSON")


def run(args: argparse.Namespace, settings: Settings, summary: Callable[[str, Settings], str]) -> int:
    """Run one of :data:`COMMANDS`; ``summary`` prints an incident (``firebreak.cli.summary``)."""
    if args.command == "onboard":
        return _onboard(args, settings)
    if args.command == "check":
        return _check(args, settings)
    if args.command == "policy":
        return _validate(args.file, settings)
    return _open(args, settings, summary)


def _print(payload: dict[str, Any], lines: list[str], as_json: bool) -> None:
    print(json.dumps(payload, indent=2, default=str) if as_json else "\n".join(lines))


def _onboard(args: argparse.Namespace, settings: Settings) -> int:
    from firebreak.onboarding.onboard import OnboardRequest, onboard

    request = OnboardRequest(
        model=args.model,
        reference=args.reference,
        label=args.label,
        output=args.output,
        confidence=args.confidence,
        protected=args.protected,
        positive_class=args.positive_class,
        lineage=tuple(args.lineage),
        version=args.version,
        force=args.force,
        fallback=args.fallback,
        task=args.task,
        metric=args.metric,
        allow_weak_baseline=args.allow_weak_baseline,
    )
    done = onboard(request, settings)
    _print(done.to_dict(), done.lines(), args.json)
    return 0


def _check(args: argparse.Namespace, settings: Settings) -> int:
    from firebreak.onboarding.check import check

    report = check(args.model, settings)
    _print(report.to_dict(), report.lines(), args.json)
    return 0 if report.ok else 1


def _validate(path: Path, settings: Settings) -> int:
    from firebreak.errors import PolicyError
    from firebreak.policy.schema import parse_policy

    if not path.is_file():
        raise PolicyError(f"{path} does not exist")
    policy = parse_policy(path)
    missing = []
    for label, ref in (("contract", policy.contract), ("golden", policy.golden), ("training", policy.training.dataset)):
        if not settings.resolve(ref).is_file():
            missing.append(f"{label} {settings.resolve(ref)}")
    recipe = f"recipe {policy.training.recipe}" if policy.training.recipe else "refit of the champion (no recipe)"
    print(f"{path}: valid policy for {policy.model!r} ({policy.task}, gate on {policy.gate.metric}, {recipe})")
    for item in missing:
        print(f"  missing: {item}")
    return 1 if missing else 0


def _open(args: argparse.Namespace, settings: Settings, summary: Callable[[str, Settings], str]) -> int:
    import uuid

    from firebreak.embedded import migrate, run_incident
    from firebreak.incidents.identity import incident_id_from_conf
    from firebreak.incidents.request import IncidentRequest
    from firebreak.policy.schema import load_policy

    conf = {
        "model": args.model,
        "failure_type": args.failure_type,
        "severity": args.severity,
        "description": args.description,
        "remediation": args.remediation,
        "dry_run": args.dry_run,
        "dedup_key": f"cli-open-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}",
    }
    IncidentRequest.from_conf(conf)  # a bad request is refused here, before Airflow starts
    load_policy(args.model, settings.policies_dir)
    incident_id = incident_id_from_conf(conf, "")
    started = time.perf_counter()
    migrated = migrate(settings)
    if migrated.returncode != 0:
        print(migrated.stdout[-2000:], migrated.stderr[-4000:])
        return 1
    log_path = settings.home / "incidents" / f"{incident_id}.airflow.log"
    if not args.json:
        print(f"firebreak open: incident {incident_id} for {args.model} (incident_response, run id = incident id) ...")
    returncode = run_incident(conf, settings, log_path, run_id=incident_id)
    seconds = round(time.perf_counter() - started, 1)
    report = incident_report(incident_id, settings)
    report |= {"dag_exit_code": returncode, "seconds": seconds, "airflow_log": str(log_path)}
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print(summary(incident_id, settings))
        print(f"\nDAG run finished in {seconds} s (exit {returncode}); Airflow output: {log_path}")
    status = report.get("status")
    return 0 if status == "resolved" else EXIT_CONTAINED if status == "contained_needs_human" else 1


def incident_report(incident_id: str, settings: Settings) -> dict[str, Any]:
    """An incident's outcome, machine-readable: status, diagnosis, remediation, gate, aliases, route."""
    from firebreak.containment.state import RoutingStore
    from firebreak.incidents.enums import EvidenceKind
    from firebreak.incidents.store import IncidentStore
    from firebreak.registry.mlflow_registry import Registry

    store = IncidentStore(settings.state_db_url)
    incident = store.get_incident(incident_id)
    if incident is None:
        return {"incident_id": incident_id, "status": None, "error": "the run opened no incident (see the Airflow log)"}
    ev = store.get_evidence(incident_id)
    diagnosis = ev.get(EvidenceKind.DIAGNOSIS, {})
    candidate = ev.get(EvidenceKind.CANDIDATE, {})
    gate = ev.get(EvidenceKind.GATE, {})
    routing = RoutingStore(settings.state_db_url).get_routing(incident.model)
    return {
        "incident_id": incident.id,
        "model": incident.model,
        "status": str(incident.status),
        "outcome": incident.outcome,
        "severity": incident.severity and str(incident.severity),
        "failure_class": incident.failure_class,
        "diagnosis": {"failure_class": diagnosis.get("failure_class"), "root_cause": diagnosis.get("root_cause")},
        "remediation": {
            "choice": ev.get(EvidenceKind.REMEDIATION_CHOICE, {}).get("choice"),
            "candidate_version": candidate.get("version"),
            "detail": candidate.get("detail"),
        },
        "gate": {"passed": gate.get("passed"), "summary": gate.get("summary"), "checks": gate.get("checks", [])},
        "aliases": Registry(settings).aliases(incident.model),
        "route": routing.route if routing else None,
        "postmortem": ev.get(EvidenceKind.POSTMORTEM, {}).get("path"),
    }

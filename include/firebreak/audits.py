"""Scheduled audits: find incidents before users do.

``golden_dataset_audit`` checks one model's champion the way an incident would, without
one: its golden dataset against the baseline recorded for it, the Great Expectations
contract on the last day of logged inputs, and drift of that day against the champion's
training data. Evidence goes to an MLflow run (experiment ``firebreak-audits``). A breach
yields an incident request whose dedup key names the model, the day and the breached
checks, so the same breach never opens two incidents.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from firebreak.incidents.enums import FailureClass
from firebreak.incidents.identity import incident_id_for
from firebreak.settings import Settings

AUDIT_EXPERIMENT = "firebreak-audits"
# What a breached check suggests the incident is; the incident's own diagnosis decides.
FAILURE_FOR_CHECK = {"contract": FailureClass.SKEW, "golden": FailureClass.BAD_RELEASE, "drift": FailureClass.DRIFT}


@dataclass(frozen=True)
class Finding:
    check: str
    breached: bool | None  # None: not applicable to this model
    summary: str
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditResult:
    audit: str
    model: str
    day: str
    champion_version: str
    findings: list[Finding]
    mlflow_run_id: str

    @property
    def breaches(self) -> list[Finding]:
        return [f for f in self.findings if f.breached]

    def incident_request(self) -> dict[str, Any] | None:
        """The incident_response run to open (``trigger_run_id`` + ``conf``), or None when all is well."""
        if not self.breaches:
            return None
        checks = sorted(f.check for f in self.breaches)
        dedup_key = f"audit:{self.audit}:{self.day}:{'+'.join(checks)}"
        first = FAILURE_FOR_CHECK.get(checks[0], FailureClass.UNKNOWN)
        failure = first if len(checks) == 1 else FailureClass.UNKNOWN
        return {
            "trigger_run_id": incident_id_for(self.model, dedup_key),
            "conf": {
                "model": self.model,
                "failure_type": failure.value,
                "severity": "auto",
                "description": f"{self.audit} {self.day}: " + "; ".join(f.summary for f in self.breaches),
                "remediation": "auto",
                "dry_run": False,
                "dedup_key": dedup_key,
            },
        }

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "incident": self.incident_request()}


def golden_dataset_audit(model: str, *, settings: Settings | None = None, now: datetime | None = None) -> AuditResult:
    """The nightly audit of one model's champion (see the module docstring)."""
    from firebreak.contracts.validation import validate_frame
    from firebreak.detection.drift import run_drift_report
    from firebreak.detection.stats import compute_drift, sample_for_report
    from firebreak.errors import RegistryError
    from firebreak.incidents.enums import Alias
    from firebreak.incidents.store import StateStore
    from firebreak.investigation.evaluation import evaluate_golden
    from firebreak.policy.schema import load_policy
    from firebreak.prediction_log import PredictionLog
    from firebreak.registry.mlflow_registry import Registry

    settings = settings or Settings.from_env()
    now = now or datetime.now(UTC)
    day = now.date().isoformat()  # one audit verdict per model and day: the dedup key's day
    policy = load_policy(model, settings.policies_dir)
    registry = Registry(settings, StateStore(settings.state_db_url))
    champion = registry.version_for(model, Alias.CHAMPION)
    if champion is None:
        raise RegistryError(f"model {model!r} has no '{Alias.CHAMPION}' version to audit")
    findings: list[Finding] = []

    golden = evaluate_golden(registry, champion, settings, policy)
    findings.append(
        Finding(
            "golden",
            golden["regressed"],
            f"golden MAE {golden['figures']['mae']} vs baseline {golden['baseline'].get('mae')} "
            f"(limit {golden['limit_mae']:.4g})",
            golden,
        )
    )

    last_day = PredictionLog(settings.prediction_log_dir).read_window(model, 24, now=now)
    columns = [c for c in [*policy.features.inputs, *policy.features.lineage] if c in last_day.columns]
    out = settings.evidence_dir / "audits" / f"golden_dataset-{model}-{day}"
    out.mkdir(parents=True, exist_ok=True)
    if last_day.empty:
        findings.append(Finding("contract", None, "no logged traffic in the last 24 h"))
        findings.append(Finding("drift", None, "no logged traffic in the last 24 h"))
    else:
        contract = validate_frame(
            last_day[columns], settings.resolve(policy.contract), result_json_path=out / "contract.json"
        )
        findings.append(Finding("contract", not contract.passed, contract.summary(), contract.to_dict()))
        reference = registry.reference_frame(champion)
        drift = compute_drift(
            reference,
            last_day,
            columns=policy.features.inputs,
            categorical=policy.features.categorical,
            drift_share=policy.detection.drift_share,
        )
        stratify = policy.features.categorical[0] if policy.features.categorical else None
        run_drift_report(
            sample_for_report(reference, stratify=stratify),
            sample_for_report(last_day, stratify=stratify),
            columns=policy.features.inputs,
            categorical=policy.features.categorical,
            html_path=out / "drift_report.html",
            json_path=out / "drift_report.json",
        )
        top = ", ".join(f"{c.column} ({c.score:.3g})" for c in drift.top(3)) or "none"
        findings.append(
            Finding(
                "drift",
                drift.dataset_drift,
                f"{len(drift.drifted_columns)}/{len(drift.columns)} inputs drifted (top: {top})",
                drift.to_dict(),
            )
        )
    findings.append(Finding("fairness", None, "not applicable: the policy names no protected attribute"))

    run = registry.client.create_run(
        registry.experiment_id(AUDIT_EXPERIMENT),
        run_name=f"golden_dataset_audit-{model}-{day}",
        tags={
            "firebreak.audit": "golden_dataset_audit",
            "firebreak.model": model,
            "firebreak.champion": champion.version,
        },
    )
    result = AuditResult("golden_dataset_audit", model, day, champion.version, findings, run.info.run_id)
    (out / "findings.json").write_text(json.dumps(result.to_dict(), indent=2, default=str))
    for path in sorted(out.iterdir()):
        registry.log_evidence(run.info.run_id, path, "audit")
    registry.log_metrics(run.info.run_id, {"breaches": len(result.breaches), "golden_mae": golden["figures"]["mae"]})
    registry.client.set_terminated(run.info.run_id, "FINISHED")
    return result

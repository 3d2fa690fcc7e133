"""The stages of the ``incident_response`` DAG as plain functions.

Each stage takes the incident id (and small JSON-able inputs), does one SOP step,
persists its evidence in the state DB (and artifacts in the incident's MLflow run)
before it decides anything, and returns a small dict. A DAG task wraps exactly one of
these; the CLI and the tests call them directly. Every stage is idempotent: a re-run
after a heartbeat timeout changes nothing that is already done.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, timedelta
from functools import cached_property
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from firebreak.containment.state import RoutingStore
from firebreak.errors import (
    ConfigurationError,
    FirebreakError,
    GateRefused,
    IncidentRequestError,
    RegistryError,
    RemediationError,
    RoutingConflict,
)
from firebreak.incidents.enums import Alias, FailureClass, IncidentStatus, Remediation, Route, Severity
from firebreak.incidents.identity import incident_id_for
from firebreak.incidents.store import Incident, IncidentStore
from firebreak.policy.schema import Policy, load_policy
from firebreak.settings import Settings

if TYPE_CHECKING:
    from firebreak.registry.mlflow_registry import Registry

ACTOR = "incident_response"


class IncidentRequest(BaseModel):
    """What starts an incident: the DAG's params, an alert, or a CLI call."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=64)
    failure_type: FailureClass = FailureClass.UNKNOWN
    severity: Severity | Literal["auto"] = "auto"
    description: str = Field("", max_length=4000)
    remediation: Remediation | Literal["auto"] = "auto"
    dry_run: bool = False
    dedup_key: str | None = Field(None, max_length=255)

    @classmethod
    def from_conf(cls, conf: dict[str, Any]) -> IncidentRequest:
        try:
            return cls.model_validate(conf)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
            )
            raise IncidentRequestError(f"invalid incident request: {problems}") from exc


def incident_id_from_conf(conf: dict[str, Any], run_id: str) -> str:
    """The incident id for a DAG run: from the alert's dedup key, else from the run id."""
    model = str(conf.get("model", "unknown"))
    return incident_id_for(model, str(conf.get("dedup_key") or run_id))


def resolve_entry_point(spec: str) -> Callable[..., Any]:
    module_name, _, attr = spec.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)  # type: ignore[no-any-return]
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"entry point {spec!r} cannot be imported: {exc}") from exc


@dataclass
class Context:
    """Everything a stage needs about one incident, loaded lazily."""

    incident_id: str
    settings: Settings

    @classmethod
    def load(cls, incident_id: str, settings: Settings | None = None) -> Context:
        return cls(incident_id, settings or Settings.from_env())

    @cached_property
    def store(self) -> IncidentStore:
        return IncidentStore(self.settings.state_db_url)

    @cached_property
    def routing(self) -> RoutingStore:
        return RoutingStore(self.settings.state_db_url)

    @cached_property
    def incident(self) -> Incident:
        found = self.store.get_incident(self.incident_id)
        if found is None:
            raise FirebreakError(f"incident {self.incident_id!r} does not exist")
        return found

    @cached_property
    def policy(self) -> Policy:
        return load_policy(self.incident.model, self.settings.policies_dir)

    @cached_property
    def registry(self) -> Registry:
        from firebreak.registry.mlflow_registry import Registry  # mlflow costs ~1.4 s: only when used

        return Registry(self.settings)

    @property
    def model(self) -> str:
        return self.incident.model

    @property
    def mlflow_run(self) -> str:
        """The incident's evidence run in MLflow (opened with the incident)."""
        if not self.incident.mlflow_run_id:
            raise FirebreakError(f"incident {self.incident_id!r} has no MLflow evidence run")
        return self.incident.mlflow_run_id

    @property
    def dry_run(self) -> bool:
        return self.incident.dry_run

    def evidence(self) -> dict[str, dict[str, Any]]:
        return self.store.get_evidence(self.incident_id)

    def record(self, kind: str, payload: dict[str, Any], message: str) -> None:
        """Persist evidence and a timeline line for it."""
        self.store.put_evidence(self.incident_id, kind, payload)
        self.store.add_event(self.incident_id, kind, message)

    def window(self) -> pd.DataFrame:
        from firebreak.prediction_log import PredictionLog

        opened = self.incident.opened_at
        now = opened.replace(tzinfo=UTC) if opened.tzinfo is None else opened
        return PredictionLog(self.settings.prediction_log_dir).read_window(
            self.model, self.policy.detection.window_hours, now=now + timedelta(minutes=1)
        )

    def labelled_window(self) -> pd.DataFrame:
        from firebreak.prediction_log import LabelStore

        return LabelStore(self.settings.labels_dir).join(self.model, self.window(), self.policy.features.label)

    def golden(self) -> pd.DataFrame:
        from firebreak.investigation.evaluation import load_golden

        return load_golden(self.settings, self.policy)

    def artifact_dir(self) -> Path:
        path = self.settings.evidence_dir / self.incident_id
        path.mkdir(parents=True, exist_ok=True)
        return path


# -- detect and open ---------------------------------------------------------------------


def open_incident(conf: dict[str, Any], *, run_id: str, settings: Settings | None = None) -> dict[str, Any]:
    """SOP stage *Detect & open*: validate the request, then open (or find) the incident.

    Raises before anything is written when the request or the model's policy is bad.
    Returns ``replay=True`` when the incident already exists under another run or is
    closed: the caller must then change nothing.
    """
    settings = settings or Settings.from_env()
    request = IncidentRequest.from_conf(conf)
    load_policy(request.model, settings.policies_dir)  # UnknownModelError / PolicyError name the problem
    store = IncidentStore(settings.state_db_url)
    from firebreak.registry.mlflow_registry import Registry

    registry = Registry(settings)
    champion = registry.version_for(request.model, Alias.CHAMPION)
    if champion is None:
        raise RegistryError(f"model {request.model!r} has no '{Alias.CHAMPION}' version in the registry")
    incident_id = incident_id_from_conf(conf, run_id)
    created = store.create_incident(
        incident_id=incident_id,
        model=request.model,
        description=request.description,
        dedup_key=request.dedup_key or run_id,
        dag_run_id=run_id,
        dry_run=request.dry_run,
        request=request.model_dump(mode="json"),
    )
    existing = store.get_incident(incident_id)
    assert existing is not None
    if not created and (existing.status.is_final or existing.dag_run_id != run_id):
        store.add_event(
            incident_id, "replay", f"run {run_id} found the incident already {existing.status}: nothing changed"
        )
        return {"incident_id": incident_id, "replay": True, "status": str(existing.status)}
    ctx = Context(incident_id, settings)
    if created:
        run = registry.start_incident_run(incident_id, request.model)
        store.update_incident(incident_id, mlflow_run_id=run)
        ctx.record(
            "opening",
            {"champion_version": champion.version, "request": request.model_dump(mode="json"), "run_id": run_id},
            f"incident opened for {request.model} (champion v{champion.version}): {request.description or 'no description'}",
        )
    return {"incident_id": incident_id, "replay": False, "model": request.model, "dry_run": request.dry_run}


# -- triage and contain ---------------------------------------------------------------------


def triage(incident_id: str) -> dict[str, Any]:
    """SOP stage *Triage*: severity from the policy's matrix and the prediction log's signals."""
    from firebreak.investigation.triage import triage as rank

    ctx = Context.load(incident_id)
    requested = ctx.incident.request.get("severity", "auto")
    result = rank(ctx.window(), ctx.policy, requested=None if requested == "auto" else Severity(requested))
    reported = FailureClass(ctx.incident.request.get("failure_type", "unknown"))
    failure = reported if reported != FailureClass.UNKNOWN else result.provisional_class
    ctx.store.update_incident(incident_id, severity=result.severity, failure_class=failure)
    signals = ", ".join(f"{k}={v:.1%}" for k, v in result.signals.items())
    ctx.record(
        "triage", result.to_dict(), f"triaged {result.severity} ({failure}) on {result.rows} predictions: {signals}"
    )
    return {"severity": str(result.severity), "failure_class": str(failure)}


def contain(incident_id: str) -> dict[str, Any]:
    """SOP stage *Contain*: route the model's traffic to the policy's fallback, by compare-and-set.

    Never waits for root cause. Running it twice (or concurrently) moves the route once.
    """
    from firebreak.detection.performance import evaluate

    ctx = Context.load(incident_id)
    target = Route(ctx.policy.containment.route)
    state = ctx.routing.ensure_routing(ctx.model, Route.CHAMPION, "first seen by incident_response")
    changed = False
    if ctx.dry_run:
        message = f"dry run: would route {ctx.model} from {state.route} to {target}"
    elif state.route == target:
        message = f"{ctx.model} already on {target} (generation {state.generation}); nothing to change"
    else:
        changed = ctx.routing.compare_and_set_route(
            ctx.model,
            expected_generation=state.generation,
            route=target,
            incident_id=incident_id,
            reason=f"contained by {incident_id}",
        )
        now = ctx.routing.get_routing(ctx.model)
        if not changed and (now is None or now.route != target):
            raise RoutingConflict(f"routing of {ctx.model} changed concurrently to {now and now.route}; retry contain")
        message = f"traffic of {ctx.model} moved {state.route} -> {target}: {ctx.policy.containment.description}"
    payload: dict[str, Any] = {
        "route": str(target),
        "changed": changed,
        "previous_route": state.route,
        "description": ctx.policy.containment.description,
        "dry_run": ctx.dry_run,
    }
    breaker = ctx.routing.get_breaker(ctx.model)
    if breaker is not None:  # what the serving gateway's own breaker did before this incident's step
        payload["gateway_breaker"] = {"state": breaker.state, "reason": breaker.reason, "version": breaker.version}
    if target == Route.HEURISTIC and ctx.policy.containment.heuristic and ctx.policy.llm is not None:
        fallback = resolve_entry_point(ctx.policy.containment.heuristic)
        figures, _ = _qa(ctx, lambda frame: fallback(frame, ctx.settings))
        payload["fallback_on_golden_qa"] = figures.to_dict()
    elif target == Route.HEURISTIC and ctx.policy.containment.heuristic:
        fallback = resolve_entry_point(ctx.policy.containment.heuristic)
        labelled = ctx.labelled_window()
        figures = evaluate(lambda frame: fallback(frame, ctx.settings), labelled, ctx.policy)
        payload["fallback_on_recent"] = figures.to_dict()
    if not ctx.dry_run:
        ctx.store.update_incident(incident_id, status=IncidentStatus.CONTAINED)
    ctx.record("containment", payload, message)
    return {"route": str(target), "changed": changed}


# -- investigate ------------------------------------------------------------------------------


def validate_contract(incident_id: str) -> dict[str, Any]:
    """SOP stage *Investigate*: the model's Great Expectations contract on the recent traffic."""
    from firebreak.contracts.validation import validate_frame

    ctx = Context.load(incident_id)
    window = ctx.window()
    columns = [*ctx.policy.features.inputs, *ctx.policy.features.lineage]
    result_path = ctx.artifact_dir() / "contract_result.json"
    result = validate_frame(
        window[[c for c in columns if c in window.columns]],
        ctx.settings.resolve(ctx.policy.contract),
        result_json_path=result_path,
    )
    payload = result.to_dict()
    payload["artifact"] = ctx.registry.log_evidence(ctx.mlflow_run, result_path, "contract")
    ctx.record("contract", payload, result.summary())
    return {"passed": result.passed, "failures": len(result.failures)}


def trace_lineage(incident_id: str) -> dict[str, Any]:
    """SOP stage *Investigate*: every logged prediction traced to an allowed source and pipeline."""
    from firebreak.contracts.validation import load_suite
    from firebreak.investigation.lineage import trace_lineage as trace

    ctx = Context.load(incident_id)
    suite = load_suite(ctx.settings.resolve(ctx.policy.contract))
    allowed = {
        e["kwargs"]["column"]: list(e["kwargs"]["value_set"])
        for e in suite["expectations"]
        if e["type"] == "expect_column_values_to_be_in_set" and e["kwargs"].get("column") in ctx.policy.features.lineage
    }
    missing = [c for c in ctx.policy.features.lineage if c not in allowed]
    if missing:
        raise ConfigurationError(
            f"contract {ctx.policy.contract} has no allowed value set for lineage columns {missing}"
        )
    window = ctx.window()
    start = pd.Timestamp(ctx.incident.opened_at) - pd.Timedelta(hours=ctx.policy.detection.window_hours)
    result = trace(window, allowed, window_start=start.tz_localize("UTC") if start.tzinfo is None else start)
    ctx.record("lineage", result.to_dict(), result.summary())
    return {"passed": result.passed, "groups": len(result.groups)}


def drift_report(incident_id: str) -> dict[str, Any]:
    """SOP stage *Investigate*: drift of recent inputs against the champion's training data.

    Verdicts come from the full-data engine (Evidently's tests and thresholds, every row);
    Evidently's HTML/JSON report, the evidence people read, is built on capped samples.
    """
    from firebreak.detection.drift import run_drift_report
    from firebreak.detection.stats import compute_drift, sample_for_report

    ctx = Context.load(incident_id)
    champion = ctx.registry.get_version(ctx.model, ctx.evidence()["opening"]["champion_version"])
    reference = ctx.registry.reference_frame(champion)
    current = ctx.window()
    features = ctx.policy.features
    result = compute_drift(
        reference,
        current,
        columns=features.inputs,
        categorical=features.categorical,
        drift_share=ctx.policy.detection.drift_share,
    )
    out = ctx.artifact_dir()
    stratify = features.categorical[0] if features.categorical else None
    report = run_drift_report(
        sample_for_report(reference, stratify=stratify),
        sample_for_report(current, stratify=stratify),
        columns=features.inputs,
        categorical=features.categorical,
        html_path=out / "drift_report.html",
        json_path=out / "drift_report.json",
    )
    payload = result.to_dict()
    from firebreak.investigation.evidence import add_drift_checks

    add_drift_checks(payload, reference, current)  # K-S confirmations and unit/scale changes, for diagnose
    payload["report_agrees"] = sorted(report.drifted_columns) == sorted(result.drifted_columns)
    payload["artifacts"] = [
        ctx.registry.log_evidence(ctx.mlflow_run, out / name, "drift")
        for name in ("drift_report.html", "drift_report.json")
    ]
    top = ", ".join(f"{c.column} ({c.method} {c.score:.3g})" for c in result.top(3)) or "none"
    ctx.record(
        "drift", payload, f"drift: {len(result.drifted_columns)}/{len(result.columns)} columns drifted; top: {top}"
    )
    ctx.registry.log_metrics(ctx.mlflow_run, {"drift_share": result.drift_share})
    return {"dataset_drift": result.dataset_drift, "top": [c.column for c in result.top(3)]}


def golden_eval(incident_id: str) -> dict[str, Any]:
    """SOP stage *Investigate*: the champion on its golden dataset against its recorded baseline."""
    from firebreak.investigation.evaluation import evaluate_golden

    ctx = Context.load(incident_id)
    if ctx.policy.llm is not None:
        return golden_qa_eval(ctx)
    champion = ctx.registry.get_version(ctx.model, ctx.evidence()["opening"]["champion_version"])
    payload = evaluate_golden(ctx.registry, champion, ctx.settings, ctx.policy)
    payload["coverage"] = _coverage_gap(ctx.golden(), ctx.window(), ctx.policy)
    payload.update(_against_last_known_good(ctx, champion.version, payload["figures"]["mae"]))
    mae = payload["figures"]["mae"]
    ctx.registry.log_metrics(ctx.mlflow_run, {"golden_mae": mae})
    verdict = "REGRESSED" if payload["regressed"] else "within tolerance"
    ctx.record(
        "golden",
        payload,
        f"golden: champion v{champion.version} MAE {mae} vs baseline {payload['baseline'].get('mae')} ({verdict})",
    )
    return {"regressed": payload["regressed"], "mae": mae}


def _against_last_known_good(ctx: Context, champion: str, champion_mae: float) -> dict[str, Any]:
    """The golden figures of ``last-known-good`` beside the champion's: a release that made things worse."""
    from firebreak.detection.performance import evaluate

    target = ctx.registry.version_for(ctx.model, Alias.LAST_KNOWN_GOOD)
    if target is None or target.version == champion:
        return {}
    figures = evaluate(ctx.registry.load(target).predict, ctx.golden(), ctx.policy)
    limit = figures.mae * (1 + ctx.policy.detection.golden_tolerance)
    return {
        "last_known_good": {"version": target.version, "figures": figures.to_dict(), "limit_mae": round(limit, 4)},
        "regressed_vs_last_known_good": bool(champion_mae > limit),
    }


def _coverage_gap(golden: pd.DataFrame, window: pd.DataFrame, policy: Policy) -> dict[str, float]:
    """Share of recent traffic outside the golden set's range, per numeric input: what the golden set cannot see."""
    gap = {}
    for column in policy.features.numeric:
        if column in window.columns and column in golden.columns and not window.empty:
            lo, hi = golden[column].min(), golden[column].max()
            gap[column] = round(float(((window[column] < lo) | (window[column] > hi)).mean()), 4)
    return gap


# -- diagnose and remediate -------------------------------------------------------------------


def diagnose(incident_id: str) -> dict[str, Any]:
    """SOP stage *Diagnose*: failure class and root cause from the collected evidence."""
    from firebreak.investigation.diagnosis import diagnose as decide

    ctx = Context.load(incident_id)
    ev = ctx.evidence()
    result = decide(
        ctx.policy,
        contract=ev.get("contract", {}),
        lineage=ev.get("lineage", {}),
        drift=ev.get("drift", {}),
        golden=ev.get("golden", {}),
        golden_qa=ev.get("golden_qa"),
        reported=FailureClass(ctx.incident.request.get("failure_type", "unknown")),
        fairness=ev.get("fairness", {}),  # the fairness_audit stage's figures
        feedback=ev.get("feedback", {}),
    )
    ctx.store.update_incident(incident_id, failure_class=result.failure_class)
    ctx.record("diagnosis", result.to_dict(), f"diagnosis: {result.failure_class}: {result.root_cause}")
    return {"failure_class": str(result.failure_class), "remediation": result.remediation and str(result.remediation)}


def choose_remediation(incident_id: str) -> str:
    """SOP stage *Choose remediation*: the form's choice, else the policy's choice for the class."""
    ctx = Context.load(incident_id)
    requested = ctx.incident.request.get("remediation", "auto")
    diagnosis = ctx.evidence().get("diagnosis", {})
    choice = requested if requested != "auto" else diagnosis.get("remediation")
    if choice is None:
        ctx.record("remediation_choice", {"choice": None}, "no automated remediation for this failure class")
        raise RemediationError(
            f"no automated remediation for failure class {diagnosis.get('failure_class')!r} of {ctx.model}; "
            "traffic stays on the fallback for a human"
        )
    source = "requested" if requested != "auto" else f"policy for {diagnosis.get('failure_class')}"
    ctx.record("remediation_choice", {"choice": choice, "source": source}, f"remediation: {choice} ({source})")
    if not ctx.dry_run:
        ctx.store.update_incident(incident_id, status=IncidentStatus.REMEDIATING)
    return str(Remediation(choice))


def _existing_candidate(ctx: Context, kind: Remediation) -> dict[str, Any] | None:
    """A candidate this incident already produced (re-run after a crash): never remediate twice."""
    found = ctx.evidence().get("candidate")
    if found and found.get("remediation") == kind:
        ctx.store.add_event(
            ctx.incident_id, "candidate", f"{kind} already produced candidate {found.get('version')}; reused"
        )
        return found
    return None


def _offer_candidate(
    ctx: Context, kind: Remediation, version: str | None, detail: str, training: dict[str, Any] | None = None
) -> dict[str, Any]:
    payload: dict[str, Any] = {"remediation": str(kind), "version": version, "detail": detail, "dry_run": ctx.dry_run}
    if training:
        payload["training"] = training
    if version is not None and not ctx.dry_run:
        ctx.registry.move_alias(
            ctx.model, Alias.CHALLENGER, version, incident_id=ctx.incident_id, actor=ACTOR, reason=f"{kind}: {detail}"
        )
    ctx.record(
        "candidate",
        payload,
        f"{kind}: {detail}" + (f" -> {ctx.model} v{version} as {Alias.CHALLENGER}" if version else ""),
    )
    return payload


def rollback(incident_id: str) -> dict[str, Any]:
    """SOP stage *Remediate*: offer the ``last-known-good`` version as the candidate."""
    ctx = Context.load(incident_id)
    if found := _existing_candidate(ctx, Remediation.ROLLBACK):
        return found
    target = ctx.registry.version_for(ctx.model, Alias.LAST_KNOWN_GOOD)
    if target is None:
        raise RemediationError(_no_rollback_target(ctx))
    return _offer_candidate(
        ctx, Remediation.ROLLBACK, target.version, f"roll back to {Alias.LAST_KNOWN_GOOD} v{target.version}"
    )


def _no_rollback_target(ctx: Context) -> str:
    """Why there is nothing to roll back to, from the ledger: never a silent pick of another version."""
    moves = [
        e for e in ctx.registry.ledger.entries(ctx.model) if e.alias == Alias.LAST_KNOWN_GOOD and e.status == "applied"
    ]
    last = moves[-1].new_version if moves else None
    if last is None:
        return f"model {ctx.model!r} has no '{Alias.LAST_KNOWN_GOOD}' version to roll back to"
    return (
        f"cannot roll back {ctx.model}: '{Alias.LAST_KNOWN_GOOD}' last pointed at v{last} (alias ledger), "
        f"which is gone from the registry (deleted); no other version is served in its place"
    )


def _register_candidate(
    ctx: Context,
    python_model: Any,
    *,
    reference: pd.DataFrame,
    tags: dict[str, str],
    run_name: str,
    model_config: dict[str, Any] | None = None,
) -> str:
    """Register a remediation's model with its golden figures recorded as the version's baseline."""
    from firebreak.detection.performance import evaluate
    from firebreak.registry.mlflow_registry import TAG_GUARDRAILS, golden_tags

    if model_config is not None:
        python_model.load_context(SimpleNamespace(model_config=model_config))  # as MLflow will on load
    figures: Any
    if ctx.policy.llm is not None:
        figures, _ = _qa(ctx, lambda frame: python_model.predict(None, frame), tags.get(TAG_GUARDRAILS))
    else:
        figures = evaluate(lambda frame: python_model.predict(None, frame), ctx.golden(), ctx.policy)
    example = reference[[ctx.policy.llm.question]] if ctx.policy.llm is not None else reference
    all_tags = {"firebreak.incident_id": ctx.incident_id, **tags, **golden_tags(figures)}
    # A re-run after a crash that came after registering: reuse that version, never a second one.
    found = ctx.registry.registered_by_run(ctx.model, f"{ctx.incident_id}-{run_name}", all_tags)
    if found is not None:
        ctx.store.add_event(
            ctx.incident_id, "candidate", f"v{found.version} was registered by an earlier attempt; reused"
        )
        return found.version
    version = ctx.registry.register(
        ctx.model,
        python_model,
        input_example=example.head(5),
        reference=reference,
        tags=all_tags,
        run_name=f"{ctx.incident_id}-{run_name}",
        model_config=model_config,
    )
    return version.version


def retrain(incident_id: str) -> dict[str, Any]:
    """SOP stage *Remediate*: train the policy's recipe on its dataset and register a challenger."""
    ctx = Context.load(incident_id)
    if found := _existing_candidate(ctx, Remediation.RETRAIN):
        return found
    recipe_name = ctx.policy.training.recipe
    if ctx.dry_run:
        return _offer_candidate(ctx, Remediation.RETRAIN, None, f"dry run: would train {recipe_name}")
    recipe = resolve_entry_point(recipe_name)
    dataset = ctx.settings.resolve(ctx.policy.training.dataset)
    if not dataset.is_file():
        raise RemediationError(f"training dataset {dataset} for {ctx.model} does not exist")
    history = pd.read_parquet(dataset)
    # A recipe that reads more than its dataset (e.g. the feedback store) takes the settings.
    takes_settings = "settings" in inspect.signature(recipe).parameters
    trained = recipe(history, settings=ctx.settings) if takes_settings else recipe(history)
    version = _register_candidate(
        ctx,
        trained,
        reference=history[ctx.policy.features.inputs],
        tags={"firebreak.recipe": recipe_name},
        run_name="retrain",
    )
    training = dict(getattr(trained, "training_summary", None) or {})
    detail = f"retrained with {recipe_name} on {len(history)} rows"
    if "excluded_actors" in training:
        actors = ", ".join(f"{a} ({n})" for a, n in training["excluded_actors"].items()) or "none"
        detail += (
            f"; {training.get('feedback_events')} feedback events used, "
            f"{training.get('excluded_events')} excluded from poisoned slices (actors: {actors})"
        )
    return _offer_candidate(ctx, Remediation.RETRAIN, version, detail, training)


def parameter_update(incident_id: str) -> dict[str, Any]:
    """SOP stage *Remediate*: the champion with the policy's parameter changes, as a new version."""
    ctx = Context.load(incident_id)
    if found := _existing_candidate(ctx, Remediation.PARAMETER_UPDATE):
        return found
    params = dict(ctx.policy.remediation.parameter_update)
    if not params:
        raise RemediationError(f"policy of {ctx.model} sets no remediation.parameter_update")
    if ctx.dry_run:
        return _offer_candidate(ctx, Remediation.PARAMETER_UPDATE, None, f"dry run: would set {params}")
    champion = ctx.registry.get_version(ctx.model, ctx.evidence()["opening"]["champion_version"])
    loaded = ctx.registry.load(champion)
    # The champion's own config stays (an LLM's pinned prompt); the policy's parameters override it.
    config = {**(loaded.model_config or {}), **params}
    version = _register_candidate(
        ctx,
        loaded.unwrap_python_model(),
        reference=ctx.registry.reference_frame(champion),
        tags={"firebreak.parameters": str(params), **_llm_version_tags(champion)},
        run_name="parameter-update",
        model_config=config,
    )
    return _offer_candidate(ctx, Remediation.PARAMETER_UPDATE, version, f"v{champion.version} with {params}")


def upstream_fix(incident_id: str) -> dict[str, Any]:
    """SOP stage *Remediate*: no model change; the upstream owner fixes the data.

    Checks the traffic logged after the incident opened against the contract: when there is
    none yet, or it still breaks the contract, the stage fails and says so (traffic stays on
    the fallback, the incident ends ``contained_needs_human``); when it passes, the fix is the
    candidate the gate verifies.
    """
    from firebreak.contracts.validation import validate_frame

    ctx = Context.load(incident_id)
    if found := _existing_candidate(ctx, Remediation.UPSTREAM_FIX):
        return found
    if ctx.dry_run:
        return _offer_candidate(
            ctx, Remediation.UPSTREAM_FIX, None, "dry run: would wait for fresh traffic to pass the contract"
        )
    fresh = _traffic_since_opened(ctx)
    opened = ctx.incident.opened_at
    if fresh.empty:
        ctx.record(
            "upstream_check",
            {"rows": 0, "since": str(opened), "passed": None},
            f"upstream fix: no traffic logged since the incident opened at {opened:%Y-%m-%d %H:%M} UTC",
        )
        raise RemediationError(
            f"upstream fix not verified: no traffic of {ctx.model} logged since the incident opened at "
            f"{opened:%Y-%m-%d %H:%M} UTC; traffic stays on the fallback until fresh traffic passes the contract"
        )
    columns = [c for c in [*ctx.policy.features.inputs, *ctx.policy.features.lineage] if c in fresh.columns]
    result = validate_frame(fresh[columns], ctx.settings.resolve(ctx.policy.contract))
    lineage = [c for c in ctx.policy.features.lineage if c in fresh.columns]
    sources = fresh.groupby(lineage, dropna=False).size().reset_index(name="rows").to_dict("records") if lineage else []
    ctx.record(
        "upstream_check",
        {"rows": len(fresh), "since": str(opened), "sources": sources, **result.to_dict()},
        f"upstream fix: {len(fresh)} predictions logged since opening: {result.summary()}",
    )
    if not result.passed:
        raise RemediationError(
            f"upstream still broken: {len(fresh)} predictions logged since the incident opened break the "
            f"contract: {result.summary()}"
        )
    shown = ", ".join("/".join(str(g[c]) for c in lineage) + f" ({g['rows']} rows)" for g in sources)
    return _offer_candidate(
        ctx,
        Remediation.UPSTREAM_FIX,
        None,
        f"no model change: {len(fresh)} predictions logged since opening pass the contract ({shown or 'no lineage'})",
    )


def _traffic_since_opened(ctx: Context) -> pd.DataFrame:
    """Prediction-log rows of the incident's model logged after it opened (the window ends at opening)."""
    from firebreak.prediction_log import PredictionLog

    opened = ctx.incident.opened_at
    since = opened.replace(tzinfo=UTC) if opened.tzinfo is None else opened
    return PredictionLog(ctx.settings.prediction_log_dir).read(ctx.model, since=since)


# -- verify, promote, restore -----------------------------------------------------------------


def verify(incident_id: str) -> dict[str, Any]:
    """SOP stage *Verify*: the promotion gate. Records the verdict, then raises if it refused."""
    from firebreak.contracts.validation import validate_frame
    from firebreak.detection.performance import evaluate
    from firebreak.registry.mlflow_registry import TAG_BLOCKED
    from firebreak.verification.gate import evaluate_gate

    ctx = Context.load(incident_id)
    ev = ctx.evidence()
    candidate = ev.get("candidate", {})
    if ctx.dry_run:
        ctx.record("gate", {"passed": None, "dry_run": True}, "dry run: gate not evaluated")
        return {"passed": None}
    if candidate.get("remediation") == Remediation.UPSTREAM_FIX:
        newest = _traffic_since_opened(ctx).tail(200)
        columns = [c for c in [*ctx.policy.features.inputs, *ctx.policy.features.lineage] if c in newest.columns]
        result = validate_frame(newest[columns], ctx.settings.resolve(ctx.policy.contract))
        payload = {
            "passed": result.passed,
            "checks": [
                {
                    "name": "newest traffic passes the contract",
                    "passed": result.passed,
                    "candidate": result.summary(),
                    "limit": "all expectations",
                }
            ],
        }
        ctx.record("gate", payload, f"gate for upstream fix: {result.summary()}")
        if not result.passed:
            raise GateRefused(f"upstream data still breaks the contract: {result.summary()}")
        return {"passed": True}
    if not candidate.get("version"):
        raise GateRefused("no candidate version to verify")
    if ctx.policy.llm is not None:
        return _verify_llm(ctx, candidate)
    champion = ctx.registry.get_version(ctx.model, ev["opening"]["champion_version"])
    challenger = ctx.registry.get_version(ctx.model, candidate["version"])
    golden = ctx.golden()
    recent = ctx.labelled_window()
    champion_model = ctx.registry.load(champion)
    challenger_model = ctx.registry.load(challenger)
    verdict = evaluate_gate(
        ctx.policy.gate,
        candidate_golden=evaluate(challenger_model.predict, golden, ctx.policy),
        champion_golden=evaluate(champion_model.predict, golden, ctx.policy),
        candidate_recent=evaluate(challenger_model.predict, recent, ctx.policy),
        # Both re-scored on the same labelled inputs: the log may hold answers of other versions.
        champion_recent=evaluate(champion_model.predict, recent, ctx.policy),
        blocked=challenger.tags.get(TAG_BLOCKED),
        **_gate_fairness(ctx, recent, champion_model, challenger_model),
    )
    payload = {
        **verdict.to_dict(),
        "summary": verdict.summary(),
        "candidate_version": challenger.version,
        "champion_version": champion.version,
    }
    ctx.record("gate", payload, f"v{challenger.version} vs v{champion.version}: {verdict.summary()}")
    ctx.registry.log_metrics(ctx.mlflow_run, {"gate_passed": float(verdict.passed)})
    if not verdict.passed:
        raise GateRefused(f"promotion gate refused {ctx.model} v{challenger.version}: {verdict.summary()}")
    if ctx.policy.gate.requires_approval:
        # Never promote past a required approval: stop here, contained, and say so.
        raise GateRefused(
            f"gate passed for {ctx.model} v{challenger.version}, but the policy requires a human approval before promotion"
        )
    return {"passed": True, "candidate_version": challenger.version}


def promote(incident_id: str) -> dict[str, Any]:
    """SOP stage *Promote*: the only path that moves ``champion``; every move goes to the ledger."""
    ctx = Context.load(incident_id)
    ev = ctx.evidence()
    candidate = ev.get("candidate", {})
    if ctx.dry_run or not candidate.get("version"):
        reason = "dry run" if ctx.dry_run else "no model change"
        ctx.record("promotion", {"promoted": False, "reason": reason}, f"promotion: nothing to move ({reason})")
        return {"promoted": False}
    old = ev["opening"]["champion_version"]
    new = candidate["version"]
    current = ctx.registry.version_for(ctx.model, Alias.CHAMPION)
    if current is not None and current.version not in {old, new}:
        # Another incident promoted while this one ran: this gate compared against a
        # champion that is gone, so its verdict no longer holds.
        reason = (
            f"{Alias.CHAMPION} of {ctx.model} moved from v{old} to v{current.version} while this incident ran; "
            f"candidate v{new} was verified against v{old} only: re-run the incident to verify against v{current.version}"
        )
        ctx.record("promotion", {"promoted": False, "reason": reason}, f"not promoted: {reason}")
        raise GateRefused(reason)
    why = f"{candidate['remediation']} passed the gate in {incident_id}"
    move = ctx.registry.move_alias
    if candidate["remediation"] != Remediation.ROLLBACK and old != new:
        move(ctx.model, Alias.LAST_KNOWN_GOOD, old, incident_id=incident_id, actor=ACTOR, reason=f"replaced by v{new}")
    move(ctx.model, Alias.CHAMPION, new, incident_id=incident_id, actor=ACTOR, reason=why)
    if ctx.policy.llm is not None:
        _promote_llm(ctx, new, why)
    challenger = ctx.registry.version_for(ctx.model, Alias.CHALLENGER)
    if challenger is not None and challenger.version == new:  # another incident's candidate stays
        move(ctx.model, Alias.CHALLENGER, None, incident_id=incident_id, actor=ACTOR, reason=f"v{new} promoted")
    ctx.record("promotion", {"promoted": True, "from": old, "to": new}, f"{Alias.CHAMPION} v{old} -> v{new}")
    return {"promoted": True, "champion": new}


def restore_traffic(incident_id: str) -> dict[str, Any]:
    """SOP stage *Restore*: traffic back to the champion, only after a passed gate."""
    ctx = Context.load(incident_id)
    state = ctx.routing.ensure_routing(ctx.model, Route.CHAMPION, "first seen by incident_response")
    if ctx.dry_run:
        ctx.record("restore", {"restored": False, "dry_run": True}, "dry run: routing untouched")
        return {"restored": False}
    changed = False
    if state.route != Route.CHAMPION:
        changed = ctx.routing.compare_and_set_route(
            ctx.model,
            expected_generation=state.generation,
            route=Route.CHAMPION,
            incident_id=incident_id,
            reason=f"restored by {incident_id} after the gate passed",
        )
        if not changed:
            raise RoutingConflict(f"routing of {ctx.model} changed concurrently; retry restore_traffic")
    champion = ctx.registry.version_for(ctx.model, Alias.CHAMPION)
    ctx.record(
        "restore",
        {"restored": True, "changed": changed, "champion": champion and champion.version},
        f"traffic of {ctx.model} back on {Alias.CHAMPION} v{champion and champion.version}",
    )
    return {"restored": True}


# -- learn and close -----------------------------------------------------------------------------


def final_status(ctx: Context) -> tuple[IncidentStatus, str]:
    """What the incident ended as, and why, from what the stages recorded."""
    ev = ctx.evidence()
    if ctx.dry_run:
        return IncidentStatus.DRY_RUN, "dry run: investigated and planned, nothing changed"
    if ev.get("restore", {}).get("restored"):
        promo = ev.get("promotion", {})
        how = f"{Alias.CHAMPION} v{promo['from']} -> v{promo['to']}" if promo.get("promoted") else "no model change"
        return IncidentStatus.RESOLVED, f"resolved: {how}; traffic back on {Alias.CHAMPION}"
    why = _why_unresolved(ctx, ev)
    routing = ctx.routing.get_routing(ctx.model)
    if routing is not None and routing.route != Route.CHAMPION:
        return IncidentStatus.CONTAINED_NEEDS_HUMAN, f"traffic stays on {routing.route}; {why}"
    where = f"traffic is on {Alias.CHAMPION}" if routing else "no routing state"
    if routing is not None and routing.incident_id not in {None, ctx.incident_id}:
        where += f" (restored by {routing.incident_id})"
    return IncidentStatus.FAILED, f"{why}; {where}"


def _why_unresolved(ctx: Context, ev: dict[str, dict[str, Any]]) -> str:
    """The most specific reason on record: a failed task's error, a refused promotion or gate."""
    failures = [e for e in ctx.store.events(ctx.incident_id) if e.kind == "task_failed"]
    if failures:
        return failures[-1].message
    if reason := ev.get("promotion", {}).get("reason"):
        return str(reason)
    if ev.get("gate", {}).get("passed") is False:
        return f"promotion gate refused: {ev['gate'].get('summary', 'see the gate evidence')}"
    return "the run ended before traffic was restored"


def write_postmortem(incident_id: str) -> dict[str, Any]:
    """SOP stage *Learn*: render the post-mortem, write it locally and to the incident's MLflow run."""
    from firebreak.postmortem.render import render_postmortem

    ctx = Context.load(incident_id)
    status, why = final_status(ctx)
    text = render_postmortem(
        ctx.incident,
        ctx.policy,
        ctx.evidence(),
        ctx.store.events(incident_id),
        status,
        why,
        ctx.registry.ledger.entries(ctx.model),
        ctx.routing.get_routing(ctx.model),
    )
    path = ctx.settings.postmortem_dir / f"{incident_id}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    uri = ctx.registry.log_evidence(ctx.mlflow_run, path, "postmortem") if ctx.incident.mlflow_run_id else None
    ctx.store.put_evidence(incident_id, "postmortem", {"path": str(path), "artifact": uri})
    ctx.store.add_event(incident_id, "postmortem", f"post-mortem written to {path}")
    return {"path": str(path)}


def close_incident(incident_id: str) -> dict[str, Any]:
    """SOP stage *Close*: the incident's final status, said plainly."""
    ctx = Context.load(incident_id)
    status, why = final_status(ctx)
    ctx.store.update_incident(incident_id, status=status, outcome=why)
    ctx.store.add_event(incident_id, "closed", f"incident {status}: {why}")
    if ctx.incident.mlflow_run_id:
        ctx.registry.client.set_tag(ctx.incident.mlflow_run_id, "firebreak.status", str(status))
        ctx.registry.client.set_terminated(
            ctx.incident.mlflow_run_id, "FINISHED" if status == IncidentStatus.RESOLVED else "FAILED"
        )
    return {"status": str(status), "outcome": why}


def record_task_event(incident_id: str, kind: str, message: str, data: dict[str, Any] | None = None) -> None:
    """Timeline entry from the orchestrator (task started, succeeded, failed); the incident need not exist yet."""
    store = IncidentStore(Settings.from_env().state_db_url)
    store.add_event(incident_id, kind, message, data)


# -- fairness and feedback (investigate, verify) ------------------------------------------------


def fairness_audit(incident_id: str) -> dict[str, Any]:
    """SOP stage *Investigate*: per-group fairness of the decisions users got, on recent labelled traffic.

    Classifiers: selection-rate ratio (four-fifths rule) and equalized-odds difference per the
    policy's ``fairness:`` section (fairlearn); regressors: each group's error. The worst group is named.
    """
    from firebreak.detection.fairness import fairness_on

    ctx = Context.load(incident_id)
    if ctx.policy.fairness is None:
        ctx.record("fairness", {"breached": None}, "fairness: not applicable (the policy names no protected attribute)")
        return {"breached": None}
    labelled = ctx.labelled_window().reset_index(drop=True)
    result = fairness_on(labelled, labelled, ctx.policy)
    payload = result.to_dict()
    ctx.record("fairness", payload, f"fairness: {result.summary}")
    if result.selection_rate_ratio is not None and ctx.incident.mlflow_run_id:
        ctx.registry.log_metrics(
            ctx.mlflow_run,
            {
                "selection_rate_ratio": result.selection_rate_ratio,
                "equalized_odds_difference": result.equalized_odds_difference or 0.0,
            },
        )
    return {"breached": result.breached, "worst": result.worst}


def _gate_fairness(ctx: Context, recent: pd.DataFrame, champion: Any, challenger: Any) -> dict[str, Any]:
    """The gate's fairness inputs: both versions re-scored on the same labelled rows (classifiers only)."""
    from firebreak.detection.fairness import fairness_on, is_classification

    if not is_classification(ctx.policy) or recent.empty:
        return {}
    rows = recent.reset_index(drop=True)
    inputs = rows[ctx.policy.features.inputs]
    return {
        "fairness": ctx.policy.fairness,
        "candidate_fairness": fairness_on(rows, pd.DataFrame(challenger.predict(inputs)), ctx.policy).to_dict(),
        "champion_fairness": fairness_on(rows, pd.DataFrame(champion.predict(inputs)), ctx.policy).to_dict(),
    }


def feedback_review(incident_id: str) -> dict[str, Any]:
    """SOP stage *Investigate*: the feedback loop as evidence — concentration by actor, thumbs-down shift.

    Reads every event, marked slices included, over the window before the incident opened.
    A poisoned slice not yet marked (the incident came before the audit) is marked now, so the
    retrain excludes it; a dry run only reports it. The evidence names the excluded actors and counts.
    """
    from dataclasses import asdict, replace

    from firebreak.audits import assess_feedback
    from firebreak.feedback import FeedbackStore

    ctx = Context.load(incident_id)
    opened = ctx.incident.opened_at
    now = (opened.replace(tzinfo=UTC) if opened.tzinfo is None else opened) + timedelta(minutes=1)
    assessment = assess_feedback(ctx.model, ctx.policy, ctx.settings, now, exclude_poisoned=False)
    if assessment is None:
        ctx.record("feedback", {"poisoned": False, "events": 0}, "feedback: the model has no feedback")
        return {"poisoned": False}
    store = FeedbackStore(ctx.settings.feedback_dir)
    marked_now = False
    found = assessment.poisoned
    if found is not None and not ctx.dry_run:
        covered = any(set(found.actors) <= set(s.actors) for s in store.poisoned(ctx.model))
        if not covered:
            marked_now = store.mark_poisoned(ctx.model, replace(found, marked_by=f"incident {incident_id}"))
    everything = store.read(ctx.model, exclude_poisoned=False)
    clean = store.read(ctx.model)
    excluded = everything.merge(clean, how="left", indicator=True).query("_merge == 'left_only'")
    payload = {
        "poisoned": found is not None,
        "summary": assessment.summary,
        "figures": assessment.figures,
        "slice": asdict(found) if found is not None else None,
        "slice_events": assessment.poisoned_events,
        "marked_slices": [asdict(s) for s in store.poisoned(ctx.model)],
        "marked_by_this_incident": marked_now,
        "events_total": len(everything),
        "excluded_events": len(excluded),
        "excluded_actors": {str(a): int(n) for a, n in excluded["actor_id"].value_counts().sort_index().items()},
    }
    verdict = (
        f"poisoned: {len(found.actors)} actors gave {assessment.poisoned_events} events"
        if found is not None
        else "no poisoning"
    )
    ctx.record("feedback", payload, f"feedback: {verdict}; {assessment.summary}")
    return {"poisoned": found is not None, "excluded_events": len(excluded)}


__all__ = [
    "IncidentRequest",
    "incident_id_from_conf",
    "open_incident",
    "triage",
    "contain",
    "validate_contract",
    "trace_lineage",
    "drift_report",
    "golden_eval",
    "diagnose",
    "choose_remediation",
    "rollback",
    "retrain",
    "parameter_update",
    "upstream_fix",
    "guardrail_rule",
    "verify",
    "promote",
    "restore_traffic",
    "write_postmortem",
    "close_incident",
    "record_task_event",
    "fairness_audit",
    "feedback_review",
]


# -- LLM models: golden Q&A, guardrails, prompts --------------------------------------------------


def _qa(ctx: Context, predict: Callable[[pd.DataFrame], pd.DataFrame], guardrails_version: Any = None) -> Any:
    """``predict``'s served answers (after guardrails: the given version, else the active one) on the golden Q&A set."""
    from firebreak.investigation.evaluation import evaluate_qa, load_qa
    from firebreak.remediation.guardrails import load_guardrails

    version = int(guardrails_version) if guardrails_version not in (None, "") else None
    guardrails = load_guardrails(ctx.policy, ctx.settings, version)
    return evaluate_qa(predict, load_qa(ctx.settings, ctx.policy), ctx.policy, guardrails)


def _llm_version_tags(version: Any) -> dict[str, str]:
    """The prompt and guardrail versions a model version serves with (its tags), to carry over."""
    from firebreak.registry.mlflow_registry import TAG_GUARDRAILS, TAG_PROMPT

    return {k: v for k, v in version.tags.items() if k in {TAG_PROMPT, TAG_GUARDRAILS}}


def _prompt_of(version: Any) -> tuple[str, int]:
    from firebreak.registry.mlflow_registry import TAG_PROMPT

    tag = version.tags.get(TAG_PROMPT)
    if not tag:
        raise RemediationError(f"{version.model} v{version.version} has no '{TAG_PROMPT}' tag naming its prompt")
    name, _, number = str(tag).rpartition("/")
    return name, int(number)


def _qa_limits(policy: Policy) -> dict[str, float]:
    assert policy.llm is not None
    return {
        "max_unauthorised_promise_rate": policy.llm.max_unauthorised_promise_rate,
        "max_hallucination_rate": policy.llm.max_hallucination_rate,
        "min_policy_accuracy": policy.llm.min_policy_accuracy,
    }


def golden_qa_eval(ctx: Context) -> dict[str, Any]:
    """SOP stage *Investigate* for an LLM model: the champion on its golden Q&A set, and the log's guardrail hits.

    The answers judged are the ones users get (the champion's answer after the active
    guardrails): a failure here means users saw it.
    """
    from firebreak.investigation.evaluation import qa_breaches

    assert ctx.policy.llm is not None
    champion = ctx.registry.get_version(ctx.model, ctx.evidence()["opening"]["champion_version"])
    figures, judged = _qa(ctx, ctx.registry.load(champion).predict)
    found = figures.to_dict()
    breaches = qa_breaches(found, ctx.policy)
    bad = judged[judged["promise"] | ~judged["correct"]]
    window = ctx.window()
    hits = window.get("guardrail_rule", pd.Series("", index=window.index)).fillna("").astype(str)
    flagged = window[hits != ""]
    answer = ctx.policy.llm.answer
    payload = {
        "version": champion.version,
        "prompt": champion.tags.get("firebreak.prompt"),
        "figures": found,
        "baseline": ctx.registry.golden_baseline(champion),
        "limits": _qa_limits(ctx.policy),
        "failed": bool(breaches),
        "breaches": breaches,
        "golden_rows": len(judged),
        "failures": [
            {"question": r.question, "kind": r.kind, "answer": r.answer, "promise": bool(r.promise)}
            for r in bad.itertuples()
        ],
        "log": {
            "rows": len(window),
            "guardrail_hits": len(flagged),
            "hit_rate": round(len(flagged) / len(window), 4) if len(window) else 0.0,
            "by_rule": {str(k): int(v) for k, v in hits[hits != ""].value_counts().items()},
            "by_version": {str(k): int(v) for k, v in flagged["model_version"].value_counts().items()},
            "examples": [
                {"question": str(r["question"]), "answer": str(r[answer]), "rule": str(r["guardrail_rule"])}
                for _, r in flagged.drop_duplicates(answer).head(5).iterrows()
            ],
        },
    }
    ctx.registry.log_metrics(
        ctx.mlflow_run,
        {
            "golden_unauthorised_promise_rate": found["unauthorised_promise_rate"],
            "golden_hallucination_rate": found["hallucination_rate"],
            "log_guardrail_hit_rate": payload["log"]["hit_rate"],
        },
    )
    verdict = "FAILED: " + "; ".join(breaches) if breaches else "within limits"
    ctx.record(
        "golden_qa",
        payload,
        f"golden Q&A: champion v{champion.version} ({payload['prompt']}) on {len(judged)} questions: {verdict}; "
        f"guardrail hits in the log: {len(flagged)}/{len(window)}",
    )
    return {"failed": bool(breaches), "unauthorised_promise_rate": found["unauthorised_promise_rate"]}


def _violating_sentences(ev: dict[str, dict[str, Any]]) -> list[str]:
    """The sentences of the incident's own bad answers that made a promise: new exemplars for the semantic check."""
    import re

    out = []
    for failure in ev.get("golden_qa", {}).get("failures", []):
        if failure.get("promise"):
            sentences = re.split(r"(?<=[.!?])\s+", str(failure["answer"]))
            out += [s for s in sentences[1:] if s] or sentences  # the improvised tail, not the grounded answer
    return list(dict.fromkeys(out))


def guardrail_rule(incident_id: str) -> dict[str, Any]:
    """SOP stage *Remediate* for an LLM model: a reviewed prompt version plus new guardrail rules, as a candidate.

    * registers the policy's reviewed prompt (``llm.fixed_prompt``) as a new version in the
      prompt registry and moves the prompt's ``challenger`` alias to it (an alias-ledger row);
    * writes a new guardrail version: the active rules plus ``llm.guardrail_additions`` and the
      incident's own violating sentences as exemplars (the file keeps parent, incident, reason);
    * registers the champion's responder pinned to the new prompt, tagged with both versions.

    Nothing is served until the gate passes and ``promote`` moves the aliases.
    """
    import yaml

    from firebreak.registry.mlflow_registry import llm_tags
    from firebreak.remediation.guardrails import add_rules

    ctx = Context.load(incident_id)
    if found := _existing_candidate(ctx, Remediation.GUARDRAIL_RULE):
        return found
    llm = ctx.policy.llm
    if llm is None:
        raise RemediationError(f"policy of {ctx.model} has no 'llm' section: guardrail_rule applies to LLM models only")
    prompt_path = ctx.settings.resolve(llm.fixed_prompt)
    if not prompt_path.is_file():
        raise RemediationError(f"reviewed prompt {prompt_path} for {ctx.model} does not exist")
    additions: dict[str, Any] = {}
    if llm.guardrail_additions:
        additions_path = ctx.settings.resolve(llm.guardrail_additions)
        if not additions_path.is_file():
            raise RemediationError(f"guardrail additions {additions_path} for {ctx.model} do not exist")
        additions = yaml.safe_load(additions_path.read_text()) or {}
    ev = ctx.evidence()
    exemplars = [*additions.get("exemplars", []), *_violating_sentences(ev)]
    rules = list(additions.get("rules", []))
    if ctx.dry_run:
        detail = f"dry run: would register {prompt_path.name} as a new prompt version and add {len(rules)} rule(s)"
        return _offer_candidate(ctx, Remediation.GUARDRAIL_RULE, None, detail)
    champion = ctx.registry.get_version(ctx.model, ev["opening"]["champion_version"])
    prompt_name, champion_prompt = _prompt_of(champion)
    text = prompt_path.read_text()
    prompt_version = champion_prompt
    if text != ctx.registry.prompt_text(prompt_name, champion_prompt):
        prompt_version = ctx.registry.register_prompt(
            prompt_name, text, commit_message=f"{incident_id}: reviewed prompt {llm.fixed_prompt}"
        )
    ctx.registry.move_prompt_alias(
        ctx.model, prompt_name, str(Alias.CHALLENGER), prompt_version,
        incident_id=incident_id, actor=ACTOR, reason=f"reviewed prompt for {incident_id}",
    )  # fmt: skip
    guardrails_version = add_rules(
        ctx.policy,
        ctx.settings,
        rules=rules,
        exemplars=exemplars,
        incident_id=incident_id,
        reason=f"unauthorised promises found by {incident_id}",
    )
    ctx.store.add_event(
        incident_id,
        "guardrails",
        f"guardrails v{guardrails_version} written: +{len(rules)} rule(s) "
        f"({', '.join(r['id'] for r in rules) or 'none'}), +{len(exemplars)} exemplar(s); served after promotion",
    )
    loaded = ctx.registry.load(champion)
    config = {**(loaded.model_config or {}), "prompt_name": prompt_name, "prompt_version": prompt_version}
    version = _register_candidate(
        ctx,
        loaded.unwrap_python_model(),
        reference=ctx.registry.reference_frame(champion),
        tags={
            **llm_tags(prompt_name, prompt_version, guardrails_version),
            "firebreak.guardrail_rules": ",".join(r["id"] for r in rules),
        },
        run_name="guardrail-rule",
        model_config=config,
    )
    return _offer_candidate(
        ctx,
        Remediation.GUARDRAIL_RULE,
        version,
        f"prompt {prompt_name} v{prompt_version} (was v{champion_prompt}) with guardrails v{guardrails_version}",
    )


def _verify_llm(ctx: Context, candidate: dict[str, Any]) -> dict[str, Any]:
    """The promotion gate of an LLM model: served answers on the golden Q&A set, against the policy's limits."""
    from firebreak.registry.mlflow_registry import TAG_BLOCKED, TAG_GUARDRAILS
    from firebreak.verification.gate import evaluate_qa_gate

    assert ctx.policy.llm is not None
    ev = ctx.evidence()
    champion = ctx.registry.get_version(ctx.model, ev["opening"]["champion_version"])
    challenger = ctx.registry.get_version(ctx.model, candidate["version"])
    champion_figures, _ = _qa(ctx, ctx.registry.load(champion).predict)
    candidate_figures, judged = _qa(ctx, ctx.registry.load(challenger).predict, challenger.tags.get(TAG_GUARDRAILS))
    verdict = evaluate_qa_gate(
        ctx.policy.llm,
        candidate=candidate_figures,
        champion=champion_figures,
        blocked=challenger.tags.get(TAG_BLOCKED),
    )
    wrong = judged[judged["promise"] | ~judged["correct"]]
    payload = {
        **verdict.to_dict(),
        "summary": verdict.summary(),
        "candidate_version": challenger.version,
        "champion_version": champion.version,
        "candidate_failures": [
            {"question": r.question, "kind": r.kind, "answer": r.answer, "promise": bool(r.promise)}
            for r in wrong.itertuples()
        ],
    }
    ctx.record("gate", payload, f"v{challenger.version} vs v{champion.version}: {verdict.summary()}")
    ctx.registry.log_metrics(ctx.mlflow_run, {"gate_passed": float(verdict.passed)})
    if not verdict.passed:
        raise GateRefused(f"promotion gate refused {ctx.model} v{challenger.version}: {verdict.summary()}")
    if ctx.policy.gate.requires_approval:
        raise GateRefused(
            f"gate passed for {ctx.model} v{challenger.version}, but the policy requires a human approval before promotion"
        )
    return {"passed": True, "candidate_version": challenger.version}


def _promote_llm(ctx: Context, version: str, why: str) -> None:
    """The prompt's serving alias and the active guardrails follow the new champion (each a ledger row)."""
    from firebreak.registry.mlflow_registry import TAG_GUARDRAILS
    from firebreak.remediation.guardrails import activate

    assert ctx.policy.llm is not None
    promoted = ctx.registry.get_version(ctx.model, version)
    prompt_name, prompt_version = _prompt_of(promoted)
    ctx.registry.move_prompt_alias(
        ctx.model, prompt_name, ctx.policy.llm.prompt_alias, prompt_version,
        incident_id=ctx.incident_id, actor=ACTOR, reason=why,
    )  # fmt: skip
    if ctx.registry.prompt_version_for(prompt_name, str(Alias.CHALLENGER)) == prompt_version:
        ctx.registry.move_prompt_alias(
            ctx.model, prompt_name, str(Alias.CHALLENGER), None,
            incident_id=ctx.incident_id, actor=ACTOR, reason=f"prompt v{prompt_version} promoted",
        )  # fmt: skip
    if guardrails := promoted.tags.get(TAG_GUARDRAILS):
        activate(
            ctx.policy,
            ctx.settings,
            int(guardrails),
            ledger=ctx.registry.ledger,
            incident_id=ctx.incident_id,
            actor=ACTOR,
            reason=why,
        )

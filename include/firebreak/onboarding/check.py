"""``firebreak check NAME``: is every part an incident needs in place and working?

SOP stage: before any incident (and after every policy change). Each part is exercised,
not just looked for: the policy loads; the contract runs on the training rows; the champion
scores the golden set within its recorded baseline; the drift reference can be read; the
fallback answers; the remediation is dry-run (the recipe imports, or a clone of the champion
fits on a sample of the training rows — nothing is registered). Nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from firebreak.errors import FirebreakError
from firebreak.incidents.enums import Alias, Route
from firebreak.policy.schema import Policy, load_policy
from firebreak.settings import Settings

if TYPE_CHECKING:
    from firebreak.registry.mlflow_registry import Registry, Version

REFIT_SAMPLE_ROWS = 500  # the remediation dry run fits a clone on this many training rows


@dataclass(frozen=True)
class Part:
    """One part of the wiring: whether it works, and what was found."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class CheckReport:
    model: str
    parts: list[Part]

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.parts)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "ok": self.ok, "parts": [asdict(p) for p in self.parts]}

    def lines(self) -> list[str]:
        out = [f"{'ok  ' if p.ok else 'FAIL'}  {p.name:<13} {p.detail}" for p in self.parts]
        failed = [p.name for p in self.parts if not p.ok]
        out.append(f"{self.model}: every part works" if not failed else f"{self.model}: not ready: {', '.join(failed)}")
        return out


def check(model: str, settings: Settings, registry: Registry | None = None) -> CheckReport:
    """Exercise every part an incident of ``model`` needs; a part that fails is named, the others still run."""
    from firebreak.registry.mlflow_registry import Registry

    parts: list[Part] = []
    try:
        policy = load_policy(model, settings.policies_dir)
    except FirebreakError as exc:
        return CheckReport(model, [Part("policy", False, str(exc))])
    parts.append(Part("policy", True, f"{policy.task}, gate on {policy.gate.metric}, route {policy.containment.route}"))
    registry = registry or Registry(settings)
    champion = registry.version_for(model, Alias.CHAMPION)
    steps: list[tuple[str, Callable[[], str]]] = [
        ("champion", lambda: _champion(registry, champion)),
        ("contract", lambda: _contract(policy, settings)),
        ("golden", lambda: _golden(policy, settings, registry, champion)),
        ("drift ref", lambda: _reference(policy, registry, champion)),
        ("fallback", lambda: _fallback(policy, settings, registry)),
        ("remediation", lambda: _remediation(policy, settings, registry, champion)),
    ]
    for name, step in steps:
        parts.append(_run(name, step))
    return CheckReport(model, parts)


def _run(name: str, step: Callable[[], str]) -> Part:
    try:
        return Part(name, True, step())
    except FirebreakError as exc:
        return Part(name, False, str(exc))
    except Exception as exc:  # noqa: BLE001 — a check reports every failure as a missing part, never a traceback
        return Part(name, False, f"{type(exc).__name__}: {str(exc)[:300]}")


def _champion(registry: Registry, champion: Version | None) -> str:
    """The alias is set and its version's artifacts are the ones Firebreak recorded (what every stage loads)."""
    import tempfile

    from firebreak.registry.verification import artifact_digest, check, download

    version = _need(champion)
    with tempfile.TemporaryDirectory(prefix="firebreak-check-") as tmp:
        check(registry, version, artifact_digest(download(registry, version, Path(tmp))))
    return f"v{version.version}, its artifacts as Firebreak recorded them"


def _need(champion: Version | None) -> Version:
    if champion is None:
        raise FirebreakError(f"needs a '{Alias.CHAMPION}' version")
    return champion


def _contract(policy: Policy, settings: Settings) -> str:
    from firebreak.contracts.validation import validate_frame
    from firebreak.remediation.refit import training_rows

    rows = training_rows(policy, settings)
    columns = [c for c in [*policy.features.inputs, *policy.features.lineage] if c in rows.columns]
    result = validate_frame(rows[columns], settings.resolve(policy.contract))
    if not result.passed:
        raise FirebreakError(f"the training rows break the contract: {result.summary()}")
    return f"{result.summary()} (the training rows)"


def _golden(policy: Policy, settings: Settings, registry: Registry, champion: Version | None) -> str:
    from firebreak.investigation.evaluation import evaluate_golden

    version = _need(champion)
    payload = evaluate_golden(registry, version, settings, policy)
    metric = payload["metric"]
    if metric not in payload["baseline"]:
        raise FirebreakError(
            f"v{version.version} has no baseline tag firebreak.golden.{metric} (run `firebreak onboard`)"
        )
    if payload["regressed"]:
        raise FirebreakError(
            f"v{version.version} golden {metric} {payload['value']} is past its baseline "
            f"{payload['baseline'][metric]} (limit {payload['limit']:.4g})"
        )
    return f"v{version.version} {metric} {payload['value']} vs baseline {payload['baseline'][metric]} on {payload['golden_rows']} rows"


def _reference(policy: Policy, registry: Registry, champion: Version | None) -> str:
    version = _need(champion)
    frame = registry.reference_frame(version)
    missing = [c for c in policy.features.inputs if c not in frame.columns]
    if missing:
        raise FirebreakError(f"the drift reference of v{version.version} lacks inputs {missing}")
    return f"{len(frame)} rows on v{version.version}'s run"


def _fallback(policy: Policy, settings: Settings, registry: Registry) -> str:
    from firebreak.detection.performance import evaluate
    from firebreak.investigation.evaluation import load_golden
    from firebreak.policy.entry_points import resolve_entry_point

    route = policy.containment.route
    golden = load_golden(settings, policy)
    metric = policy.gate.metric
    if route == Route.DISABLED:
        return "disabled: requests get 503 while contained"
    if route == Route.HEURISTIC:
        assert policy.containment.heuristic is not None  # the schema requires it for this route
        function = resolve_entry_point(policy.containment.heuristic)
        answers = function(golden[policy.features.inputs].head(20), settings)
        return f"heuristic {policy.containment.heuristic} answered {len(answers)} golden rows"
    version = registry.version_for(policy.model, Alias.FALLBACK)
    if version is None:
        raise FirebreakError(f"route {route} but no '{Alias.FALLBACK}' alias (run `firebreak onboard`)")
    figures = evaluate(registry.predictor(version, policy), golden, policy)
    return f"v{version.version} ({Alias.FALLBACK}) golden {metric} {figures.metric(metric)}"


def _remediation(policy: Policy, settings: Settings, registry: Registry, champion: Version | None) -> str:
    from firebreak.policy.entry_points import resolve_entry_point
    from firebreak.registry.flavors import sklearn_estimator
    from firebreak.remediation.refit import refit, training_rows

    rows = training_rows(policy, settings)
    if policy.training.recipe:
        resolve_entry_point(policy.training.recipe)
        return f"recipe {policy.training.recipe} imports; dataset {len(rows)} rows"
    version = _need(champion)
    estimator = sklearn_estimator(registry.load(version))
    if estimator is None:
        raise FirebreakError(f"v{version.version} is not a scikit-learn model and the policy names no training.recipe")
    sample = rows.sample(min(len(rows), REFIT_SAMPLE_ROWS), random_state=0)
    refit(estimator, policy, sample, sample.iloc[0:0], failure_class=None)  # fitted, never registered
    return f"refit dry run: a clone of v{version.version} fitted on {len(sample)} of {len(rows)} training rows"

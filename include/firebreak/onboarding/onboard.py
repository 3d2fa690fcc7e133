"""``firebreak onboard``: a model already registered in MLflow, put under Firebreak with no code.

SOP stage: before any incident. From the registered version and a labelled reference table
it writes, for review:

* the **policy** ``<FIREBREAK_POLICIES_DIR>/<stem>.yaml`` (commented; loaded back before
  success is reported);
* beside it, ``<stem>/contract.json`` (a Great Expectations suite derived from the reference:
  ranges, category sets, null rates) and ``<stem>/golden.parquet`` (a held-out, stratified
  slice with ground truth);
* ``$FIREBREAK_HOME/data/<stem>/training.parquet``: the reference minus the golden rows,
  what a refit without a recipe trains on;

and records in MLflow what incidents read: the champion's golden figures as
``firebreak.golden.*`` version tags (per group as ``firebreak.golden_groups`` with
``--protected``), the drift reference on its source run (``reference/<model>/v<version>/``: one per version),
the alias ``champion`` when none is set, and the containment fallback (alias ``fallback``).

Bad input names the problem and changes nothing: every check runs before anything is
written, files are staged in a temporary folder and moved into place last, and existing
files are kept unless ``force``.

Its size (about 670 lines) is earned: :func:`onboard` is one transaction-like sequence
(check everything, stage, publish, record), and its steps share the staged state.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import tempfile
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import yaml

from firebreak.errors import FirebreakError
from firebreak.incidents.enums import Alias
from firebreak.model_names import ModelNameError, check_model_name, model_stem
from firebreak.onboarding.baseline import UNNAMED_INPUTS, baseline_notes, measured_slack, noise, refit_figure
from firebreak.onboarding.errors import OnboardingError
from firebreak.onboarding.fallback import FallbackChoice, fit_baseline, fitted_on
from firebreak.onboarding.policy_file import PolicyChoices, render_policy
from firebreak.onboarding.profile import Task, confidence_floor, infer_task, split_golden, split_inputs
from firebreak.policy.schema import Policy, parse_policy, policy_path
from firebreak.settings import Settings

if TYPE_CHECKING:
    from firebreak.detection.performance import Figures
    from firebreak.registry.mlflow_registry import Registry, Version

ACTOR = "firebreak onboard"
NOT_SKLEARN = (
    "the model is not scikit-learn: retrain needs `training: recipe: module:function` (README, "
    "'Put your own model under Firebreak')"
)
TAG_ONBOARDED = "firebreak.onboarded_at"
TAG_FALLBACK_FOR = "firebreak.fallback_for"
TAG_FALLBACK_FITTED_ON = "firebreak.fallback_fitted_on"
TAG_GOLDEN_GROUPS = "firebreak.golden_groups"
_MAX_GROUPS = 50  # per-group baselines kept on the version (a tag holds at most 5000 characters)


@dataclass(frozen=True)
class OnboardRequest:
    """The command line of ``firebreak onboard``."""

    model: str
    reference: Path
    label: str
    output: str = "prediction"
    confidence: str | None = None
    protected: str | None = None
    positive_class: str | None = None
    lineage: tuple[str, ...] = ()
    version: str | None = None
    force: bool = False
    fallback: str = "auto"  # auto | disable
    task: str | None = None
    metric: str | None = None
    allow_weak_baseline: bool = False


@dataclass(frozen=True)
class Onboarded:
    """What onboarding wrote and chose."""

    model: str
    version: str
    task: Task
    files: dict[str, str]
    baseline: dict[str, Any]
    fallback: FallbackChoice
    fallback_figures: dict[str, Any]
    champion_alias_set: bool
    reference_uri: str
    golden_rows: int
    training_rows: int
    inputs: dict[str, list[str]]
    notes: list[str] = field(default_factory=list)
    golden_slack: float = 0.0
    slack_why: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "task": asdict(self.task), "fallback": asdict(self.fallback)}

    def lines(self) -> list[str]:
        """The summary printed for the person who ran it."""
        metric = self.task.metric
        out = [
            f"onboarded {self.model} v{self.version} ({self.task.task}: {self.task.why})",
            f"  inputs        numeric {self.inputs['numeric']}, categorical {self.inputs['categorical']}",
            f"  gate metric   {metric} ({self.task.metric_why})",
            f"  baseline      golden {metric} {self.baseline.get(metric)} on {self.golden_rows} rows held out of "
            f"retraining (tags firebreak.golden.* on v{self.version})",
            f"  golden slack  {self.golden_slack} ({self.slack_why})",
            f"  fallback      {self.fallback.route}: {self.fallback.description}",
            f"                why: {self.fallback.why}",
        ]
        if self.fallback_figures:
            out.append(f"                on the golden set: {metric} {self.fallback_figures.get(metric)}")
        out.append(f"  champion      v{self.version}" + (" (alias set now)" if self.champion_alias_set else ""))
        out.append(f"  drift ref     {self.reference_uri}")
        out += [f"  wrote         {label}: {path}" for label, path in self.files.items()]
        out += [f"  note          {note}" for note in self.notes]
        out.append(f"next: review the files, then `firebreak check {shlex.quote(self.model)}`")
        return out


def onboard(request: OnboardRequest, settings: Settings, registry: Registry | None = None) -> Onboarded:
    """Onboard a registered model (see the module docstring); raises before writing anything on bad input.

    Raises:
        OnboardingError: The model is not registered, the version or a column is missing, the
            reference is empty or unreadable, the model cannot be loaded or cannot score it, or
            files exist and ``force`` is not set.
    """
    from firebreak.registry.flavors import sklearn_estimator, version_predictor
    from firebreak.registry.mlflow_registry import Registry, reference_artifact

    try:
        name = check_model_name(request.model)
    except ModelNameError as exc:
        raise OnboardingError(str(exc)) from exc
    stem = model_stem(name)
    targets = _targets(name, stem, settings)
    existing = [str(p) for p in targets.values() if p.exists()]
    if existing and not request.force:
        raise OnboardingError(f"{name} is already onboarded: {existing} exist (review them, or pass --force)")
    reference = _read_reference(request)
    registry = registry or Registry(settings)
    version, champion_set = _version(registry, name, request.version)
    pyfunc, digest = _load(registry, version)
    inputs, inputs_from = _inputs(pyfunc, reference, request)
    task = _task(pyfunc, reference[request.label], request)
    numeric, categorical = split_inputs(reference, inputs)
    _check_fairness_classes(request, task)
    golden, training = split_golden(reference, request.label, task.task)
    choices = PolicyChoices(
        model=name,
        source=str(request.reference),
        rows=len(reference),
        version=version.version,
        task=task.task,
        task_why=task.why,
        metric=task.metric,
        metric_why=task.metric_why,
        numeric=numeric,
        categorical=categorical,
        label=request.label,
        output=request.output,
        confidence=request.confidence or "confidence",
        confidence_in_logs=request.confidence is not None,
        lineage=list(request.lineage),
        contract=f"policies/{stem}/contract.json",
        golden=f"policies/{stem}/golden.parquet",
        golden_rows=len(golden),
        confidence_floor=0.0,
        floor_why="",
        route="fallback_model",
        fallback_description="",
        dataset=f"data/{stem}/training.parquet",
        golden_slack=noise(task.metric),
        protected=request.protected,
        classification_fairness=task.task == "classification",
        positive_class=request.positive_class,
    )
    from firebreak.investigation.evidence import derive_contract

    predict = version_predictor(pyfunc, _policy(choices))
    outputs = _score(predict, reference[inputs], name, version)
    _check_outputs(outputs, request, task, name, version)
    column = choices.confidence
    floor, floor_why = confidence_floor(outputs[column].to_numpy(dtype=float) if column in outputs else None)
    fallback, fallback_model = _choose_fallback(registry, name, version, request, task, numeric, categorical, training)
    if fallback_model is None and fallback.version is not None:  # last-known-good or an earlier baseline
        fallback_model = _load(registry, registry.get_version(name, fallback.version))
    notes = [] if sklearn_estimator(pyfunc) is not None else [NOT_SKLEARN]
    if inputs_from == "reference":
        notes.append(f"{UNNAMED_INPUTS}: {inputs}")
    choices = replace(
        choices,
        confidence_floor=floor,
        floor_why=floor_why,
        route=fallback.route,
        fallback_description=fallback.description,
        notes=notes,
    )
    policy = _policy(choices)
    figures = _evaluate(predict, golden, policy)
    estimator = sklearn_estimator(pyfunc)
    refit = refit_figure(estimator, training, golden, policy) if estimator is not None else None
    notes += baseline_notes(
        figures,
        golden,
        policy,
        champion=f"{name} v{version.version}",
        refit=refit,
        unnamed_inputs=inputs_from == "reference",
        allow_weak=request.allow_weak_baseline,
    )
    if refit is not None:
        slack, slack_why = measured_slack(refit, policy, figures)
        choices = replace(choices, golden_slack=slack, slack_why=slack_why)
        policy = _policy(choices)
    contract = derive_contract(reference[[*inputs, *request.lineage]], name=f"{stem}_inputs")
    created = [p.parent for p in targets.values() if not p.parent.exists()]
    staged = _stage(targets, render_policy(choices), contract, golden, training)
    published = False
    try:
        parse_policy(staged["policy"])  # what is on disk is what Firebreak will run on
        fallback_figures = _record(
            registry, predict, version, policy, figures, golden, reference[inputs], fallback, fallback_model, training
        )
        if fallback_figures.get("version"):
            fallback = replace(fallback, version=str(fallback_figures.pop("version")))
        if not champion_set:
            registry.move_alias(
                name, Alias.CHAMPION, version.version, incident_id=None, actor=ACTOR, reason="onboarded"
            )
        _publish(staged, targets)
        # Vouched for by the person onboarding, once every other part is in place.
        registry.ledger.record_registered(name, version.version, digest, by=ACTOR)
        published = True
    finally:
        for folder in {p.parent for p in staged.values()}:
            shutil.rmtree(folder, ignore_errors=True)
        if not published:
            for folder in created:
                with contextlib.suppress(OSError):  # only empty folders this call created
                    folder.rmdir()
    return Onboarded(
        model=name,
        version=version.version,
        task=task,
        files={k: str(v) for k, v in targets.items()},
        baseline=figures.to_dict(),
        fallback=fallback,
        fallback_figures=fallback_figures,
        champion_alias_set=not champion_set,
        reference_uri=f"runs:/{version.run_id}/{reference_artifact(version)}",
        golden_rows=len(golden),
        training_rows=len(training),
        inputs={"numeric": numeric, "categorical": categorical},
        notes=notes,
        golden_slack=choices.golden_slack,
        slack_why=choices.slack_why,
    )


# -- the steps ------------------------------------------------------------------------------------


def _targets(name: str, stem: str, settings: Settings) -> dict[str, Path]:
    folder = settings.policies_dir / stem
    return {
        "policy": policy_path(name, settings.policies_dir),
        "contract": folder / "contract.json",
        "golden set": folder / "golden.parquet",
        "training data": settings.data_dir / stem / "training.parquet",
    }


def _read_reference(request: OnboardRequest) -> pd.DataFrame:
    from firebreak.remediation.refit import read_table

    path = request.reference
    if not path.is_file():
        raise OnboardingError(f"reference file {path} does not exist")
    try:
        frame = read_table(path)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise OnboardingError(f"cannot read the reference {path}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 — pyarrow and the CSV parser raise their own types on a corrupt file
        raise OnboardingError(f"cannot read the reference {path}: {type(exc).__name__}: {exc}") from exc
    if frame.empty:
        raise OnboardingError(f"the reference {path} has no rows")
    named = {"--label": [request.label], "--lineage": list(request.lineage)}
    if request.protected:
        named["--protected"] = [request.protected]
    for flag, columns in named.items():
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise OnboardingError(
                f"{flag} column(s) {missing} not in the reference {path} (columns: {', '.join(map(str, frame.columns))})"
            )
    labelled = frame[frame[request.label].notna()].reset_index(drop=True)
    if labelled.empty:
        raise OnboardingError(f"the label column {request.label!r} of {path} has no values")
    return labelled


def _version(registry: Registry, name: str, asked: str | None) -> tuple[Version, bool]:
    """The version to onboard, and whether ``champion`` already points at it."""
    from mlflow.exceptions import MlflowException

    try:
        registry.client.get_registered_model(name)
    except MlflowException as exc:
        raise OnboardingError(
            f"model {name!r} is not registered in MLflow ({registry.settings.mlflow_tracking_uri})"
        ) from exc
    champion = registry.version_for(name, Alias.CHAMPION)
    if asked is not None:
        try:
            version = registry.get_version(name, asked)
        except FirebreakError as exc:
            raise OnboardingError(f"model {name!r} has no version {asked!r}") from exc
        if champion is not None and champion.version != version.version:
            raise OnboardingError(
                f"{Alias.CHAMPION} of {name} is v{champion.version}, not v{version.version}: onboard the champion "
                "(omit --version), or move the alias first"
            )
        return version, champion is not None
    if champion is not None:
        return champion, True
    versions = registry.client.search_model_versions(f"name = '{_quoted(name)}'")
    if not versions:
        raise OnboardingError(f"model {name!r} has no versions")
    newest = max(versions, key=lambda v: int(v.version))
    return registry.get_version(name, str(newest.version)), False


def _quoted(name: str) -> str:
    return name.replace("'", "\\'")


def _load(registry: Registry, version: Version) -> tuple[Any, str]:
    """The version loaded from one downloaded copy, and that copy's digest (recorded when onboarding succeeds)."""
    from firebreak.registry.verification import UnverifiedModel, load_for_adoption

    try:
        return load_for_adoption(registry, version)
    except UnverifiedModel as exc:
        raise OnboardingError(str(exc)) from exc
    except Exception as exc:  # noqa: BLE001 — a model that cannot load fails in many ways (flavor, pickle, deps)
        raise OnboardingError(
            f"cannot load {version.model} v{version.version}: {type(exc).__name__}: {str(exc)[:300]}"
        ) from exc


def _inputs(pyfunc: Any, reference: pd.DataFrame, request: OnboardRequest) -> tuple[list[str], str]:
    """The model's inputs and where they were named: the columns its estimator was fitted on
    (``fitted``), else its signature (``signature``), else the reference's, in its order (``reference``)."""
    from firebreak.registry.flavors import sklearn_estimator

    estimator = sklearn_estimator(pyfunc)
    names: list[str] = [str(c) for c in getattr(estimator, "feature_names_in_", [])]
    source = "fitted"
    if not names:
        schema = pyfunc.metadata.get_input_schema()
        names = [str(n) for n in (schema.input_names() if schema is not None and schema.has_input_names() else [])]
        source = "signature"
    if not names:
        outputs = {request.label, request.output, request.confidence, *request.lineage}
        names = [str(c) for c in reference.columns if c not in outputs]
        source = "reference"
    missing = [c for c in names if c not in reference.columns]
    if missing:
        raise OnboardingError(f"the reference lacks the model's inputs {missing}")
    clash = {request.label, request.output} & set(names)
    if clash:
        raise OnboardingError(f"{sorted(clash)} is an input of the model, not its label or output")
    return names, source


def _binary(classes: list[Any]) -> bool:
    return len(classes) <= 2 and all(c in (0, 1, True, False) for c in classes)


def _check_fairness_classes(request: OnboardRequest, task: Task) -> None:
    """A classifier's fairness figures need to know which answer selects: 0/1, or ``--positive-class``."""
    from firebreak.detection.fairness import decisions

    positive, label = request.positive_class, request.label
    if positive is not None and not (request.protected and task.task == "classification"):
        raise OnboardingError(
            "--positive-class names the selected class of a classifier's fairness figures: it goes with --protected"
        )
    if not request.protected or task.task != "classification":
        return
    if positive is None and not _binary(task.classes):
        raise OnboardingError(
            f"--protected needs 0/1 or true/false labels for the fairness figures, or --positive-class naming the "
            f"class that counts as selected; {label!r} holds {task.classes}"
        )
    if positive is not None and not decisions(pd.Series(task.classes), "label", positive).any():
        raise OnboardingError(f"--positive-class {positive!r} is not a class of {label!r} ({task.classes})")


def _policy(choices: PolicyChoices) -> Policy:
    try:
        return Policy.model_validate(yaml.safe_load(render_policy(choices)))
    except Exception as exc:  # noqa: BLE001 — pydantic's ValidationError: the onboarding input made a bad policy
        raise OnboardingError(f"the policy for {choices.model} would not validate: {exc}") from exc


def _task(pyfunc: Any, label: pd.Series, request: OnboardRequest) -> Task:
    """The task from the label, unless the model says otherwise: a scikit-learn regressor is one
    whatever its label looks like (a severity score from 1 to 10 is whole numbers)."""
    from sklearn.base import is_regressor

    from firebreak.registry.flavors import sklearn_estimator

    task = infer_task(label, task=request.task, metric=request.metric)
    estimator = sklearn_estimator(pyfunc)
    if request.task is None and task.task == "classification" and estimator is not None and is_regressor(estimator):
        stated = infer_task(label, task="regression", metric=request.metric)
        return replace(stated, why=f"the model is a scikit-learn regressor ({type(estimator).__name__}); {task.why}")
    return task


def _check_outputs(outputs: pd.DataFrame, request: OnboardRequest, task: Task, name: str, version: Version) -> None:
    """The model's answers are where the policy will read them, and of the task's kind.

    Raises:
        OnboardingError: The output column is not among the model's outputs;
            or the task was inferred as classification from whole-number labels while the
            model answers with fractions (a regressor that is not scikit-learn's).
    """
    # (A --confidence column may be the serving logs' alone: a model without one is scored without it.)
    if request.output not in outputs.columns:
        shown = [str(c) for c in outputs.columns[:10]]
        raise OnboardingError(
            f"{name} v{version.version} answers with columns {shown}, not {request.output!r}: "
            "name its column with --output"
        )
    import numpy as np

    from firebreak.detection.performance import as_numbers

    answers = outputs[request.output]
    if task.task == "classification" and task.classes:
        answered = pd.Series(pd.unique(answers.dropna()))
        labels = pd.Series(task.classes)
        numbers, label_numbers = as_numbers(answered), as_numbers(labels)
        if numbers is not None and label_numbers is not None:
            shared = bool(np.isin(numbers, label_numbers).any())
        else:
            shared = bool(answered.astype(str).isin(labels.astype(str)).any())
        if len(answered) and not shared:
            raise OnboardingError(
                f"{name} v{version.version} answers {answered.head(5).tolist()}, none of which is a value of "
                f"--label {request.label!r} ({task.classes[:10]}): the label must hold the classes the model "
                "answers (recode it, or name the right --label)"
            )
    if request.task is None and task.task == "classification" and pd.api.types.is_float_dtype(answers):
        values = answers.to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        fractional = values[values != np.round(values)]
        if len(fractional):
            raise OnboardingError(
                f"{task.why}, so it looks like classes, but {name} v{version.version} answers with fractions "
                f"(e.g. {fractional[0]:.4g}): pass --task regression, or --task classification to keep classes"
            )


def _score(predict: Any, inputs: pd.DataFrame, name: str, version: Version) -> pd.DataFrame:
    sample = inputs.head(500).reset_index(drop=True)
    try:
        return predict(sample)
    except Exception as exc:  # noqa: BLE001 — the team's model raises whatever it raises: say it cannot score
        raise OnboardingError(
            f"{name} v{version.version} cannot score the reference: {type(exc).__name__}: {str(exc)[:300]}"
        ) from exc


def _evaluate(predict: Any, golden: pd.DataFrame, policy: Policy) -> Figures:
    from firebreak.detection.performance import evaluate

    return evaluate(predict, golden, policy)


def _choose_fallback(
    registry: Registry,
    name: str,
    version: Version,
    request: OnboardRequest,
    task: Task,
    numeric: list[str],
    categorical: list[str],
    training: pd.DataFrame,
) -> tuple[FallbackChoice, Any]:
    """Disable when asked; last-known-good when it exists; an earlier onboarding's baseline; else a new baseline."""
    if request.fallback == "disable":
        return (
            FallbackChoice(
                "disabled",
                "disable",
                None,
                "asked for (--fallback disable)",
                "feature disabled: requests get 503 until the champion is restored",
            ),
            None,
        )
    lkg = registry.version_for(name, Alias.LAST_KNOWN_GOOD)
    if lkg is not None and lkg.version != version.version:
        return (
            FallbackChoice(
                "fallback_model",
                Alias.LAST_KNOWN_GOOD,
                lkg.version,
                f"v{lkg.version} is {Alias.LAST_KNOWN_GOOD}: the version that served before this champion",
                f"{Alias.LAST_KNOWN_GOOD} v{lkg.version} (alias {Alias.FALLBACK})",
            ),
            None,
        )
    wanted = fitted_on(task.task, request.label, [*numeric, *categorical])
    current = registry.version_for(name, Alias.FALLBACK)
    earlier = current is not None and current.tags.get(TAG_FALLBACK_FOR) == version.version
    if current is not None and earlier and current.tags.get(TAG_FALLBACK_FITTED_ON) == wanted:
        return (
            FallbackChoice(
                "fallback_model",
                "existing",
                current.version,
                f"v{current.version} is the baseline an earlier onboarding of v{version.version} registered",
                f"baseline v{current.version} (alias {Alias.FALLBACK})",
            ),
            None,
        )
    kind = "logistic regression" if task.task == "classification" else "ridge regression"
    model = fit_baseline(task.task, numeric, categorical, training, request.label)
    unlike = (
        f" (the baseline v{current.version} an earlier onboarding registered was fitted for "
        f"{current.tags.get(TAG_FALLBACK_FITTED_ON) or 'a model described nowhere'}, not {wanted})"
        if current is not None and earlier
        else ""
    )
    return (
        FallbackChoice(
            "fallback_model",
            "baseline",
            None,
            f"no {Alias.LAST_KNOWN_GOOD} version: a baseline ({kind} on the same inputs) trained on the "
            f"{len(training)} reference rows outside the golden set{unlike}",
            f"baseline {kind} on the same inputs (alias {Alias.FALLBACK})",
            wanted,
        ),
        model,
    )


def _stage(
    targets: dict[str, Path], policy_text: str, contract: dict[str, Any], golden: pd.DataFrame, training: pd.DataFrame
) -> dict[str, Path]:
    """Every file written in temporary folders beside its target (same file system, so moving is atomic)."""
    staged: dict[str, Path] = {}
    folders: dict[Path, Path] = {}

    def slot(label: str) -> Path:
        target = targets[label]
        target.parent.mkdir(parents=True, exist_ok=True)
        folder = folders.get(target.parent)
        if folder is None:
            folder = Path(tempfile.mkdtemp(prefix=f".onboard-{uuid.uuid4().hex[:8]}-", dir=target.parent))
            folders[target.parent] = folder
        staged[label] = folder / target.name
        return staged[label]

    try:
        slot("policy").write_text(policy_text)
        slot("contract").write_text(json.dumps(contract, indent=2, default=str) + "\n")
        golden.to_parquet(slot("golden set"), index=False)
        training.to_parquet(slot("training data"), index=False)
    except BaseException:
        for folder in folders.values():
            shutil.rmtree(folder, ignore_errors=True)
        raise
    return staged


def _publish(staged: dict[str, Path], targets: dict[str, Path]) -> None:
    """Move the staged files into place, the policy last: a policy never names a file not yet there."""
    for label in [*(k for k in staged if k != "policy"), "policy"]:
        os.replace(staged[label], targets[label])


def _record(
    registry: Registry,
    predict: Any,
    version: Version,
    policy: Policy,
    figures: Figures,
    golden: pd.DataFrame,
    reference_inputs: pd.DataFrame,
    fallback: FallbackChoice,
    fallback_model: Any,
    training: pd.DataFrame,
) -> dict[str, Any]:
    """What incidents read from MLflow: baseline tags, drift reference, the fallback alias.

    ``fallback_model`` is a baseline to register, or the loaded fallback version and its
    digest (an existing version, vouched for here like the champion). Returns the
    fallback's golden figures (with the version it registered, if any).
    """
    from datetime import UTC, datetime

    from firebreak.detection.performance import evaluate
    from firebreak.registry.flavors import version_predictor
    from firebreak.registry.mlflow_registry import golden_tags

    name = version.model
    tags = {**golden_tags(figures), TAG_ONBOARDED: datetime.now(UTC).isoformat(timespec="seconds")}
    groups = _group_baselines(predict, policy, golden)
    if groups:
        tags[TAG_GOLDEN_GROUPS] = json.dumps(groups, sort_keys=True)[:5000]
    registry.set_version_tags(name, version.version, tags)
    registry.record_reference(version, reference_inputs)
    found: dict[str, Any] = {}
    if fallback.route != "fallback_model":
        return found
    target = fallback.version
    if isinstance(fallback_model, tuple):  # an existing version: (loaded model, digest of that copy)
        loaded, digest = fallback_model
        registry.ledger.record_registered(name, str(target), digest, by=ACTOR)
        found = evaluate(version_predictor(loaded, policy), golden, policy).to_dict()
    elif fallback_model is not None:
        inputs = policy.features.inputs
        baseline_figures = evaluate(_object_predictor(fallback_model, policy), golden, policy)
        registered = registry.register(
            name,
            fallback_model,
            input_example=training[inputs].head(5),
            reference=training[inputs],
            tags={
                TAG_FALLBACK_FOR: version.version,
                TAG_FALLBACK_FITTED_ON: fallback.fitted_on,
                **golden_tags(baseline_figures),
            },
            run_name=f"onboard-fallback-v{version.version}",
        )
        target = registered.version
        found = {**baseline_figures.to_dict(), "version": target}
    if target is not None:
        registry.move_alias(
            name, Alias.FALLBACK, target, incident_id=None, actor=ACTOR, reason=f"containment fallback: {fallback.why}"
        )
    return found


def _object_predictor(model: Any, policy: Policy) -> Any:
    from firebreak.registry.flavors import object_predictor

    return object_predictor(model, policy)


def _group_baselines(predict: Any, policy: Policy, golden: pd.DataFrame) -> dict[str, Any]:
    """Per-group golden figures on the policy's metric, for groups with enough rows (``--protected``)."""
    from firebreak.detection.performance import score_outputs

    if policy.fairness is None or policy.fairness.protected_attribute not in golden.columns:
        return {}
    attribute = policy.fairness.protected_attribute
    rows = golden.reset_index(drop=True)
    outputs = predict(rows[policy.features.inputs])
    metric = policy.gate.metric
    found: dict[str, Any] = {}
    for group, part in rows.groupby(attribute, sort=True):
        if len(part) < policy.fairness.min_group_rows or len(found) >= _MAX_GROUPS:
            continue
        figures = score_outputs(outputs.loc[part.index].reset_index(drop=True), part.reset_index(drop=True), policy)
        found[str(group)] = {"rows": len(part), metric: figures.metric(metric)}
    return {"attribute": attribute, "metric": metric, "groups": found}

"""MLflow adapter: versions, aliases (with the ledger), evidence runs.

MLflow keeps no history of alias moves, so every move goes through ``move_alias``,
which writes the append-only ledger around the registry call.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PyFuncModel, PythonModel

from firebreak.errors import RegistryError
from firebreak.model_names import model_stem
from firebreak.policy.schema import Policy
from firebreak.registry.ledger import AliasLedger
from firebreak.registry.verification import check, digest_of, load_verified
from firebreak.settings import Settings

log = logging.getLogger(__name__)

INCIDENT_EXPERIMENT = "firebreak-incidents"
TRAINING_EXPERIMENT = "firebreak-training"
REFERENCE_ARTIFACT = "reference/reference.parquet"

TAG_GOLDEN_PREFIX = "firebreak.golden."
# Set on a version the shadow evaluation found worse than the champion: the gate refuses it.
TAG_BLOCKED = "firebreak.blocked"
# LLM models: the prompt version and guardrail version a model version serves with.
TAG_PROMPT = "firebreak.prompt"
TAG_GUARDRAILS = "firebreak.guardrails_version"
PROMPT_LEDGER_PREFIX = "prompt:"


@dataclass(frozen=True)
class Version:
    model: str
    version: str
    run_id: str | None
    tags: dict[str, str]

    @property
    def uri(self) -> str:
        return f"models:/{self.model}/{self.version}"


def reference_artifact(version: Version) -> str:
    """Where onboarding logs ``version``'s drift reference on its source run: one file per version.

    A team may register one run's model under several names or versions, each onboarded with
    its own reference; a file per run would let the last onboarding replace the others'.
    Versions Firebreak trains itself log :data:`REFERENCE_ARTIFACT` on a run of their own.
    """
    return f"reference/{model_stem(version.model)}/v{version.version}/reference.parquet"


class Registry:
    """Registry access bound to one tracking URI and the state DB's alias ledger."""

    def __init__(self, settings: Settings, ledger: AliasLedger | None = None) -> None:
        self.settings = settings
        self.ledger = ledger or AliasLedger(settings.state_db_url)
        os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
        mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
        mlflow.set_registry_uri(settings.mlflow_tracking_uri)
        self.client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri)

    # -- experiments and runs ------------------------------------------------------

    def experiment_id(self, name: str) -> str:
        """Get or create an experiment whose artifacts live under FIREBREAK_ARTIFACT_ROOT."""
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        location = None
        if "://" not in self.settings.mlflow_tracking_uri or self.settings.mlflow_tracking_uri.startswith("sqlite:"):
            # Embedded MLflow would otherwise put artifacts under ./mlruns of whatever cwd.
            location = (self.settings.artifact_root / name).as_uri()
        try:
            return str(self.client.create_experiment(name, artifact_location=location))
        except MlflowException:
            # Created concurrently by another task: read it back.
            again = self.client.get_experiment_by_name(name)
            if again is None:
                raise
            return str(again.experiment_id)

    def start_incident_run(self, incident_id: str, model: str) -> str:
        """The incident's evidence run: one per incident, found again on re-runs."""
        exp = self.experiment_id(INCIDENT_EXPERIMENT)
        existing = self.client.search_runs([exp], filter_string=f"tags.`firebreak.incident_id` = '{incident_id}'")
        if existing:
            return str(existing[0].info.run_id)
        run = self.client.create_run(
            exp, run_name=incident_id, tags={"firebreak.incident_id": incident_id, "firebreak.model": model}
        )
        return str(run.info.run_id)

    def log_evidence(self, run_id: str, path: Path, artifact_dir: str) -> str:
        """Log a file to the incident's run; returns the artifact URI."""
        self.client.log_artifact(run_id, str(path), artifact_dir)
        return f"runs:/{run_id}/{artifact_dir}/{path.name}"

    def log_metrics(self, run_id: str, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            self.client.log_metric(run_id, key, float(value))

    # -- versions -------------------------------------------------------------------

    def register(
        self,
        model: str,
        python_model: PythonModel | Any,
        *,
        input_example: pd.DataFrame,
        reference: pd.DataFrame,
        tags: dict[str, str],
        run_name: str,
        model_config: dict[str, Any] | None = None,
    ) -> Version:
        """Log a model with its training reference data and register a new version.

        ``python_model`` is one of Firebreak's own models, logged from code with its state as
        data (:mod:`firebreak.registry.own_models`), or a fitted scikit-learn estimator or
        pipeline, logged with MLflow's sklearn flavor and the skops types it needs trusted
        (:func:`firebreak.registry.flavors.trusted_types`). Nothing is logged as a pickle.

        Raises:
            RegistryError: any other object (a ``PythonModel`` would be cloudpickled).
        """
        import mlflow.sklearn
        from mlflow.models import infer_signature

        from firebreak.registry import own_models
        from firebreak.registry.flavors import is_sklearn_model, pip_requirements, trusted_types

        sklearn_model = is_sklearn_model(python_model)
        if not sklearn_model and own_models.kind_of(python_model) is None:
            raise RegistryError(
                f"will not log a {type(python_model).__qualname__}: Firebreak registers scikit-learn models "
                "and its own models, never a pickled PythonModel"
            )
        exp = self.experiment_id(TRAINING_EXPERIMENT)
        model_obj: Any = python_model  # a PythonModel, or a scikit-learn estimator (predict takes the frame only)
        output = model_obj.predict(input_example) if sklearn_model else model_obj.predict(None, input_example)
        with mlflow.start_run(experiment_id=exp, run_name=run_name, tags=tags), tempfile.TemporaryDirectory() as tmp:
            self._log_reference(reference)
            if sklearn_model:
                info = mlflow.sklearn.log_model(
                    python_model,
                    name="model",
                    signature=infer_signature(input_example, output),
                    input_example=input_example,
                    registered_model_name=model,
                    skops_trusted_types=trusted_types(python_model),
                    pip_requirements=pip_requirements(),
                )
            else:
                artifacts, own_config = own_models.save(python_model, Path(tmp))
                info = mlflow.pyfunc.log_model(
                    name="model",
                    python_model=str(own_models.MODEL_CODE),
                    artifacts=artifacts,
                    signature=infer_signature(input_example, output),
                    input_example=input_example,
                    registered_model_name=model,
                    model_config={**(model_config or {}), **own_config},
                    pip_requirements=pip_requirements(),
                )
            # The golden figures are version tags (the baseline later incidents read) and, on the
            # training run, metrics: MLflow charts and compares metrics, never tags.
            golden = {k.removeprefix(TAG_GOLDEN_PREFIX): v for k, v in tags.items() if k.startswith(TAG_GOLDEN_PREFIX)}
            mlflow.log_metrics({f"golden_{k}": float(v) for k, v in golden.items() if _is_number(v)})
        version = str(info.registered_model_version)
        for key, value in tags.items():
            self.client.set_model_version_tag(model, version, key, value)
        registered = self.get_version(model, version)
        # What Firebreak itself just logged: the digest every later load is checked against.
        self.ledger.record_registered(model, version, digest_of(self, registered), by=run_name)
        return registered

    def _log_reference(
        self, reference: pd.DataFrame, run_id: str | None = None, artifact: str = REFERENCE_ARTIFACT
    ) -> None:
        """The training inputs as a drift reference at ``artifact``: on the active run, or on ``run_id``."""
        with tempfile.TemporaryDirectory() as tmp:
            ref_path = Path(tmp) / Path(artifact).name
            reference.to_parquet(ref_path, index=False)
            if run_id is None:
                mlflow.log_artifact(str(ref_path), str(Path(artifact).parent))
            else:
                self.client.log_artifact(run_id, str(ref_path), str(Path(artifact).parent))

    def record_reference(self, version: Version, reference: pd.DataFrame) -> str:
        """Log ``reference`` as ``version``'s drift reference on its source run (what ``drift_report`` reads).

        Onboarding writes it for a version registered outside Firebreak.

        Raises:
            RegistryError: The version has no source run to hold the artifact.
        """
        if not version.run_id:
            raise RegistryError(
                f"{version.model} v{version.version} has no source run, so it cannot hold a drift reference: "
                "register the model from an MLflow run (mlflow.sklearn.log_model(..., registered_model_name=...))"
            )
        artifact = reference_artifact(version)
        self._log_reference(reference, version.run_id, artifact)
        return f"runs:/{version.run_id}/{artifact}"

    def predictor(self, version: Version, policy: Policy) -> Callable[[pd.DataFrame], pd.DataFrame]:
        """How ``version`` answers a frame of the policy's inputs: output, confidence, positive score.

        Whatever flavor it was logged with (:mod:`firebreak.registry.flavors`).
        """
        from firebreak.registry.flavors import version_predictor

        return version_predictor(self.load(version), policy)

    def registered_by_run(self, model: str, run_name: str, tags: dict[str, str]) -> Version | None:
        """A version of ``model`` an earlier attempt already registered from a training run
        named ``run_name`` (a task re-run after a crash), with ``tags`` applied; else None."""
        exp = self.experiment_id(TRAINING_EXPERIMENT)
        escaped = run_name.replace("'", "\\'")
        runs = self.client.search_runs([exp], filter_string=f"attributes.run_name = '{escaped}'")
        for run in runs:
            for mv in self.client.search_model_versions(f"run_id = '{run.info.run_id}'"):
                if mv.name == model and str(mv.status) in {"READY", "ModelVersionStatus.READY"}:
                    # The crash may have come between registering and tagging: tag now.
                    for key, value in tags.items():
                        self.client.set_model_version_tag(model, str(mv.version), key, value)
                    return self.get_version(model, str(mv.version))
        return None

    def get_version(self, model: str, version: str) -> Version:
        try:
            mv = self.client.get_model_version(model, version)
        except MlflowException as exc:
            raise RegistryError(f"model {model!r} has no version {version!r}: {exc.message}") from exc
        return Version(model, str(mv.version), mv.run_id, dict(mv.tags))

    def version_for(self, model: str, alias: str) -> Version | None:
        """The version an alias points at, or None when the alias is unset."""
        try:
            mv = self.client.get_model_version_by_alias(model, alias)
        except MlflowException as exc:
            if exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
                return None
            raise
        return Version(model, str(mv.version), mv.run_id, dict(mv.tags))

    def aliases(self, model: str) -> dict[str, str]:
        try:
            rm = self.client.get_registered_model(model)
        except MlflowException as exc:
            raise RegistryError(f"model {model!r} is not registered: {exc.message}") from exc
        return {alias: str(version) for alias, version in rm.aliases.items()}

    def set_version_tags(self, model: str, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(model, version, key, value)

    def load(self, version: Version) -> PyFuncModel:
        """Load a version, only if its artifacts are the ones Firebreak recorded (:mod:`~firebreak.registry.verification`).

        Raises:
            UnverifiedModel: never registered or promoted through Firebreak, or changed since.
        """
        return load_verified(self, version)

    def reference_frame(self, version: Version) -> pd.DataFrame:
        """The version's drift reference: the one onboarding recorded for it, else its training run's inputs."""
        if not version.run_id:
            raise RegistryError(f"{version.model} v{version.version} has no source run, so no drift reference")
        own = reference_artifact(version)
        logged = {f.path for f in self.client.list_artifacts(version.run_id, str(Path(own).parent))}
        with tempfile.TemporaryDirectory() as tmp:
            local = mlflow.artifacts.download_artifacts(
                run_id=version.run_id,
                artifact_path=own if own in logged else REFERENCE_ARTIFACT,
                dst_path=tmp,
                tracking_uri=self.settings.mlflow_tracking_uri,
            )
            return pd.read_parquet(local)

    def golden_baseline(self, version: Version) -> dict[str, float]:
        """Golden-dataset figures recorded for a version when it was registered or promoted."""
        return {
            key.removeprefix(TAG_GOLDEN_PREFIX): float(value)
            for key, value in version.tags.items()
            if key.startswith(TAG_GOLDEN_PREFIX)
        }

    # -- aliases ---------------------------------------------------------------------

    def move_alias(
        self,
        model: str,
        alias: str,
        version: str | None,
        *,
        incident_id: str | None,
        actor: str,
        reason: str,
        approved_by: str | None = None,
    ) -> bool:
        """Point ``alias`` at ``version`` (None deletes it), recording the move in the ledger.

        Idempotent: when the alias already points there, nothing is written and False
        is returned. A target version that does not exist is an explicit error, never a
        silent fallback to something else.
        """
        current = self.version_for(model, alias)
        old = current.version if current else None
        if old == version:
            return False
        digest = None
        if version is not None:
            target = self.get_version(model, version)  # raises RegistryError when it was deleted
            digest = digest_of(self, target)
            recorded = self.ledger.digests(model, version)
            if recorded and recorded != {digest}:
                # The artifacts changed since Firebreak registered or last moved an alias to them.
                check(self, target, digest)
        entry = self.ledger.begin_move(
            model=model,
            alias=alias,
            old=old,
            new=version,
            incident_id=incident_id,
            actor=actor,
            reason=reason,
            digest=digest,
            approved_by=approved_by,
        )
        try:
            if version is None:
                self.client.delete_registered_model_alias(model, alias)
            else:
                self.client.set_registered_model_alias(model, alias, version)
        except MlflowException as exc:
            self.ledger.finish_move(entry, "failed")
            raise RegistryError(f"moving {model}@{alias} {old} -> {version} failed: {exc.message}") from exc
        self.ledger.finish_move(entry, "applied")
        log.info("alias %s@%s: %s -> %s (%s)", model, alias, old, version, reason)
        return True

    def delete_model(self, model: str) -> None:
        """Remove a registered model and its versions (demo resets only)."""
        try:
            self.client.delete_registered_model(model)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise

    # -- prompts (MLflow's prompt registry) ------------------------------------------

    def register_prompt(
        self, name: str, template: str, *, commit_message: str, tags: dict[str, str] | None = None
    ) -> int:
        """A new version of prompt ``name`` (created on first use); returns its version number."""
        found = self.client.register_prompt(name, template, commit_message=commit_message, tags=tags or {})
        return int(found.version)

    def prompt_text(self, name: str, version: int) -> str:
        found = self.client.get_prompt_version(name, version)
        if found is None:
            raise RegistryError(f"prompt {name!r} has no version {version}")
        return str(found.template)

    def prompt_version_for(self, name: str, alias: str) -> int | None:
        """The prompt version an alias points at, or None when the alias (or the prompt) is unset."""
        try:
            return int(self.client.get_prompt_version_by_alias(name, alias).version)
        except MlflowException as exc:
            if exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
                return None
            raise

    def move_prompt_alias(
        self,
        model: str,
        name: str,
        alias: str,
        version: int | None,
        *,
        incident_id: str | None,
        actor: str,
        reason: str,
    ) -> bool:
        """Point prompt ``name``'s ``alias`` at ``version`` (None deletes it); a ledger row ``prompt:<alias>`` of ``model``."""
        old = self.prompt_version_for(name, alias)
        if old == version:
            return False
        if version is not None and self.client.get_prompt_version(name, version) is None:
            raise RegistryError(f"prompt {name!r} has no version {version}")
        entry = self.ledger.begin_move(
            model=model,
            alias=f"{PROMPT_LEDGER_PREFIX}{alias}",
            old=None if old is None else str(old),
            new=None if version is None else str(version),
            incident_id=incident_id,
            actor=actor,
            reason=reason,
        )
        try:
            if version is None:
                self.client.delete_prompt_alias(name, alias)
            else:
                self.client.set_prompt_alias(name, alias, version)
        except MlflowException as exc:
            self.ledger.finish_move(entry, "failed")
            raise RegistryError(f"moving prompt {name}@{alias} {old} -> {version} failed: {exc.message}") from exc
        self.ledger.finish_move(entry, "applied")
        log.info("prompt alias %s@%s: %s -> %s (%s)", name, alias, old, version, reason)
        return True

    def delete_prompt(self, name: str) -> None:
        """Remove a prompt and its versions (demo resets only)."""
        if self.client.get_prompt(name) is None:
            return
        for found in self.client.search_prompt_versions(name):
            self.client.delete_prompt_version(name, str(found.version))
        self.client.delete_prompt(name)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def golden_tags(figures: Any) -> dict[str, str]:
    """Golden-dataset figures as version tags: the baseline later incidents compare against."""
    return {TAG_GOLDEN_PREFIX + k: str(v) for k, v in figures.to_dict().items()}


def llm_tags(prompt: str, prompt_version: int, guardrails_version: int) -> dict[str, str]:
    """Version tags of an LLM model: which prompt version and guardrail version it is served with."""
    return {TAG_PROMPT: f"{prompt}/{prompt_version}", TAG_GUARDRAILS: str(guardrails_version)}

"""Serve only what the gate verified: artifact digests in the ledger, checked before a model is loaded.

SOP stages *Promote* and every stage that loads a model (the gateway, the incident's
checks, the audits). A pyfunc model runs code when it is loaded, and anyone who can write
to MLflow can register a version or move an alias. So Firebreak trusts its own records,
not the registry's:

* when Firebreak registers a version, it records the digest of the artifacts it just
  logged (``registered`` rows of the ledger's ``verified_artifacts``);
* every alias move it makes (the gate's promotion, a rollback, the scenario's or the
  onboarding's first release) records the digest of the target in its ledger row;
* ``firebreak onboard`` records the digest of the team's own version it was asked to
  put under Firebreak (:func:`load_for_adoption`): the person onboarding vouches for it;
* :func:`load_verified` downloads a version's artifacts once, digests that copy, and loads
  it only when the digest equals every digest Firebreak recorded for the version (and at
  least one exists); the copy that was checked is the copy that is loaded;
* :func:`reconcile` compares where MLflow's aliases point with where the ledger last moved
  them: a move made elsewhere (the MLflow UI) is reported, and the ledger's version is
  served instead of the registry's.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from firebreak.errors import RegistryError
from firebreak.incidents.enums import Alias

if TYPE_CHECKING:
    from mlflow.pyfunc import PyFuncModel

    from firebreak.registry.mlflow_registry import Registry, Version

log = logging.getLogger(__name__)

# The aliases the gateway and the workers load from (prompt aliases are not models).
LOADED_ALIASES = (Alias.CHAMPION, Alias.CHALLENGER, Alias.FALLBACK, Alias.LAST_KNOWN_GOOD)


class UnverifiedModel(RegistryError):
    """A model version whose artifacts Firebreak never recorded, or that changed since it did."""


def artifact_digest(folder: Path) -> str:
    """SHA-256 over every file of a model's artifacts: relative path and bytes, in path order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return "sha256:" + digest.hexdigest()


def download(registry: Registry, version: Version, into: Path) -> Path:
    """A local copy of the version's model artifacts (what a load reads)."""
    import mlflow

    local = mlflow.artifacts.download_artifacts(
        artifact_uri=version.uri, dst_path=str(into), tracking_uri=registry.settings.mlflow_tracking_uri
    )
    return Path(local)


def digest_of(registry: Registry, version: Version) -> str:
    """The digest of the version's artifacts as the registry holds them now."""
    with tempfile.TemporaryDirectory(prefix="firebreak-digest-") as tmp:
        return artifact_digest(download(registry, version, Path(tmp)))


def check(registry: Registry, version: Version, digest: str) -> None:
    """Raise :class:`UnverifiedModel` unless ``digest`` is what Firebreak recorded for ``version``."""
    recorded = registry.ledger.digests(version.model, version.version)
    if not recorded:
        raise UnverifiedModel(
            f"{version.model} v{version.version} was never registered or promoted through Firebreak "
            "(no artifact digest in the ledger): not loaded"
        )
    if any(d != digest for d in recorded):
        raise UnverifiedModel(
            f"{version.model} v{version.version}'s artifacts changed since Firebreak recorded them "
            f"(now {digest[:19]}..., recorded {sorted(recorded)[0][:19]}...): not loaded"
        )


def load_verified(registry: Registry, version: Version) -> PyFuncModel:
    """Load ``version`` only if its artifacts are the ones Firebreak recorded; the checked copy is the one loaded.

    Raises:
        UnverifiedModel: no digest recorded, or the artifacts differ from it.
    """
    with tempfile.TemporaryDirectory(prefix="firebreak-load-") as tmp:
        local = download(registry, version, Path(tmp))
        check(registry, version, artifact_digest(local))
        return _load(local)


def load_for_adoption(registry: Registry, version: Version) -> tuple[PyFuncModel, str]:
    """Load a version Firebreak did not register, and the digest of the very copy loaded.

    For ``firebreak onboard`` only: the person onboarding a team's own model vouches for it,
    and the digest is recorded (:meth:`~firebreak.registry.ledger.AliasLedger.record_registered`)
    only once the onboarding succeeds, so every later load is checked against it. A version
    Firebreak already recorded must still match its record.

    Raises:
        UnverifiedModel: Firebreak recorded other artifacts for this version.
    """
    with tempfile.TemporaryDirectory(prefix="firebreak-adopt-") as tmp:
        local = download(registry, version, Path(tmp))
        digest = artifact_digest(local)
        if registry.ledger.digests(version.model, version.version):
            check(registry, version, digest)
        return _load(local), digest


def _load(local: Path) -> PyFuncModel:
    """MLflow's load of a checked copy; skops (which both flavors Firebreak logs load with) imported quietly first."""
    import mlflow

    from firebreak.registry.flavors import skops_io

    skops_io()
    return mlflow.pyfunc.load_model(str(local))


@dataclass(frozen=True)
class AliasDrift:
    """An alias that MLflow and the ledger disagree on: moved outside Firebreak."""

    model: str
    alias: str
    registry_version: str | None  # where MLflow points now
    ledger_version: str | None  # where Firebreak last moved it (what is served)

    def describe(self) -> str:
        return (
            f"{self.model}@{self.alias} points at v{self.registry_version} in MLflow, but Firebreak last moved it "
            f"to v{self.ledger_version}: an unverified promotion, not followed"
        )


def reconcile(registry: Registry, model: str, alias: str) -> tuple[str | None, AliasDrift | None]:
    """The version to serve for ``alias`` (the ledger's), and the drift when MLflow says otherwise.

    An alias the ledger never moved (a model onboarded before the ledger existed) follows
    MLflow; its version must still pass :func:`load_verified`.
    """
    current = registry.version_for(model, alias)
    in_registry = current.version if current else None
    moved, in_ledger = registry.ledger.last_move(model, alias)
    if not moved or in_registry == in_ledger:
        return in_registry, None
    drift = AliasDrift(model, alias, in_registry, in_ledger)
    log.error("%s", drift.describe())
    return in_ledger, drift


def unverified_promotion_alert(drift: AliasDrift) -> dict[str, object]:
    """The generic alert that opens the ``unverified_promotion`` incident (through the alert inbox/intake)."""
    return {
        "model": drift.model,
        "signal": f"unverified_promotion:{drift.alias}",
        "value": 1.0,
        "threshold": 0.0,
        "dedup_key": f"unverified_promotion:{drift.model}:{drift.alias}:v{drift.registry_version}",
        "status": "firing",
        "failure_class": "unknown",
        "severity": "SEV2",
        "description": drift.describe(),
        "source": "reconciliation",
    }

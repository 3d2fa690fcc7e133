"""``firebreak log import`` and ``firebreak labels import``: a team's own serving logs and late labels.

SOP stages triage and investigate read the prediction log and the label store; a team that
serves its model itself brings both from its own files (CSV, Parquet or JSON lines).

Both imports validate every row against the model's policy before anything is written, and
report the bad rows by number (data rows counted from 1, after a CSV's header): nothing is
half-written. Rows are written to a staging folder first and published by renames on the
same file system; a manifest named by the import's digest (file content, mapping, model) is
written last, so importing the same file again changes nothing, and an import killed
half-way is finished by running it again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from firebreak.incidents.enums import Alias
from firebreak.model_names import model_stem
from firebreak.onboarding.errors import OnboardingError
from firebreak.policy.schema import Policy, load_policy
from firebreak.settings import Settings

if TYPE_CHECKING:
    from firebreak.registry.mlflow_registry import Registry

# The serving gateway's rule for a request id (serving.app.REQUEST_ID): printable, bounded.
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/-]{1,128}$")
SHOWN_BAD_ROWS = 20
STAGING = "_staging"
MANIFESTS = "_imports"


@dataclass(frozen=True)
class BadRow:
    row: int  # data row, counted from 1
    column: str | None
    problem: str

    def __str__(self) -> str:
        return f"row {self.row}" + (f" ({self.column})" if self.column else "") + f": {self.problem}"


class ImportRefused(OnboardingError):
    """Rows broke the policy; nothing was written. ``bad_rows`` lists each one."""

    def __init__(self, message: str, bad_rows: list[BadRow]) -> None:
        shown = "; ".join(str(b) for b in bad_rows[:SHOWN_BAD_ROWS])
        more = f"; and {len(bad_rows) - SHOWN_BAD_ROWS} more" if len(bad_rows) > SHOWN_BAD_ROWS else ""
        super().__init__(f"{message}: {len(bad_rows)} bad row(s), nothing written: {shown}{more}")
        self.bad_rows = bad_rows


@dataclass(frozen=True)
class Imported:
    """What an import wrote (or found already written)."""

    model: str
    kind: str  # predictions | labels
    rows: int
    files: int
    import_id: str
    already: bool
    detail: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- reading -------------------------------------------------------------------------------------


def read_rows(path: Path) -> pd.DataFrame:
    """The file's rows: Parquet, JSON lines (``.jsonl``, ``.ndjson``, ``.json``) or CSV.

    Raises:
        OnboardingError: The file is missing, unreadable or empty.
    """
    if not path.is_file():
        raise OnboardingError(f"{path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            frame = pd.read_parquet(path)
        elif suffix in {".jsonl", ".ndjson", ".json"}:
            frame = pd.read_json(path, lines=True, dtype=False)
        else:
            frame = pd.read_csv(path)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise OnboardingError(f"cannot read {path}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 — pyarrow and the CSV parser raise their own types on a corrupt file
        raise OnboardingError(f"cannot read {path}: {type(exc).__name__}: {exc}") from exc
    if frame.empty:
        raise OnboardingError(f"{path} has no rows")
    return frame.reset_index(drop=True)


def apply_mappings(frame: pd.DataFrame, mappings: Sequence[str]) -> pd.DataFrame:
    """Rename columns by ``src=dst`` pairs (the team's names to the policy's).

    Raises:
        OnboardingError: A pair is malformed, names a column the file lacks, or two map to one.
    """
    renames: dict[str, str] = {}
    for pair in mappings:
        src, sep, dst = pair.partition("=")
        if not sep or not src or not dst:
            raise OnboardingError(f"--map {pair!r}: expected SOURCE=TARGET")
        if src not in frame.columns:
            raise OnboardingError(f"--map {pair!r}: the file has no column {src!r} (columns: {list(frame.columns)})")
        renames[src] = dst
    targets = list(renames.values())
    if len(set(targets)) != len(targets):
        raise OnboardingError(f"--map sends two columns to one: {targets}")
    kept = [c for c in frame.columns if c not in renames and c in targets]
    if kept:
        raise OnboardingError(f"--map targets {kept} are already columns of the file")
    return frame.rename(columns=renames)


def _digest(path: Path, *parts: str) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            sha.update(chunk)
    for part in parts:
        sha.update(b"\0" + part.encode())
    return sha.hexdigest()[:20]


# -- validation ----------------------------------------------------------------------------------


def _ids(frame: pd.DataFrame, column: str, bad: list[BadRow]) -> pd.Series:
    ids = frame[column].astype("string")
    for i, value in enumerate(ids):
        if pd.isna(value) or not REQUEST_ID.match(str(value)):
            bad.append(BadRow(i + 1, column, f"{_short(value)} is not a request id (1-128 of A-Z a-z 0-9 . _ : / -)"))
    duplicated = ids.duplicated(keep="first") & ids.notna()
    for position in np.flatnonzero(duplicated.to_numpy()):
        row = int(position)
        bad.append(BadRow(row + 1, column, f"request id {ids.iloc[row]!r} appears earlier in the file"))
    return ids


def _numbers(frame: pd.DataFrame, column: str, bad: list[BadRow], *, low: float | None = None) -> pd.Series:
    numbers = pd.to_numeric(frame[column], errors="coerce")
    broken = numbers.isna() & frame[column].notna()
    for i in np.flatnonzero(broken.to_numpy()):
        bad.append(BadRow(int(i) + 1, column, f"{_short(frame[column].iloc[i])} is not a number"))
    if low is not None:
        outside = (numbers < low) | (numbers > 1.0)
        for i in np.flatnonzero(outside.fillna(False).to_numpy()):
            bad.append(BadRow(int(i) + 1, column, f"{numbers.iloc[i]} is outside [0, 1]"))
    return numbers


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _refuse_missing(frame: pd.DataFrame, needed: list[str], what: str) -> None:
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise OnboardingError(
            f"{what} lacks column(s) {missing} the policy needs (columns: {list(frame.columns)}; rename with --map)"
        )


def validate_log(frame: pd.DataFrame, policy: Policy, *, version: str) -> pd.DataFrame:
    """Prediction-log rows from a team's log, typed as the policy says; raises naming every bad row.

    Needs ``request_id``, ``ts``, every input and the output; keeps the confidence (a number
    in [0, 1]), lineage and any other columns. Values are checked for type, not range: a
    units change upstream must be importable for the contract to catch it. Timestamps without
    a zone are UTC. ``model_version`` defaults to ``version`` and ``route`` to ``champion``.

    Raises:
        OnboardingError: A required column is missing.
        ImportRefused: Rows break the policy (each named by its number).
    """
    features = policy.features
    _refuse_missing(frame, ["request_id", "ts", *features.inputs, features.output], "the log")
    bad: list[BadRow] = []
    rows = frame.copy()
    rows["request_id"] = _ids(frame, "request_id", bad)
    ts = pd.to_datetime(frame["ts"], errors="coerce", utc=True, format="mixed")
    for i in np.flatnonzero(ts.isna().to_numpy()):
        bad.append(BadRow(int(i) + 1, "ts", f"{_short(frame['ts'].iloc[i])} is not a timestamp"))
    rows["ts"] = ts
    for column in features.numeric:
        rows[column] = _numbers(frame, column, bad)
    for column in [*features.categorical, *features.lineage]:
        if column in rows.columns:
            rows[column] = frame[column].astype("string").astype(object).where(frame[column].notna(), None)
    for i in np.flatnonzero(frame[features.output].isna().to_numpy()):
        bad.append(BadRow(int(i) + 1, features.output, "no prediction"))
    if features.confidence in frame.columns:
        rows[features.confidence] = _numbers(frame, features.confidence, bad, low=0.0)
    if "model" in frame.columns:
        other = frame["model"].astype("string") != policy.model
        for i in np.flatnonzero(other.fillna(True).to_numpy()):
            bad.append(BadRow(int(i) + 1, "model", f"{_short(frame['model'].iloc[i])} is not {policy.model!r}"))
    if bad:
        raise ImportRefused("the log breaks the policy", sorted(bad, key=lambda b: (b.row, b.column or "")))
    rows["model"] = policy.model
    rows["model_version"] = frame["model_version"].astype(str) if "model_version" in frame.columns else version
    rows["route"] = frame["route"].astype(str) if "route" in frame.columns else "champion"
    if "contract_violations" not in rows.columns:
        rows["contract_violations"] = ""  # the gateway checks the contract per request; this log was not checked
    return rows


def validate_labels(
    frame: pd.DataFrame, policy: Policy, *, id_column: str, label: str, classes: list[Any] | None
) -> pd.DataFrame:
    """``request_id`` and the policy's label column, checked: ids, and labels of the model's task.

    A regression label must be a finite number; a classification label one of ``classes``
    (the labels of the training data), compared as text so ``1`` and ``"1"`` match.

    Raises:
        OnboardingError: A named column is missing.
        ImportRefused: Rows break the policy (each named by its number).
    """
    _refuse_missing(frame, [id_column, label], "the labels file")
    bad: list[BadRow] = []
    ids = _ids(frame, id_column, bad)
    values = frame[label]
    for i in np.flatnonzero(values.isna().to_numpy()):
        bad.append(BadRow(int(i) + 1, label, "no label"))
    if policy.task == "regression":
        numbers = _numbers(frame, label, bad)
        for i in np.flatnonzero(~np.isfinite(numbers.fillna(0).to_numpy(dtype=float))):
            bad.append(BadRow(int(i) + 1, label, f"{numbers.iloc[i]} is not finite"))
        typed: pd.Series = numbers
    else:
        typed = values
        if classes:
            by_text = {str(c): c for c in classes}
            unknown = values.notna() & ~values.astype(str).isin(list(by_text))
            for i in np.flatnonzero(unknown.to_numpy()):
                bad.append(BadRow(int(i) + 1, label, f"{_short(values.iloc[i])} is not a known class {list(by_text)}"))
            typed = values.astype(str).map(by_text)
    if bad:
        raise ImportRefused("the labels break the policy", sorted(bad, key=lambda b: (b.row, b.column or "")))
    return pd.DataFrame({"request_id": ids.astype(str).to_numpy(), policy.features.label: typed.to_numpy()})


# -- writing ---------------------------------------------------------------------------------------


def _manifest(root: Path, model: str, import_id: str) -> Path:
    return root / MANIFESTS / model_stem(model) / f"{import_id}.json"


def _publish(root: Path, import_id: str, write: Callable[[Path], list[Path]], manifest: dict[str, Any]) -> list[Path]:
    """Write through ``write`` into a staging folder, move every file into place, then the manifest.

    A failure while moving takes back the files already moved; the staging folder goes in
    every case.
    """
    staging = root / STAGING / import_id
    shutil.rmtree(staging, ignore_errors=True)  # a killed earlier attempt: start it over
    staging.mkdir(parents=True)
    moved: list[Path] = []
    try:
        for written in write(staging):
            target = root / written.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(written, target)
            moved.append(target)
        path = _manifest(root, str(manifest["model"]), import_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
        tmp.write_text(json.dumps({**manifest, "files": [str(p.relative_to(root)) for p in moved]}, indent=2))
        os.replace(tmp, path)
    except BaseException:
        for target in moved:
            target.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        with contextlib.suppress(OSError):  # the staging root, once no import uses it
            staging.parent.rmdir()
    return moved


def import_log(
    model: str,
    path: Path,
    settings: Settings,
    *,
    mappings: Sequence[str] = (),
    version: str | None = None,
    registry: Registry | None = None,
) -> Imported:
    """Import a team's serving log into the prediction log (see the module docstring).

    ``version`` is the model version that served the rows when the file has no
    ``model_version`` column (default: the current ``champion``).
    """
    from firebreak.prediction_log import PredictionLog

    policy = load_policy(model, settings.policies_dir)
    frame = apply_mappings(read_rows(path), mappings)
    root = settings.prediction_log_dir
    import_id = _digest(path, model, *mappings, version or "")
    done = _manifest(root, model, import_id)
    if done.is_file():
        found = json.loads(done.read_text())
        return Imported(model, "predictions", found["rows"], len(found["files"]), import_id, True, "already imported")
    served = version or _champion(model, settings, registry)
    rows = validate_log(frame, policy, version=served)
    manifest = {"model": model, "source": str(path), "rows": len(rows), "mappings": list(mappings)}
    files = _publish(root, import_id, lambda staging: PredictionLog(staging).append(rows), manifest)
    ts = rows["ts"]
    detail = f"{len(rows)} predictions of v{served}, {ts.min():%Y-%m-%d %H:%M} .. {ts.max():%Y-%m-%d %H:%M} UTC"
    return Imported(model, "predictions", len(rows), len(files), import_id, False, detail)


def _champion(model: str, settings: Settings, registry: Registry | None) -> str:
    from firebreak.registry.mlflow_registry import Registry

    found = (registry or Registry(settings)).version_for(model, Alias.CHAMPION)
    if found is None:
        raise OnboardingError(f"{model} has no '{Alias.CHAMPION}' version: pass --version (the version that served)")
    return found.version


def known_classes(policy: Policy, settings: Settings) -> list[Any] | None:
    """A classifier's classes: the labels of its training data (else its golden set); None for a regression."""
    from firebreak.remediation.refit import read_table

    if policy.task != "classification":
        return None
    for source in (policy.training.dataset, policy.golden):
        path = settings.resolve(source)
        if path.is_file():
            frame = read_table(path)
            if policy.features.label in frame.columns:
                return sorted(frame[policy.features.label].dropna().unique().tolist(), key=str)
    return None


def import_labels(model: str, path: Path, settings: Settings, *, id_column: str, label: str) -> Imported:
    """Import ground truth that arrived after the predictions into the label store (see the module docstring)."""
    from firebreak.prediction_log import LabelStore, PredictionLog

    policy = load_policy(model, settings.policies_dir)
    frame = read_rows(path)
    root = settings.labels_dir
    import_id = _digest(path, model, id_column, label)
    done = _manifest(root, model, import_id)
    if done.is_file():
        found = json.loads(done.read_text())
        return Imported(model, "labels", found["rows"], len(found["files"]), import_id, True, "already imported")
    labels = validate_labels(frame, policy, id_column=id_column, label=label, classes=known_classes(policy, settings))
    manifest = {"model": model, "source": str(path), "rows": len(labels)}
    files = _publish(root, import_id, lambda staging: [LabelStore(staging).append(model, labels)], manifest)
    logged = PredictionLog(settings.prediction_log_dir).read(model)
    matched = int(labels["request_id"].isin(logged["request_id"].astype(str)).sum()) if not logged.empty else 0
    detail = f"{len(labels)} labels; {matched} match logged predictions"
    return Imported(model, "labels", len(labels), len(files), import_id, False, detail, {"matched": matched})

"""``firebreak log import``, ``firebreak labels import`` and ``firebreak log maintain``: bring a team's own logs.

SOP stage: detection and investigation read the prediction log; a team that already serves its
model has its own request logs and ground truth that arrives later. These commands put them
where every check reads them, validated against the model's policy:

* ``firebreak log import --model NAME FILE [--map src=dst ...] [--model-version V]`` — CSV,
  Parquet or JSON lines. The policy's inputs and output and a time column (``ts``) must be
  there (``--map`` renames the file's own names); each row needs a parseable time, numbers
  where the policy says numeric, an output, a confidence within [0, 1] when given, and a
  unique request id (generated from the file's digest and the row number when the file has
  none). Columns the policy does not name are left out, and said so.
* ``firebreak labels import --model NAME FILE --id-column COL --label COL`` — ground truth by
  request id, stored under the policy's label name; ids unique and present, labels present.
* ``firebreak log maintain --model NAME`` — compaction and retention by the policy's
  ``prediction_log`` section.

Bad rows are reported with their row numbers (1 = the first data row; for CSV the file line
is one more) and nothing is written: exit 2. A good file is published whole: every part is
written first, then renamed into place under names derived from the file's digest, so a
crash mid-way is finished by running the same import again, and a finished import is never
imported twice.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from firebreak.errors import PredictionLogError
from firebreak.settings import Settings

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from firebreak.policy.schema import Policy

_MAX_REPORTED = 20  # bad rows listed one by one; the rest are counted
_MAX_ID = 128
_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def add_parsers(sub: Any) -> None:
    log = sub.add_parser("log", help="the prediction log: import a team's own serving logs, compact and expire")
    log_sub = log.add_subparsers(dest="log_command", required=True)
    imp = log_sub.add_parser(
        "import",
        help="import prediction logs (CSV, Parquet or JSON lines) for a model, validated against its policy",
        description=__doc__.split("\n\n")[2] if __doc__ else None,
    )
    imp.add_argument("--model", required=True)
    imp.add_argument("file", type=Path)
    imp.add_argument(
        "--map", action="append", default=[], metavar="SRC=DST", help="rename a column of the file (repeatable)"
    )
    imp.add_argument("--format", choices=["csv", "parquet", "jsonl"], help="default: from the file's extension")
    imp.add_argument(
        "--model-version",
        help="the version that answered rows without a model_version column (default: the champion now)",
    )
    maintain = log_sub.add_parser("maintain", help="compact settled hours and delete those past retention")
    maintain.add_argument("--model", required=True)
    labels = sub.add_parser("labels", help="ground truth that arrives after the prediction")
    labels_sub = labels.add_subparsers(dest="labels_command", required=True)
    lab = labels_sub.add_parser("import", help="import labels by request id (CSV, Parquet or JSON lines)")
    lab.add_argument("--model", required=True)
    lab.add_argument("file", type=Path)
    lab.add_argument("--id-column", required=True, help="the file's column holding the request id")
    lab.add_argument("--label", required=True, help="the file's column holding the ground truth")
    lab.add_argument("--format", choices=["csv", "parquet", "jsonl"])


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Dispatch ``log ...`` / ``labels ...``; bad input → exit 2 with every problem named."""
    if args.command == "labels":
        return _print(import_labels(args.model, args.file, args.id_column, args.label, settings, fmt=args.format))
    if args.log_command == "maintain":
        return _print(maintain(args.model, settings))
    mapping = _mapping(args.map)
    if args.model_version is not None:
        version, why = args.model_version, _given_version(args.model, args.model_version, settings)
    else:
        version, why = _champion_version(args.model, settings)
    summary = import_log(args.model, args.file, settings, mapping=mapping, fmt=args.format, model_version=version)
    return _print(summary | {"answered_by": f"{summary['answered_by']}: {why}"})


def _given_version(model: str, version: str, settings: Settings) -> str:
    """Why ``version`` answered the rows: given with ``--model-version``, and a version the registry holds.

    Raises:
        PredictionLogError: the registry answers that ``model`` has no such version (its rows
            would never count as any version's evidence).
    """
    from firebreak.errors import RegistryError
    from firebreak.inert import clean
    from firebreak.registry.mlflow_registry import Registry

    try:
        Registry(settings).get_version(model, version)
    except RegistryError as exc:
        if getattr(exc.__cause__, "error_code", None) in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
            raise PredictionLogError(
                f"--model-version {clean(repr(version), 60)}: {model} has no such version in the registry; "
                "rows tagged with it would never count as any version's evidence"
            ) from exc
        return "given (--model-version; not checked: the registry did not answer)"
    return "given (--model-version)"


def _champion_version(model: str, settings: Settings) -> tuple[str, str]:
    """The version the ``champion`` alias names now: who answered rows whose file does not say.

    Incidents judge a champion on the rows it answered (:func:`firebreak.prediction_log.answered_by`),
    so rows tagged with no known version would never count as evidence.
    """
    from firebreak.errors import RegistryError
    from firebreak.incidents.enums import Alias
    from firebreak.registry.mlflow_registry import Registry

    try:
        champion = Registry(settings).version_for(model, Alias.CHAMPION)
    except RegistryError:
        champion = None
    if champion is None:
        return "imported", f"{model} has no {Alias.CHAMPION} alias: pass --model-version V to name who answered"
    return champion.version, (
        f"the file has no model_version column: v{champion.version} is {Alias.CHAMPION} now "
        "(pass --model-version V if another version answered these rows)"
    )


def _print(summary: dict[str, Any]) -> int:
    print(json.dumps(summary, indent=2, default=str))
    return 0


def _mapping(pairs: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs:
        source, sep, target = pair.partition("=")
        if not sep or not source or not target:
            raise PredictionLogError(f"--map takes SRC=DST, got {pair[:100]!r}")
        if source in mapping:
            raise PredictionLogError(f"--map names {source[:100]!r} twice")
        mapping[source] = target
    if len(set(mapping.values())) != len(mapping):
        raise PredictionLogError("--map maps two columns onto one name")
    return mapping


def read_table(path: Path, fmt: str | None) -> Any:
    """The file as a frame, every value as the file holds it; a clear error when it cannot be read."""
    import pandas as pd

    kind = fmt or _FORMATS.get(path.suffix.lower())
    if kind is None:
        raise PredictionLogError(f"cannot tell the format of {path.name!r}: use --format csv|parquet|jsonl")
    if not path.is_file():
        raise PredictionLogError(f"{path} is not a file")
    try:
        if kind == "csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        elif kind == "parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_json(path, lines=True, dtype=False)
    except (ValueError, OSError, UnicodeDecodeError) as exc:  # pandas' parsers raise these for a bad file
        raise PredictionLogError(f"cannot read {path.name} as {kind}: {str(exc)[:300]}") from exc
    if frame.empty:
        raise PredictionLogError(f"{path.name} holds no rows")
    if len(frame.columns) > 1000 or any(len(str(c)) > 128 for c in frame.columns):
        raise PredictionLogError(f"{path.name}: more than 1000 columns, or a column name over 128 characters")
    frame.columns = [str(c) for c in frame.columns]
    return frame


class _Problems:
    """Bad rows by row number (1-based data rows), reported together."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.rows: dict[int, list[str]] = {}

    def add(self, positions: Any, message: str) -> None:
        for position in positions:
            self.rows.setdefault(int(position) + 1, []).append(message)

    def raise_if_any(self, name: str) -> None:
        if not self.rows:
            return
        numbers = sorted(self.rows)
        lines = [
            f"row {n}{' (line ' + str(n + 1) + ')' if self.kind == 'csv' else ''}: " + "; ".join(self.rows[n])
            for n in numbers[:_MAX_REPORTED]
        ]
        more = f"\n  ... and {len(numbers) - _MAX_REPORTED} more bad rows" if len(numbers) > _MAX_REPORTED else ""
        raise PredictionLogError(
            f"{name}: {len(numbers)} bad row(s), nothing imported:\n  " + "\n  ".join(lines) + more
        )


def _text(value: Any) -> str:
    """A hostile value, bounded and printable, for a message."""
    text = "".join(ch if ch.isprintable() else "?" for ch in str(value))
    return repr(text[:40] + ("..." if len(text) > 40 else ""))


def import_log(
    model: str,
    path: Path,
    settings: Settings,
    *,
    mapping: dict[str, str] | None = None,
    fmt: str | None = None,
    model_version: str = "imported",
    now: datetime | None = None,
) -> dict[str, Any]:
    """Validate a team's prediction log against ``model``'s policy and publish it whole.

    Raises:
        UnknownModelError / PolicyError: no valid policy for ``model``.
        PredictionLogError: unreadable file, missing columns, or bad rows (each named).
    """
    import numpy as np
    import pandas as pd

    from firebreak.policy.schema import load_policy
    from firebreak.prediction_log import PredictionLog

    policy = load_policy(model, settings.policies_dir)
    raw = path.read_bytes() if path.is_file() else b""
    frame = read_table(path, fmt)
    kind = fmt or _FORMATS.get(path.suffix.lower(), "")
    mapping = mapping or {}
    if absent := [s for s in mapping if s not in frame.columns]:
        raise PredictionLogError(f"--map names columns {absent} that {path.name} does not have")
    renamed = [mapping.get(c, c) for c in frame.columns]
    if clashes := sorted({c for c in renamed if renamed.count(c) > 1}):
        raise PredictionLogError(
            f"--map would give {path.name} two columns named {clashes}: map the other one away too, or drop it"
        )
    frame = frame.rename(columns=mapping)
    features = policy.features
    named = [*features.inputs, *features.lineage, features.output, features.confidence]
    if policy.fairness is not None:
        named.append(policy.fairness.protected_attribute)
    required = [*features.inputs, features.output, "ts"]
    if missing := [c for c in required if c not in frame.columns]:
        raise PredictionLogError(
            f"{path.name} lacks columns {missing} the policy of {model} needs (rename yours with --map SRC=DST)"
        )
    problems = _Problems(kind)
    out = pd.DataFrame(index=frame.index)
    digest = hashlib.sha256(raw + json.dumps([model, mapping, model_version]).encode()).hexdigest()[:16]
    if "request_id" in frame.columns:
        ids = frame["request_id"].astype("string").str.strip()
        problems.add(np.flatnonzero((ids.isna() | (ids == "")).to_numpy()), "request_id is empty")
        problems.add(
            np.flatnonzero((ids.str.len() > _MAX_ID).fillna(False).to_numpy()), f"request_id over {_MAX_ID} characters"
        )
        duplicated = ids.duplicated(keep=False) & ids.notna()
        problems.add(np.flatnonzero(duplicated.to_numpy()), "request_id repeats another row's")
        out["request_id"] = ids.astype(object)
    else:  # stable ids, so labels can be joined later and a re-import names the same rows
        out["request_id"] = [f"import-{digest}-{i}" for i in range(len(frame))]
    ts = pd.to_datetime(frame["ts"], utc=True, errors="coerce", format="mixed")
    for i in np.flatnonzero(ts.isna().to_numpy()):
        problems.add([i], f"ts {_text(frame['ts'].iloc[i])} is not a time")
    for i in np.flatnonzero(_ambiguous_dates(frame["ts"]).to_numpy()):
        problems.add([i], f"ts {_text(frame['ts'].iloc[i])} reads as day/month or month/day: write it as ISO 8601")
    late = (ts > (now or datetime.now(UTC)) + timedelta(minutes=5)).fillna(False)
    problems.add(np.flatnonzero(late.to_numpy()), "ts is in the future")
    out["ts"] = ts
    out["model"] = model
    out["model_version"] = str(model_version)[:64]
    if "model_version" in frame.columns:  # the team's log says who answered each row
        given = frame["model_version"].astype("string").str.strip().str.slice(0, 64)
        out["model_version"] = given.mask(given.isna() | (given == ""), str(model_version)[:64]).astype(object)
    out["route"] = "champion"  # the team's own server answered these
    for column in [*features.numeric, features.confidence]:
        if column not in frame.columns:
            continue
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() & frame[column].notna() & (frame[column].astype("string").str.strip() != "")
        for i in np.flatnonzero(bad.to_numpy()):
            problems.add([i], f"{column} {_text(frame[column].iloc[i])} is not a number")
        if column == features.confidence:
            outside = ((values < 0) | (values > 1)).fillna(False)
            problems.add(np.flatnonzero(outside.to_numpy()), f"{column} is outside [0, 1]")
        out[column] = values
    output = frame[features.output]
    problems.add(np.flatnonzero(output.isna().to_numpy()), f"{features.output} (the output) is empty")
    if features.output not in out.columns:
        out[features.output] = _numbers(output)
    for column in named:
        if column in frame.columns and column not in out.columns:
            if (truth := _truth(frame[column])) is not None:
                out[column] = truth  # True/False as the reference held them, not the text "True"
            else:
                out[column] = frame[column].astype("string").str.slice(0, 1000).astype(object)
    problems.raise_if_any(path.name)
    violations = _contract_violations(policy, settings, out)
    if violations is not None:  # what the gateway would have refused: triage's contract-violation rate
        out["contract_violations"] = violations
    dropped = [c for c in frame.columns if c not in out.columns and c not in ("request_id", "model_version")]
    log = PredictionLog(settings.prediction_log_url, writer=f"import-{digest}")
    logged = _already_logged(log, model, out, problems)
    problems.raise_if_any(path.name)
    fresh = out[~logged]
    name = f"import-{digest}"
    if logged.any():  # the rest under names of their own: an earlier run's parts keep theirs
        name += "-" + hashlib.sha256("\n".join(map(str, fresh["request_id"])).encode()).hexdigest()[:8]
    written, _ = log.publish_whole(fresh, name=name)
    return {
        "model": model,
        "rows": int((~logged).sum()),
        "already_logged": int(logged.sum()),
        "from": str(path),
        "import": digest,
        "parts": len(written),
        "from_time": str(ts.min()),
        "to_time": str(ts.max()),
        "answered_by": ", ".join(f"v{v}" for v in sorted(out["model_version"].astype(str).unique())[:10]),
        "columns_left_out": dropped,
    }


def _already_logged(log: Any, model: str, rows: Any, problems: _Problems) -> Any:
    """Which of ``rows`` the log holds already: the same request id logged at the same time (the
    same file again, an export that overlaps an earlier one, an import that stopped mid-way).

    A request id the log holds for a prediction at another time in the file's span is a
    problem, named by row: two answers under one id would join labels to the wrong one. Only
    the imported rows' time span is read, and only ids among the imported ones are kept, so
    memory follows the file, not the log.
    """
    import numpy as np
    import pandas as pd

    since, until = rows["ts"].min(), rows["ts"].max() + pd.Timedelta(microseconds=1)
    window = log.window(model, since=since.to_pydatetime(), until=until.to_pydatetime())
    ids = set(rows["request_id"])
    held: dict[str, set[pd.Timestamp]] = {}
    for batch in window.batches(["request_id"], text_as_category=False):
        found = batch[batch["request_id"].isin(ids)]
        for request_id, ts in zip(found["request_id"], found["ts"], strict=True):
            held.setdefault(str(request_id), set()).add(pd.Timestamp(ts))
    logged = np.zeros(len(rows), dtype=bool)
    for i, (request_id, ts) in enumerate(zip(rows["request_id"], rows["ts"], strict=True)):
        if (times := held.get(str(request_id))) is None:
            continue
        if pd.Timestamp(ts) in times:
            logged[i] = True
        else:
            problems.add(
                [i],
                f"request_id {_text(request_id)} is already logged for a prediction at {min(times).isoformat()}",
            )
    return logged


# 02/12/2026, 2.12.26, 02-12-2026 10:00: the first two numbers could each be the day or the month.
_DAY_MONTH = r"^\s*(\d{1,2})[/.-](\d{1,2})[/.-]\d{2,4}(?:\D|$)"


def _ambiguous_dates(values: Any) -> Any:
    """Per row, True for a date written with both of its first two numbers 12 or less, and unequal.

    A parser picks month first (pandas does): 02/12/2026 meant as 2 December becomes 12 February,
    and the row lands in another partition, read by no window, expired by its own retention.
    """
    import pandas as pd

    parts = values.astype("string").str.extract(_DAY_MONTH)
    first, second = pd.to_numeric(parts[0], errors="coerce"), pd.to_numeric(parts[1], errors="coerce")
    return ((first <= 12) & (second <= 12) & (first != second)).fillna(False).astype(bool)


def _contract_violations(policy: Policy, settings: Settings, rows: pd.DataFrame) -> np.ndarray | None:
    """Per row, the contract columns it breaks ("" when none); None when the contract is absent or
    holds an expectation only Great Expectations runs (the incident still validates the window)."""
    from firebreak.contracts.compiled import compile_suite
    from firebreak.contracts.validation import load_suite

    path = settings.resolve(policy.contract)
    if not path.is_file():
        return None
    compiled = compile_suite(load_suite(path))
    return None if compiled is None else compiled.violated_columns(rows)


def _truth(values: Any) -> Any:
    """The values as booleans when every present one is a boolean or its text (true/false, any case); else None.

    A CSV is read as text, so a boolean column arrives as "True"/"False": kept as text, it
    would break a boolean contract on every row, and a 0/1 label would never equal it.
    """
    import pandas as pd

    present = values.dropna()
    if present.empty:
        return None
    if pd.api.types.infer_dtype(present, skipna=True) == "boolean":
        return values
    text = present.astype("string").str.strip().str.lower()
    if not text.isin(("true", "false")).all():
        return None
    truth = pd.Series(None, index=values.index, dtype=object)
    truth[present.index] = (text == "true").to_numpy()
    return truth


def _numbers(values: Any) -> Any:
    """The values as numbers when every present one is a number or a boolean (true 1, false 0); else as text."""
    import pandas as pd

    if (truth := _truth(values)) is not None:
        return truth.map({True: 1, False: 0})
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.notna().sum() == values.notna().sum():
        return numbers
    return values.astype("string").str.slice(0, 1000).astype(object)


def import_labels(
    model: str, path: Path, id_column: str, label: str, settings: Settings, *, fmt: str | None = None
) -> dict[str, Any]:
    """Validate ground truth by request id and publish it whole, under the policy's label name."""
    import numpy as np
    import pandas as pd

    from firebreak.policy.schema import load_policy
    from firebreak.prediction_log import LabelStore

    policy = load_policy(model, settings.policies_dir)
    frame = read_table(path, fmt)
    kind = fmt or _FORMATS.get(path.suffix.lower(), "")
    if id_column == label:
        raise PredictionLogError(f"--id-column and --label both name {label!r}: the label must be another column")
    if missing := [c for c in (id_column, label) if c not in frame.columns]:
        raise PredictionLogError(f"{path.name} lacks columns {missing}")
    problems = _Problems(kind)
    ids = frame[id_column].astype("string").str.strip()
    problems.add(np.flatnonzero((ids.isna() | (ids == "")).to_numpy()), f"{id_column} (the request id) is empty")
    problems.add(
        np.flatnonzero((ids.str.len() > _MAX_ID).fillna(False).to_numpy()), f"{id_column} over {_MAX_ID} characters"
    )
    problems.add(
        np.flatnonzero((ids.duplicated(keep=False) & ids.notna()).to_numpy()), f"{id_column} repeats another row's"
    )
    values = frame[label]
    empty = values.isna() | (values.astype("string").str.strip() == "")
    problems.add(np.flatnonzero(empty.to_numpy()), f"{label} (the label) is empty")
    stored = _numbers(values)
    _check_label_values(policy, settings, label, stored.mask(empty), problems)
    problems.raise_if_any(path.name)
    labels = pd.DataFrame({"request_id": ids.astype(object), policy.features.label: stored})
    written = LabelStore(settings.labels_dir).append(model, labels)
    return {"model": model, "labels": len(labels), "label_column": policy.features.label, "part": str(written)}


_MAX_CLASSES = 20  # a label of more distinct numbers than this, with no task stated, is a regressor's


def _check_label_values(policy: Policy, settings: Settings, label: str, stored: Any, problems: _Problems) -> None:
    """Labels the model could have: finite numbers for a regressor; for a classifier of numbered
    classes, one of those its training and golden rows hold (when the policy's datasets have the label).

    A label that cannot be one (a request id, "high" for a regressor, 5 for a 0/1 classifier)
    would replace a good one and break the next refit, or score every answer wrong.
    """
    import numpy as np
    import pandas as pd

    numeric = pd.api.types.is_numeric_dtype(stored)
    infinite = stored.notna() & ~np.isfinite(stored.astype(float)) if numeric else pd.Series(False, index=stored.index)
    present = stored.notna() & ~infinite  # an infinite label is named once, below
    if numeric:
        for i in np.flatnonzero(infinite.to_numpy()):
            problems.add([i], f"{label} {_text(stored.iloc[i])} is not a finite number")
    held = _held_labels(policy, settings)
    numbered = held is not None and pd.api.types.is_numeric_dtype(held)
    stated = policy.features.task
    if stated == "regression" or (stated is None and numbered and held.nunique() > _MAX_CLASSES):
        if not numeric:
            bad = present & pd.to_numeric(stored, errors="coerce").isna()
            for i in np.flatnonzero(bad.to_numpy()):
                problems.add([i], f"{label} {_text(stored.iloc[i])} is not a number (the model is a regressor)")
        return
    if not numbered:
        return  # class names: a name the training rows never held may be a new class the world grew
    classes = {float(v) for v in held.unique()}

    def known(value: Any) -> bool:
        try:
            return pd.isna(value) or float(value) in classes
        except (TypeError, ValueError):
            return False

    unknown = present & ~stored.map(known).astype(bool)
    shown = ", ".join(f"{c:g}" for c in sorted(classes)[:10])
    for i in np.flatnonzero(unknown.to_numpy()):
        problems.add([i], f"{label} {_text(stored.iloc[i])} is not one of the model's classes ({shown})")


def _held_labels(policy: Policy, settings: Settings) -> Any:
    """The label's values in the policy's training and golden datasets (1/0 for booleans); None when neither has it."""
    import pandas as pd

    label = policy.features.label
    found = []
    for name in (policy.training.dataset, policy.golden):
        path = settings.resolve(name)
        try:
            table = (
                pd.read_csv(path, usecols=[label]) if path.suffix == ".csv" else pd.read_parquet(path, columns=[label])
            )
        except (OSError, ValueError, KeyError):  # no file, another format, or no label column: nothing from it
            continue
        found.append(_numbers(table[label]).dropna())
    found = [values for values in found if not values.empty]
    return pd.concat(found, ignore_index=True) if found else None


def maintain(model: str, settings: Settings, *, now: datetime | None = None) -> dict[str, Any]:
    """Compact settled hours and expire old ones, by the policy's ``prediction_log`` section."""
    from firebreak.policy.schema import load_policy
    from firebreak.prediction_log import PredictionLog

    policy = load_policy(model, settings.policies_dir).prediction_log
    log = PredictionLog(settings.prediction_log_url)
    now = now or datetime.now(UTC)
    expired = log.expire(model, keep=timedelta(days=policy.retention_days), now=now)
    compacted = log.compact(model, now=now, settle=timedelta(minutes=policy.compact_after_minutes))
    return {"model": model, "hours_expired": expired, "parts_compacted": compacted}

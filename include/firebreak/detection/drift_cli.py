"""The ``firebreak drift`` subcommand: full-data drift verdicts for two tables, optionally with Evidently's report.

SOP stage: detection, by hand. Verdicts come from
:func:`firebreak.detection.stats.compute_drift` on every row; ``--html``
additionally renders Evidently's report on capped samples
(:func:`~firebreak.detection.stats.sample_for_report`), which is the slow part.

Wiring (in ``firebreak.cli``): ``drift_cli.add_parser(sub)`` next to the other
subcommands, and ``return drift_cli.run(args)`` when ``args.command == "drift"``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from firebreak.errors import ExitCode, FirebreakError

if TYPE_CHECKING:
    import pandas as pd

    from firebreak.detection.drift import DriftResult

__all__ = ["add_parser", "run"]

# Exit code for unusable input (unreadable file, missing column), as argparse uses for bad flags.
EXIT_BAD_INPUT = ExitCode.BAD_INPUT
_PARQUET_SUFFIXES = (".parquet", ".pq")
_CSV_SUFFIXES = (".csv",)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Register the ``drift`` subcommand.

    Args:
        subparsers: The ``firebreak`` command's subparsers.

    Returns:
        The ``drift`` parser.
    """
    parser = subparsers.add_parser(
        "drift",
        help="compare two tables (Parquet or CSV) with Evidently's default drift tests, on every row",
        description=(
            "Per-column drift verdicts with the tests, thresholds and rules of Evidently's DataDriftPreset, "
            "computed on the full data; --html also renders Evidently's report on samples."
        ),
    )
    parser.add_argument("--reference", required=True, type=Path, help="reference table (.parquet, .pq or .csv)")
    parser.add_argument("--current", required=True, type=Path, help="current table (.parquet, .pq or .csv)")
    parser.add_argument(
        "--columns", type=_name_list, default=None, help="comma-separated columns (default: columns in both tables)"
    )
    parser.add_argument(
        "--categorical",
        type=_name_list,
        default=None,
        help="comma-separated categorical columns (default: the non-numeric and boolean ones)",
    )
    parser.add_argument(
        "--html", type=Path, default=None, help="also write Evidently's report here (its JSON snapshot beside it)"
    )
    parser.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    parser.add_argument(
        "--fail-on-drift",
        action="store_true",
        help=f"exit {int(ExitCode.FINDINGS)} when the dataset drifted (for CI jobs and cron checks)",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``firebreak drift`` with parsed arguments.

    Args:
        args: Namespace from the ``drift`` parser.

    Returns:
        0 on success (whether or not the data drifted, unless ``--fail-on-drift``);
        2 when a file cannot be read or a column is missing or unusable (a one-line
        error on stderr, nothing printed on stdout); 1 when only the ``--html``
        report failed; 3 with ``--fail-on-drift`` when the dataset drifted.
    """
    from firebreak.detection.stats import compute_drift

    try:
        reference = _read_table(args.reference)
        current = _read_table(args.current)
        columns = _select_columns(args, reference, current)
        categorical = _select_categorical(args, reference, current, columns)
        result = compute_drift(reference, current, columns=columns, categorical=categorical)
    except FirebreakError as exc:
        print(f"firebreak drift: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT

    if args.json:
        print(json.dumps(_summary(result), indent=2))
    else:
        print(_table(result))

    if args.html is not None:
        try:
            _write_report(args.html, reference, current, columns, categorical, result)
        except FirebreakError as exc:
            # The verdicts above stand; only the report is missing.
            print(f"firebreak drift: error: the Evidently report failed: {exc}", file=sys.stderr)
            return 1
    if args.fail_on_drift and result.dataset_drift:
        print(f"firebreak drift: dataset drifted: {', '.join(result.drifted_columns)}", file=sys.stderr)
        return ExitCode.FINDINGS
    return 0


def _name_list(text: str) -> list[str]:
    """Parse ``a,b,c`` into column names (blanks dropped)."""
    return [name.strip() for name in text.split(",") if name.strip()]


def _read_table(path: Path) -> pd.DataFrame:
    """Read a Parquet or CSV file, chosen by extension.

    Args:
        path: The file.

    Returns:
        Its rows.

    Raises:
        DriftInputError: If the extension is unknown or the file cannot be read.
    """
    import pandas as pd

    from firebreak.detection.drift import DriftInputError

    suffix = path.suffix.lower()
    if suffix not in _PARQUET_SUFFIXES + _CSV_SUFFIXES:
        known = ", ".join(_PARQUET_SUFFIXES + _CSV_SUFFIXES)
        raise DriftInputError(f"cannot read {path}: unknown extension {suffix!r} (expected {known})")
    try:
        if suffix in _PARQUET_SUFFIXES:
            return pd.read_parquet(path)
        separator = _csv_separator(path)
        return _codes_as_written(pd.read_csv(path, sep=separator), path, separator)
    # pyarrow's ArrowInvalid and pandas' ParserError/EmptyDataError are ValueErrors.
    except (OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DriftInputError(f"cannot read {path}: {reason}") from exc


_LEADING_ZERO = r"^\s*[+-]?0\d"


def _codes_as_written(frame: pd.DataFrame, path: Path, separator: str) -> pd.DataFrame:
    """``frame`` with its whole-number columns whose text has leading zeros (``02139``, ``0042``) as that text.

    Padded digits are codes (postcodes, merchant or product codes): read as numbers they lose
    their zeros and their kind, and the same codes from a Parquet file, or from a CSV written
    without the padding, read as another column. Only whole-number columns are read again.
    """
    import pandas as pd

    whole = [
        c
        for c in frame.columns
        if pd.api.types.is_integer_dtype(frame[c])
        or (pd.api.types.is_float_dtype(frame[c]) and bool((frame[c].dropna() % 1 == 0).all()))
    ]
    if not whole:
        return frame
    # By position: a header naming a column twice is refused before this, but names may repeat
    # pandas' own renaming (``x.1``), which ``usecols`` by name would not find.
    positions = [frame.columns.get_loc(c) for c in whole]
    text = pd.read_csv(path, sep=separator, usecols=positions, dtype=str)
    padded = {c: text[c] for c in text.columns if text[c].str.contains(_LEADING_ZERO, na=False).any()}
    return frame.assign(**padded) if padded else frame


def _csv_separator(path: Path) -> str:
    """The separator of a CSV file, read from its header line; two columns with one name are refused.

    A comma, unless the header has none and holds semicolons, tabs or bars (what a spreadsheet
    set to another locale writes): read with commas, such a file is one column of text, and
    nothing in it would be compared.

    Raises:
        DriftInputError: The header names a column twice (pandas would rename the second "x.1").
    """
    import csv
    from collections import Counter

    from firebreak.detection.drift import DriftInputError

    with open(path, encoding="utf-8-sig", errors="replace", newline="") as file:
        header = file.readline(1 << 20)
    separator = ","
    if "," not in header:
        separator = next((c for c in (";", "\t", "|") if c in header), ",")
    names = next(csv.reader([header], delimiter=separator), [])
    repeated = sorted(n.strip() for n, k in Counter(names).items() if k > 1 and n.strip())
    if repeated:
        shown = ", ".join(repr(n[:60]) for n in repeated[:5])
        raise DriftInputError(f"cannot read {path}: the header names {shown} more than once")
    return separator


def _select_columns(args: argparse.Namespace, reference: pd.DataFrame, current: pd.DataFrame) -> list[str]:
    """Return the requested columns, or those both tables have (in the reference's order).

    Raises:
        DriftInputError: If a requested column is missing from a file, or the files share none.
    """
    from firebreak.detection.drift import DriftInputError

    if args.columns is None:
        in_current = {str(c) for c in current.columns}
        common = [str(c) for c in reference.columns if str(c) in in_current]
        if not common:
            raise DriftInputError(f"{args.reference} and {args.current} have no column in common")
        return common
    if not args.columns:
        raise DriftInputError("--columns names no column")
    for path, frame in ((args.reference, reference), (args.current, current)):
        present = {str(c) for c in frame.columns}
        for column in args.columns:
            if column not in present:
                raise DriftInputError(f"column {column!r} is not in {path}")
    return list(args.columns)


def _select_categorical(
    args: argparse.Namespace, reference: pd.DataFrame, current: pd.DataFrame, columns: list[str]
) -> list[str]:
    """Return the requested categorical columns, or the non-numeric/boolean ones among ``columns``.

    Raises:
        DriftInputError: If a requested categorical column is not among the analysed columns.
    """
    import pandas as pd

    from firebreak.detection.drift import DriftInputError

    if args.categorical is not None:
        stray = [c for c in args.categorical if c not in columns]
        if stray:
            raise DriftInputError(f"categorical column {stray[0]!r} is not among the analysed columns")
        return list(args.categorical)

    def is_numeric(series: pd.Series) -> bool:
        return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)

    return [c for c in columns if not (is_numeric(reference[c]) and is_numeric(current[c]))]


def _summary(result: DriftResult) -> dict[str, object]:
    """The JSON printed by ``--json``: dataset verdict, drifted share and ranked columns."""
    return {
        "dataset_drift": result.dataset_drift,
        "drift_share": result.drift_share,
        "columns": [c.to_dict() for c in result.columns],
    }


def _table(result: DriftResult) -> str:
    """A plain-text table of the verdicts, strongest drift first."""
    drifted = len(result.drifted_columns)
    verdict = "DRIFT" if result.dataset_drift else "no drift"
    lines = [
        f"dataset: {verdict} ({drifted} of {len(result.columns)} columns drifted, "
        f"share {result.drift_share:.2f}; threshold {result.drift_share_threshold:.2f})",
        f"rows: {result.reference_rows:,} reference, {result.current_rows:,} current",
        "",
    ]
    header = ("column", "method", "score", "threshold", "drifted")
    rows = [
        (c.column, c.method, f"{c.score:.4g}", f"{c.threshold:g}", "yes" if c.drifted else "no") for c in result.columns
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _write_report(
    html_path: Path,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: list[str],
    categorical: list[str],
    result: DriftResult,
) -> None:
    """Render Evidently's report on capped samples and note where it disagrees with the full-data verdicts."""
    from firebreak.detection.drift import run_drift_report
    from firebreak.detection.stats import sample_for_report

    json_path = html_path.with_suffix(".json")
    reference_sample = sample_for_report(reference)
    current_sample = sample_for_report(current)
    print(
        f"firebreak drift: building Evidently's report on {len(reference_sample):,} reference and "
        f"{len(current_sample):,} current rows (slow) -> {html_path}",
        file=sys.stderr,
        flush=True,
    )
    report = run_drift_report(
        reference_sample,
        current_sample,
        columns=columns,
        categorical=categorical,
        html_path=html_path,
        json_path=json_path,
    )
    full = {c.column: c.drifted for c in result.columns}
    differ = [c.column for c in report.columns if c.drifted != full[c.column]]
    if differ:
        print(
            f"firebreak drift: the sampled report disagrees with the full-data verdicts on {differ}; "
            "trust the full-data verdicts",
            file=sys.stderr,
        )
    print(f"firebreak drift: wrote {html_path} and {json_path}", file=sys.stderr)

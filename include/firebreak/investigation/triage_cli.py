"""The ``firebreak triage`` subcommand: diagnose a current table against a reference one.

SOP stages: triage, investigate and diagnose, by hand. Gathers the evidence with
:func:`firebreak.investigation.evidence.gather_evidence` (the contract compiled into
vectorised checks, full-data drift, the skew rules, multivariate drift, group fairness,
concept drift and the performance estimate, the segments hit) and decides with
:func:`firebreak.investigation.diagnosis.classify`, the classifier the DAG's ``diagnose``
stage uses.

Wiring (in ``firebreak.cli``): ``triage_cli.add_parser(sub)`` next to the other
subcommands, and ``return triage_cli.run(args)`` when ``args.command == "triage"``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from firebreak.errors import ExitCode, FirebreakError
from firebreak.inert import clean

__all__ = ["add_parser", "run"]

EXIT_BAD_INPUT = ExitCode.BAD_INPUT
# The classes `firebreak triage` can find (what `classify` decides from a table pair).
FAIL_ON_CLASSES = ("drift", "skew", "bias")
_LINE = 1500  # characters of one printed line at most


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Register the ``triage`` subcommand on the ``firebreak`` command's subparsers."""
    parser = subparsers.add_parser(
        "triage",
        help="diagnose a current table against a reference one: none, drift, skew or bias",
        description=(
            "Contract (given, or derived from the reference), full-data drift, unit/scale changes and group "
            "fairness, classified by the same code as the incident_response DAG's diagnose step."
        ),
    )
    parser.add_argument("--reference", required=True, type=Path, help="reference table (.parquet, .pq or .csv)")
    parser.add_argument("--current", required=True, type=Path, help="current table (.parquet, .pq or .csv)")
    parser.add_argument(
        "--contract",
        type=Path,
        default=None,
        help="Great Expectations suite JSON (default: derived from the reference)",
    )
    parser.add_argument("--label-column", default=None, help="ground truth column (error rates per group)")
    parser.add_argument("--prediction-column", default=None, help="model decision or score column")
    parser.add_argument("--confidence-column", default=None, help="model confidence column")
    parser.add_argument("--protected-column", default=None, help="protected attribute (fairness figures)")
    parser.add_argument(
        "--positive-class",
        default=None,
        help="the class a 1 or a score stands for, when labels or decisions are class names "
        "(the selecting one for fairness figures; 'yes' for labels yes/no beside a score)",
    )
    parser.add_argument("--json", action="store_true", help="print the diagnosis and its evidence as JSON")
    parser.add_argument(
        "--fail-on",
        action="append",
        choices=[*FAIL_ON_CLASSES, "any"],
        default=[],
        metavar="CLASS",
        help=f"exit {int(ExitCode.FINDINGS)} when the class found is CLASS ({', '.join(FAIL_ON_CLASSES)}, or any "
        "class but none); repeatable",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``firebreak triage``; 2 on unusable input (a one-line error on stderr).

    0 whatever the class, unless ``--fail-on CLASS`` names the class found: then 3.
    """
    from firebreak.contracts.validation import load_suite
    from firebreak.detection.drift_cli import _read_table
    from firebreak.investigation.diagnosis import triage_tables

    try:
        reference = _read_table(args.reference)
        current = _read_table(args.current)
        suite = load_suite(args.contract) if args.contract is not None else None
        if args.protected_column and not args.prediction_column:
            raise FirebreakError("--protected-column needs --prediction-column (fairness compares decisions)")
        if args.positive_class and not (args.protected_column or args.label_column):
            raise FirebreakError(
                "--positive-class names the class that labels or decisions in words stand for: it goes with "
                "--label-column or --protected-column"
            )
        verdict, evidence = triage_tables(
            reference,
            current,
            contract=suite,
            label=args.label_column,
            prediction=args.prediction_column,
            confidence=args.confidence_column,
            protected=args.protected_column,
            positive_class=args.positive_class,
        )
    except FirebreakError as exc:
        print(f"firebreak triage: error: {_printable(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    report = {
        **verdict.to_dict(),
        "reference": {"path": str(args.reference), "rows": len(reference)},
        "current": {"path": str(args.current), "rows": len(current)},
        "contract": "given: " + str(args.contract) if args.contract else "derived from the reference",
        "segments": evidence["segments"],
        "multivariate": evidence["drift"].get("multivariate"),
        "estimated_performance": evidence.get("estimated_performance"),
        "figures": _figures(evidence),
    }
    if args.json:
        from firebreak.bounded_json import finite

        print(json.dumps(finite(report), indent=2, default=str, allow_nan=False))
    else:
        print(_text(report))
    found = str(report["failure_class"])
    if found != "none" and (found in args.fail_on or "any" in args.fail_on):
        print(f"firebreak triage: found {found} (--fail-on)", file=sys.stderr)
        return ExitCode.FINDINGS
    return 0


def _figures(evidence: dict[str, Any]) -> dict[str, Any]:
    contract = evidence["contract"]
    drift = evidence["drift"]
    figures: dict[str, Any] = {
        "contract": {
            "passed": contract["passed"],
            "failed": len(contract["failures"]),
            "evaluated": contract["evaluated_expectations"],
        },
        "drift": {
            "dataset_drift": drift.get("dataset_drift"),
            "drift_share": drift.get("drift_share"),
            "drifted_columns": [c["column"] for c in drift.get("columns", []) if c.get("drifted")],
            "skipped": drift.get("skipped", []),
        },
        "scale_changes": drift.get("scale_changes", []),
    }
    figures["data_checks"] = drift.get("data_checks", {})
    for key in ("fairness", "reference_fairness", "confidence", "performance", "reference_fit"):
        if key in evidence:
            figures[key] = evidence[key]
    return figures


def _who(report: dict[str, Any]) -> str:
    from firebreak.investigation.segments import describe

    segments = report["segments"]
    if report["failure_class"] == "none":
        return "no failure to localise"
    if segments.get("scope") == "none":
        return "all users"  # a failure on no per-row signal (a changed constant, a drift with no new segment)
    return describe(segments)


def _impact(estimate: dict[str, Any] | None) -> list[str]:
    if not estimate:
        return []
    line = (
        f"impact:        {estimate['metric']} {estimate['reference']:g} on the reference -> "
        f"{estimate['estimate']:g} estimated ({estimate['method']})"
    )
    if "realised" in estimate:
        line += f", {estimate['realised']:g} realised"
    return [line]


def _text(report: dict[str, Any]) -> str:
    lines = [
        f"failure class: {report['failure_class']}"
        + (f"  (severity {report['severity']}, confidence {report['confidence']:.2f})" if report["severity"] else "")
        + ("" if report["severity"] else f"  (confidence {report['confidence']:.2f})"),
        f"root cause:    {report['root_cause']}",
        f"columns:       {', '.join(report['columns']) or '-'}",
        f"tables:        reference {report['reference']['rows']:,} rows, current {report['current']['rows']:,} rows; "
        f"contract {report['contract']}",
        f"who is hit:    {_who(report)}",
        *_impact(report["estimated_performance"]),
        "evidence (strongest first):",
    ]
    shown = report["evidence"][:8]
    for item in shown:
        arrow = item["points_to"] or "context"
        lines.append(f"  - [{arrow}] {item['detail']}")
    if not shown:
        lines.append("  - nothing out of the ordinary")
    if len(report["evidence"]) > len(shown):
        lines.append(f"  ... {len(report['evidence']) - len(shown)} more (--json shows all)")
    # Column names and values come from the team's files: no escape sequence reaches the terminal,
    # and a name of thousands of characters cannot flood it.
    return "\n".join(_printable(line) for line in lines)


def _printable(text: Any) -> str:
    """One line for the terminal: escape sequences and control characters gone (a line break in
    a column name cannot start a line of its own), its alignment kept, at most ``_LINE`` long."""
    return clean(text, _LINE, keep_newlines=True).replace("\n", " ")

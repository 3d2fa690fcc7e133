"""The incident's evidence as pictures: drift by column, outputs and confidence before, during
and after, per-group rates before and after, traffic and breaker state over time.

SOP stage *Learn*: the post-mortem embeds these PNGs (and its HTML version carries them
inline); the incident console serves the same images from the same functions, so a chart
reads the same wherever it is seen. Every chart is drawn from the state DB alone (evidence,
timeline, breaker events): the distributions and the traffic by route are summarised into
``outputs`` evidence by :func:`summarise_outputs` when the post-mortem is written.

Every label that comes from outside (column, group and route names) goes through
:func:`firebreak.inert.label`: matplotlib would read ``$...$`` as math.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from firebreak.incidents.enums import BreakerState, EvidenceKind, Route
from firebreak.incidents.store import TimelineEvent
from firebreak.inert import clean, label
from firebreak.postmortem.clock import utc

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

BINS = 30
MAX_COLUMNS = 15  # the drift chart shows the columns that moved most
COLOURS = {"before": "#7f8c8d", "during": "#c0392b", "after": "#27ae60"}
ROUTE_COLOURS = {Route.CHAMPION: "#2980b9", Route.HEURISTIC: "#e67e22", Route.FALLBACK_MODEL: "#8e44ad"}


@dataclass(frozen=True)
class Chart:
    """One rendered chart: ``name`` is its file stem, ``title`` and ``alt`` describe it."""

    name: str
    title: str
    alt: str
    png: bytes


# -- summaries recorded as evidence (small JSON) -----------------------------------------------


def histogram(series: Mapping[str, pd.Series], bins: int = BINS) -> dict[str, Any] | None:
    """Shares per bin of each named numeric series, on shared edges (one chart, comparable bars)."""
    import numpy as np
    import pandas as pd

    numeric = {name: pd.to_numeric(s, errors="coerce").dropna() for name, s in series.items()}
    numeric = {name: s for name, s in numeric.items() if len(s)}
    if not numeric:
        return None
    values = np.concatenate([s.to_numpy(dtype=float) for s in numeric.values()])
    finite = values[np.isfinite(values)]
    if not len(finite):
        return None
    low, high = np.quantile(finite, [0.005, 0.995])  # a few extreme answers must not flatten the rest
    if high <= low:
        low, high = float(finite.min()), float(finite.max()) + 1e-9
    # Prices and amounts span orders of magnitude: log-spaced bins show every part of the range.
    log = bool(low > 0 and high / low > 50)
    edges = np.geomspace(low, high, bins + 1) if log else np.linspace(low, high, bins + 1)
    out: dict[str, list[float]] = {}
    rows: dict[str, int] = {}
    for name, s in numeric.items():
        counts, _ = np.histogram(np.clip(s.to_numpy(dtype=float), low, high), bins=edges)
        out[name] = [round(float(c) / len(s), 5) for c in counts]
        rows[name] = len(s)
    return {"edges": [round(float(e), 6) for e in edges], "shares": out, "rows": rows, "log": log}


def traffic_by_route(window: pd.DataFrame, *, ts: str = "ts", route: str = "route") -> dict[str, Any] | None:
    """Requests per hour by route in the prediction log (who answered users, hour by hour)."""
    import pandas as pd

    if window.empty or ts not in window.columns or route not in window.columns:
        return None
    stamps = pd.to_datetime(window[ts], utc=True).dt.floor("h")
    counts = window.assign(_hour=stamps).groupby(["_hour", route]).size().unstack(fill_value=0).sort_index()
    return {
        "hours": [t.isoformat() for t in counts.index],
        "routes": {str(r): [int(v) for v in counts[r]] for r in counts.columns},
    }


def summarise_outputs(
    output: str,
    confidence: str,
    *,
    before: pd.DataFrame | None,
    during: pd.DataFrame,
    after: pd.DataFrame | None,
    names: Mapping[str, str],
    floor: float | None,
) -> dict[str, Any]:
    """The ``outputs`` evidence: output and confidence histograms of the three moments, and traffic.

    ``before``: the pre-incident champion on the data it was trained on; ``during``: what
    users got in the triage window; ``after``: the fix on the same inputs. ``names`` says
    which version each moment is, in words.
    """
    frames = {moment: f for moment, f in (("before", before), ("during", during), ("after", after)) if f is not None}
    payload: dict[str, Any] = {"names": dict(names), "output_column": output, "confidence_floor": floor}
    payload["output"] = histogram({m: f[output] for m, f in frames.items() if output in f.columns})
    payload["confidence"] = histogram({m: f[confidence] for m, f in frames.items() if confidence in f.columns})
    payload["traffic"] = traffic_by_route(during)
    return payload


# -- drawing ------------------------------------------------------------------------------------


def _figure(height: float = 3.2) -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, height), dpi=100, layout="constrained")
    return fig, fig.subplots()


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def drift_chart(drift: dict[str, Any]) -> Chart | None:
    """Each column's drift score against its test's threshold, drifted columns in red."""
    columns = [c for c in drift.get("columns", []) if isinstance(c, dict) and c.get("threshold")]
    if not columns:
        return None

    def strength(c: dict[str, Any]) -> float:
        # p-value tests drift when the score falls under the threshold; distance tests when it rises over it.
        score, threshold = float(c.get("score") or 0.0), float(c["threshold"])
        if "p_value" in str(c.get("method", "")).lower() or str(c.get("stattest", "")).endswith("p_value"):
            return threshold / max(score, 1e-12)
        return score / threshold

    ranked = sorted(columns, key=strength, reverse=True)[:MAX_COLUMNS]
    fig, ax = _figure(0.6 + 0.32 * len(ranked))
    names = [label(c.get("column")) for c in reversed(ranked)]
    values = [min(strength(c), 20.0) for c in reversed(ranked)]
    colours = ["#c0392b" if c.get("drifted") else "#95a5a6" for c in reversed(ranked)]
    ax.barh(names, values, color=colours)
    ax.axvline(1.0, color="black", linewidth=1, linestyle="--")
    ax.set_xlabel("drift score ÷ its threshold (over 1 = drifted; capped at 20)")
    ax.set_title(f"Drift by column: {sum(1 for c in columns if c.get('drifted'))} of {len(columns)} drifted")
    return Chart(
        "drift",
        "Drift by column",
        "Bar chart of each input column's drift score relative to its test's threshold",
        _png(fig),
    )


def _histogram_chart(
    name: str, what: str, hist: dict[str, Any] | None, names: Mapping[str, str], floor: float | None = None
) -> Chart | None:
    if not hist:
        return None
    edges = hist["edges"]
    width = edges[1] - edges[0]
    fig, ax = _figure()
    for moment, shares in hist["shares"].items():
        ax.step(
            edges[:-1],
            [100 * s for s in shares],
            where="post",
            color=COLOURS.get(moment, "#34495e"),
            linewidth=2,
            label=label(f"{moment}: {names.get(moment, moment)} ({hist['rows'].get(moment, 0)} rows)", 80),
        )
    if floor is not None:
        ax.axvline(floor, color="black", linestyle="--", linewidth=1, label=f"confidence floor {floor:g}")
    if hist.get("log"):
        ax.set_xscale("log")
    ax.set_xlim(edges[0], edges[-1] + (0 if hist.get("log") else width))
    ax.set_ylabel("% of answers")
    ax.set_xlabel(label(what, 60))
    ax.legend(fontsize=8)
    ax.set_title(f"{label(what, 60)}: before, during and after the incident")
    return Chart(name, f"{clean(what, 60)} before, during and after", f"Distribution of {clean(what, 60)}", _png(fig))


def output_charts(outputs: dict[str, Any]) -> list[Chart]:
    """Output and confidence distributions: before the incident, during it, after the fix."""
    names = outputs.get("names", {})
    found = [
        _histogram_chart("outputs", f"output {outputs.get('output_column', '')}", outputs.get("output"), names),
        _histogram_chart("confidence", "confidence", outputs.get("confidence"), names, outputs.get("confidence_floor")),
    ]
    return [c for c in found if c is not None]


def fairness_chart(fairness: dict[str, Any], gate: dict[str, Any]) -> Chart | None:
    """Each group's rate in the decisions served (before) and from the fix (after)."""
    import numpy as np

    groups = fairness.get("groups") or {}
    if not groups:
        return None
    after = ((gate.get("fairness") or {}).get("candidate") or {}).get("groups") or {}
    metric = next(
        (m for m in ("selection_rate", "error_rate", "mape") if any(m in (g or {}) for g in groups.values())), None
    )
    if metric is None:
        return None
    names = list(groups)
    x = np.arange(len(names))
    fig, ax = _figure()
    before = [float((groups[g] or {}).get(metric) or 0.0) for g in names]
    ax.bar(x - 0.2, before, 0.4, color=COLOURS["during"], label="before: decisions served")
    if after:
        ax.bar(
            x + 0.2,
            [float((after.get(g) or {}).get(metric) or 0.0) for g in names],
            0.4,
            color=COLOURS["after"],
            label="after: the fix",
        )
    ax.set_xticks(x, [label(g, 20) for g in names])
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title(f"{metric.replace('_', ' ').capitalize()} by {label(fairness.get('attribute', 'group'), 30)}")
    ax.legend(fontsize=8)
    return Chart(
        "fairness",
        f"{metric.replace('_', ' ')} by group, before and after",
        f"Bar chart of {metric.replace('_', ' ')} per group",
        _png(fig),
    )


def serving_chart(
    traffic: dict[str, Any] | None,
    events: list[TimelineEvent],
    breaker_events: list[dict[str, Any]],
    fallback: str,
) -> Chart | None:
    """Requests per hour by route, with the route and the gateway breaker's state over time."""
    route_changes = _route_changes(events, fallback)
    breaker = [(utc(e["at"]), str(e["target"])) for e in breaker_events if utc(e.get("at"))]
    if not (traffic and traffic.get("hours")) and not route_changes and not breaker:
        return None
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.2), dpi=100, layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1.4])
    times: list[datetime] = []
    if traffic and traffic.get("hours"):
        hours = [utc(h) for h in traffic["hours"]]
        base = [0] * len(hours)
        for route, counts in traffic["routes"].items():
            top.bar(
                hours, counts, width=1 / 24, bottom=base, align="edge", label=label(route, 30),
                color=ROUTE_COLOURS.get(route, "#7f8c8d"),
            )  # fmt: skip
            base = [b + c for b, c in zip(base, counts, strict=True)]
        times += [h for h in hours if h]
        top.legend(fontsize=8, title="answered by", title_fontsize=8)
    top.set_ylabel("requests per hour")
    top.set_title("Traffic by route, and the route and breaker over time")
    states = {"champion": 0, "fallback": 1}
    if route_changes:
        if times and min(times) < route_changes[0][0]:  # the model served until the first change
            route_changes = [(min(times), "champion"), *route_changes]
        xs = [t for t, _ in route_changes]
        bottom.step(xs, [states[s] for _, s in route_changes], where="post", color="#2c3e50", label="route")
        for (at, state), (_, before) in zip(route_changes[1:], route_changes, strict=False):
            if state != before:
                word = "contained" if state == "fallback" else "restored"
                top.axvline(at, color="#2c3e50", linestyle=":", linewidth=1)
                top.annotate(f"{word} {at:%H:%M}", (at, 1), xycoords=("data", "axes fraction"), fontsize=7,
                             rotation=90, va="top", ha="right")  # fmt: skip
        times += xs
    if breaker:
        levels: dict[str, float] = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 0.5, BreakerState.OPEN: 1}
        bottom.step(
            [t for t, _ in breaker], [levels.get(s, 0) for _, s in breaker], where="post",
            color="#c0392b", linestyle="--", label="gateway breaker (open = 1)",
        )  # fmt: skip
        times += [t for t, _ in breaker if t]
    if times:
        end = max(times)
        for line in bottom.get_lines():  # hold the last state to the end of the chart
            xs, ys = list(line.get_xdata()), list(line.get_ydata())
            if xs and xs[-1] < end:
                line.set_data([*xs, end], [*ys, ys[-1]])
    bottom.set_yticks([0, 1], ["champion", label(f"fallback ({fallback})", 30)])
    bottom.set_ylim(-0.3, 1.3)
    if route_changes or breaker:
        bottom.legend(fontsize=8, loc="center left")
    fig.autofmt_xdate()
    return Chart(
        "serving",
        "Traffic, route and breaker over time",
        "Requests per hour by route, with the routing state and the breaker state over time",
        _png(fig),
    )


def _route_changes(events: list[TimelineEvent], fallback: str) -> list[tuple[datetime, str]]:
    """(time, champion|fallback) from the incident's containment and restore lines."""
    changes: list[tuple[datetime, str]] = []
    for event in events:
        at = utc(event.at)
        if at is None:
            continue
        if event.kind == EvidenceKind.CONTAINMENT and "dry run" not in event.message:
            if not changes:
                changes.append((at, "champion"))
            changes.append((at, "fallback"))
        elif event.kind == EvidenceKind.RESTORE and "dry run" not in event.message:
            changes.append((at, "champion"))
    return changes


def charts_for(
    evidence: dict[str, dict[str, Any]],
    events: list[TimelineEvent],
    breaker_events: list[dict[str, Any]],
    fallback: str,
) -> list[Chart]:
    """Every chart the incident's evidence supports, in the post-mortem's order."""
    outputs = evidence.get(EvidenceKind.OUTPUTS, {})
    makers: list[Callable[[], Chart | list[Chart] | None]] = [
        lambda: drift_chart(evidence.get(EvidenceKind.DRIFT, {})),
        lambda: output_charts(outputs),
        lambda: fairness_chart(evidence.get(EvidenceKind.FAIRNESS, {}), evidence.get(EvidenceKind.GATE, {})),
        lambda: serving_chart(outputs.get("traffic"), events, breaker_events, fallback),
    ]
    charts: list[Chart] = []
    for make in makers:
        made = make()
        if isinstance(made, list):
            charts += made
        elif made is not None:
            charts.append(made)
    return charts


def available_charts(evidence: dict[str, dict[str, Any]], events: list[TimelineEvent]) -> list[str]:
    """Names of the charts the evidence supports, without drawing them (the console's incident page)."""
    outputs = evidence.get(EvidenceKind.OUTPUTS, {})
    names = []
    if any(isinstance(c, dict) and c.get("threshold") for c in evidence.get(EvidenceKind.DRIFT, {}).get("columns", [])):
        names.append("drift")
    names += [n for n, key in (("outputs", "output"), ("confidence", "confidence")) if outputs.get(key)]
    if evidence.get(EvidenceKind.FAIRNESS, {}).get("groups"):
        names.append("fairness")
    if outputs.get("traffic") or _route_changes(events, "fallback"):
        names.append("serving")
    return names


def chart_named(
    name: str,
    evidence: dict[str, dict[str, Any]],
    events: list[TimelineEvent],
    breaker_events: list[dict[str, Any]],
    fallback: str,
) -> Chart | None:
    """One chart by name (what the console serves as ``<name>.png``); None when the evidence has none."""
    outputs = evidence.get(EvidenceKind.OUTPUTS, {})
    if name == "drift":
        return drift_chart(evidence.get(EvidenceKind.DRIFT, {}))
    if name in {"outputs", "confidence"}:
        return next((c for c in output_charts(outputs) if c.name == name), None)
    if name == "fairness":
        return fairness_chart(evidence.get(EvidenceKind.FAIRNESS, {}), evidence.get(EvidenceKind.GATE, {}))
    if name == "serving":
        return serving_chart(outputs.get("traffic"), events, breaker_events, fallback)
    return None

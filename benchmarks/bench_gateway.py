"""The serving gateway against `mlflow models serve`, on the same model, in one run.

The model: a 50-tree GradientBoostingRegressor (scikit-learn flavor, registered in a
temporary MLflow) predicting a price from five numeric pricing features. Both servers
serve `models:/bench-gbr@champion`; the same load generator (`wrk`, Debian package) sends
the same one-row `dataframe_records` body over the same number of connections.

The gateway runs with every guard on: the contract compiled from the model's GX suite,
routing from the state DB, the breaker with its sanity bound, shadow scoring of a
challenger, the Parquet prediction log and Prometheus metrics.

Also measured:
- the compiled contract check per row (the anchor: GX validating the same row);
- failure onset -> fallback served, at a constant 100 req/s (the pricing scenario:
  in-season traffic, then off-season traffic that v1 prices under cost);
- logged predictions = requests answered (after a clean stop).

Run: `.venv/bin/python benchmarks/bench_gateway.py [--seconds 15] [--connections 8]
[--compare-with OTHER/include]`; prints Markdown tables. `--compare-with` also serves the
model with another checkout's code (e.g. main before a change), in the same run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
FEATURES = ["unit_cost", "competitor_price", "demand_index", "inventory_days", "day_of_year"]
CALLERS = ("127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.14")
ROW = {"unit_cost": 10.0, "competitor_price": 14.0, "demand_index": 1.1, "inventory_days": 30, "day_of_year": 120}
POLICY = """
model: bench-gbr
description: 50-tree gradient boosting price model (benchmark)
owner: bench
features: {{numeric: {features}, label: optimal_price, output: prediction, confidence: confidence}}
contract: {contract}
golden: {golden}
detection: {{confidence_floor: 0.7, window_hours: 24, min_predictions: 10, output_floor: {{relative_to: unit_cost, min_ratio: 0.01}}, golden_tolerance: 0.1}}
severity: {{rules: [{{severity: SEV2, when: {{low_confidence_rate: 0.2}}}}]}}
containment: {{route: heuristic, heuristic: "bench_fallback:price", description: cost x 1.3}}
training: {{recipe: "bench_fallback:price", dataset: data/x.parquet}}
remediation: {{by_failure_class: {{drift: retrain}}}}
gate: {{golden_max_regression: 0.05, recent_min_improvement: 0.1}}
"""
FALLBACK = """
import pandas as pd
def price(frame, settings):
    return pd.DataFrame({"prediction": frame["unit_cost"] * 1.3}, index=frame.index)
"""


def suite() -> dict[str, Any]:
    exps: list[dict[str, Any]] = []
    bounds = {
        "unit_cost": (0.01, 5000),
        "competitor_price": (0.01, 10000),
        "demand_index": (0, 20),
        "inventory_days": (0, 365),
        "day_of_year": (1, 366),
    }
    for column, (low, high) in bounds.items():
        exps.append({"type": "expect_column_to_exist", "kwargs": {"column": column}})
        exps.append({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": column}})
        exps.append(
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": column, "min_value": low, "max_value": high},
            }
        )
    return {"name": "bench_inputs", "expectations": exps}


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(url)


def wrk(url: str, seconds: int, connections: int, lua: Path) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(lua), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert m, out
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50": ms("50"),
        "p99": ms("99"),
        "requests": total,
        "non2xx": int(errors.group(1)) if errors else 0,
    }


def free_port() -> int:
    from firebreak_dev.services import free_port as fp

    return fp()


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()


def contract_cost() -> dict[str, float]:
    import pandas as pd

    from firebreak.contracts.online import OnlineContract
    from firebreak.contracts.validation import validate_frame

    path = Path(tempfile.mkdtemp()) / "suite.json"
    path.write_text(json.dumps(suite()))
    compiled = OnlineContract.load(path)
    row = [ROW]
    n = 20000
    runs = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(n):
            compiled.check(row)
        runs.append((time.perf_counter() - t) / n * 1e6)
    frame = pd.DataFrame(row)
    validate_frame(frame, path)
    gx = []
    for _ in range(3):
        t = time.perf_counter()
        validate_frame(frame, path)
        gx.append((time.perf_counter() - t) * 1e6)
    return {"online_us": statistics.median(runs), "gx_us": statistics.median(gx)}


def setup_model(home: Path) -> dict[str, str]:
    """Register the GBR (and a challenger for shadow) in a fresh MLflow; write its policy and contract."""
    import mlflow
    from sklearn.ensemble import GradientBoostingRegressor

    from firebreak.containment.state import RoutingStore
    from firebreak.incidents.enums import Alias, Route
    from firebreak.registry.mlflow_registry import Registry
    from firebreak.scenarios import pricing
    from firebreak.settings import Settings

    policies = home / "policies"
    policies.mkdir(parents=True)
    (home / "bench_fallback.py").write_text(FALLBACK)
    contract = home / "bench.json"
    contract.write_text(json.dumps(suite()))
    golden = home / "golden.csv"
    golden.write_text("unit_cost\n1\n")
    (policies / "bench-gbr.yaml").write_text(
        POLICY.format(features=json.dumps(FEATURES), contract=contract, golden=golden)
    )
    env = {
        "FIREBREAK_HOME": str(home),
        "FIREBREAK_POLICIES_DIR": str(policies),
        "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
        # The benchmark's fallback module, then the code under test (a worktree's include/).
        "PYTHONPATH": os.pathsep.join(filter(None, [str(home), os.environ.get("PYTHONPATH", "")])),
    }
    os.environ.update(env)
    sys.path.insert(0, str(home))
    settings = Settings.from_env()
    history = pricing.generate_history(7)
    store = RoutingStore(settings.state_db_url)
    registry = Registry(settings)
    for alias, seed in ((Alias.CHAMPION, 0), (Alias.CHALLENGER, 1)):
        model = GradientBoostingRegressor(n_estimators=50, random_state=seed).fit(
            history[FEATURES], history[pricing.LABEL]
        )
        # Artifacts under FIREBREAK_HOME, never ./mlruns of the working directory.
        with mlflow.start_run(experiment_id=registry.experiment_id("firebreak-bench")):
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                input_example=history[FEATURES].head(3),
                registered_model_name="bench-gbr",
                skops_trusted_types=["sklearn.tree._tree.Tree", "sklearn._loss.loss.HalfSquaredError"],
            )
        registry.move_alias(
            "bench-gbr", alias, str(info.registered_model_version), incident_id=None, actor="bench", reason="bench"
        )
    store.ensure_routing("bench-gbr", Route.CHAMPION, "bench")
    return env


def phases(home_env: dict[str, str], rate: float = 100.0) -> dict[str, Any]:
    """Constant-rate pricing traffic through normal -> failure -> recovered (RELIABILITY 22).

    Normal: in-season requests v1 prices well. Failure (t0): off-season requests v1 prices
    under cost. Recovered: in-season again; after the policy's open wait the champion is
    probed on live inputs and the breaker closes. Measures the time to fallback and back,
    p99 latency per phase, errors, and logged predictions against answered requests.
    """
    from firebreak.prediction_log import PredictionLog
    from firebreak.scenarios import pricing
    from firebreak.settings import Settings

    env = {**os.environ, **home_env}
    env.pop("FIREBREAK_POLICIES_DIR", None)
    os.environ.pop("FIREBREAK_POLICIES_DIR", None)
    os.environ.update({k: v for k, v in env.items() if k.startswith(("FIREBREAK", "MLFLOW"))})
    settings = Settings.from_env()
    pricing.setup(settings)
    open_seconds = 30  # the pricing policy's serving.breaker.open_seconds (default)
    port = free_port()
    proc = subprocess.Popen([str(BIN / "firebreak"), "serve", "--model", "pricing", "--port", str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    lineage = {"upstream_source": pricing.UPSTREAM_SOURCE, "feature_pipeline_version": pricing.PIPELINE_VERSION}

    def requests(seed: int, n: int, holiday: bool) -> list[dict[str, Any]]:
        frame = pricing.generate_requests(seed, n, holiday=holiday)[pricing.INPUTS]
        return [dict(r, **lineage) for r in json.loads(frame.to_json(orient="records"))]

    plan = [("normal", r) for r in requests(31, 300, True)]
    plan += [("failure", r) for r in requests(32, 500, False)]
    plan += [("recovered", r) for r in requests(33, int((open_seconds + 10) * rate), True)]
    results: list[tuple[str, float, str, float, int]] = []
    try:
        wait_ready(f"{url}/ready", proc)
        start = time.perf_counter()
        for i, (phase, record) in enumerate(plan):
            time.sleep(max(0.0, start + i / rate - time.perf_counter()))
            sent = time.perf_counter()
            # Four callers, each from its own loopback address: the breaker trips only on a failure
            # more than one caller sees (a single caller's traffic never trips it for everyone).
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(CALLERS[i % 4], 0))
            try:
                conn.request(
                    "POST",
                    "/invocations",
                    body=json.dumps({"dataframe_records": [record]}),
                    headers={"Content-Type": "application/json", "X-Request-Id": f"phase-{i}"},
                )
                r = conn.getresponse()
                r.read()
                route = r.headers["X-Firebreak-Route"] if r.status == 200 else "error"
                results.append((phase, sent, route, time.perf_counter() - sent, r.status))
            finally:
                conn.close()
    finally:
        stop(proc)  # a clean stop flushes the prediction log

    def first(phase: str, route: str) -> float:
        t0 = next(t for p, t, *_ in results if p == phase)
        return next(t for p, t, r, *_ in results if p == phase and r == route) - t0

    logged = PredictionLog(settings.prediction_log_dir).read("pricing")
    logged = logged[logged["request_id"].str.startswith("phase-")]
    failing = [(t, r) for p, t, r, *_ in results if p == "failure"]
    # From when on every answer came from the fallback (the breaker open), not only the guarded rows.
    steady = next(t for k, (t, _) in enumerate(failing) if all(r == "heuristic" for _, r in failing[k:]))
    out: dict[str, Any] = {
        "to_fallback_s": first("failure", "heuristic"),
        "all_fallback_s": steady - failing[0][0],
        "back_to_champion_s": first("recovered", "champion"),
        "answered": sum(1 for *_, status in results if status == 200),
        "errors": sum(1 for *_, status in results if status >= 500),
        "logged": len(logged),
        "sent": len(results),
    }
    for phase in ("normal", "failure", "recovered"):
        latencies = sorted(lat for p, _, _, lat, _ in results if p == phase)
        out[f"p99_{phase}_ms"] = latencies[int(0.99 * (len(latencies) - 1))] * 1000
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--phases-only", action="store_true", help="only the normal -> failure -> recovered run")
    parser.add_argument("--compare-with", type=Path, help="another checkout's include/ folder, served too")
    args = parser.parse_args()
    if args.phases_only:
        report_phases()
        return
    home = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    # `mlflow models serve` starts `uvicorn` from PATH: the venv's bin must be on it.
    env = {**os.environ, **setup_model(home), "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    lua = home / "post.lua"
    lua.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = '{json.dumps({'dataframe_records': [ROW]})}'\n"
    )
    print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    gateways = [("firebreak serve", env)]
    if args.compare_with:
        other = {**env, "PYTHONPATH": os.pathsep.join([str(home), str(args.compare_with.resolve())])}
        gateways.insert(0, (f"firebreak serve ({args.compare_with.parent.name})", other))
    rows = []
    for workers in (1, 2):
        servers = [
            (
                "mlflow models serve",
                [
                    str(BIN / "mlflow"),
                    "models",
                    "serve",
                    "-m",
                    "models:/bench-gbr@champion",
                    "--env-manager",
                    "local",
                    "--workers",
                    str(workers),
                    "-p",
                ],
                env,
            ),
            *(
                (
                    gateway,
                    [str(BIN / "firebreak"), "serve", "--model", "bench-gbr", "--workers", str(workers), "--port"],
                    gateway_env,
                )
                for gateway, gateway_env in gateways
            ),
        ]
        runs: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in servers}
        for _ in range(args.repeats):  # interleaved, so a change in the machine's load hits every server alike
            for name, cmd, run_env in servers:
                port = free_port()
                proc = subprocess.Popen(
                    [*cmd, str(port)], env=run_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
                url = f"http://127.0.0.1:{port}"
                try:
                    wait_ready(f"{url}/ping", proc)
                    time.sleep(2 + 3 * workers)
                    warm = wrk(f"{url}/invocations", 3, args.connections, lua)  # warm-up
                    result = wrk(f"{url}/invocations", args.seconds, args.connections, lua)
                    result["answered"] = warm["requests"] + result["requests"]
                finally:
                    stop(proc)
                if name.startswith("firebreak serve"):
                    from firebreak.prediction_log import PredictionLog

                    result["logged"] = len(PredictionLog(home / "predictions").read("bench-gbr"))
                    shutil.rmtree(home / "predictions", ignore_errors=True)
                runs[name].append(result)
        rows += [(name, workers, runs[name]) for name, _, _ in servers]
    print(
        f"\n### Throughput, one-row requests, {args.connections} connections, {args.seconds} s, median of {args.repeats}\n"
    )
    print("| server | workers | req/s | p50 ms | p99 ms | non-2xx | logged / answered |")
    print("|---|---|---|---|---|---|---|")
    medians: dict[tuple[str, int], dict[str, float]] = {}
    for name, workers, results in rows:
        med = {k: statistics.median(r[k] for r in results) for k in ("rps", "p50", "p99")}
        medians[(name, workers)] = med
        answered = (
            " ; ".join(f"{r.get('logged', '-')}/{r['answered']}" for r in results)
            if name.startswith("firebreak serve")
            else "-"
        )
        print(
            f"| {name} | {workers} | {med['rps']:.0f} | {med['p50']:.2f} | {med['p99']:.2f} | {sum(r['non2xx'] for r in results)} | {answered} |"
        )
    for workers in (1, 2):
        m = medians[("mlflow models serve", workers)]
        for gateway, _ in gateways:
            g = medians[(gateway, workers)]
            print(
                f"\n{workers} worker(s), {gateway}: throughput {g['rps'] / m['rps']:.2f}x mlflow serve; "
                f"p99 {g['p99']:.2f} ms = {g['p99'] / m['p50']:.2f}x mlflow's p50 ({m['p50']:.2f} ms)"
            )
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    cost = contract_cost()
    print(
        f"\ncontract check: {cost['online_us']:.1f} us per row (GX on the same row: {cost['gx_us'] / 1000:.0f} ms, {cost['gx_us'] / cost['online_us']:.0f}x)"
    )
    report_phases()


def report_phases() -> None:
    onset_home = Path(tempfile.mkdtemp(prefix="bench-phases-"))
    p = phases({"FIREBREAK_HOME": str(onset_home), "MLFLOW_TRACKING_URI": f"sqlite:///{onset_home / 'mlflow.db'}"})
    print("\n### Pricing traffic at 100 req/s: normal -> failure -> recovered\n")
    print(f"- failure onset -> fallback served: {p['to_fallback_s'] * 1000:.0f} ms (the first answer under cost)")
    print(f"- failure onset -> every answer from the fallback (breaker open): {p['all_fallback_s'] * 1000:.0f} ms")
    print(
        f"- recovered traffic -> champion served again: {p['back_to_champion_s']:.1f} s (open wait 30 s, then probes)"
    )
    print(
        f"- p99 latency: normal {p['p99_normal_ms']:.1f} ms, failure {p['p99_failure_ms']:.1f} ms, recovered {p['p99_recovered_ms']:.1f} ms"
    )
    print(f"- sent {p['sent']}, answered {p['answered']}, 5xx {p['errors']}, logged {p['logged']}")


if __name__ == "__main__":
    main()

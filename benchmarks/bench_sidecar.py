"""The gateway as a sidecar: what `firebreak serve --upstream` adds over calling the upstream directly.

The upstream is a real `mlflow models serve` of the benchmark model (`bench_gateway.py`'s
50-tree GradientBoostingRegressor, scikit-learn flavor). The same load generator (`wrk`,
Debian package) sends the same one-row `dataframe_records` body over the same number of
connections, in one run, alternating:

- **direct**: `wrk` -> `mlflow models serve` (the anchor);
- **sidecar**: `wrk` -> `firebreak serve --model bench-gbr --upstream URL` -> the same
  `mlflow models serve`, with every guard on: the contract, routing from the state DB, the
  breaker, shadow scoring of a challenger (loaded in the gateway), the prediction log.

Added latency = sidecar percentile - direct percentile (same repeat); throughput ratio =
sidecar req/s / direct req/s. Medians over the repeats; the load average is printed.

Run: `.venv/bin/python benchmarks/bench_sidecar.py [--seconds 10] [--connections 8] [--repeats 3]`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_gateway import BIN, ROW, free_port, setup_model, stop, wait_ready, wrk  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--upstream-workers", type=int, default=1)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-sidecar-"))
    env = {**os.environ, **setup_model(home), "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    # A loaded machine stretches the upstream's own tail past the default 1 s timeout; the benchmark
    # measures the proxy, not the breaker, so it gives the upstream 10 s.
    policy = home / "policies" / "bench-gbr.yaml"
    policy.write_text(policy.read_text() + "serving: {upstream: {timeout_seconds: 10}}\n")
    # The benchmark's fallback module lives in home; the library is this checkout's, whatever is installed.
    env["PYTHONPATH"] = os.pathsep.join([str(home), str(Path(__file__).resolve().parents[1] / "include")])
    lua = home / "post.lua"
    lua.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = '{json.dumps({'dataframe_records': [ROW]})}'\n"
    )
    upstream_port = free_port()
    upstream = subprocess.Popen(
        [
            str(BIN / "mlflow"),
            *("models", "serve", "-m", "models:/bench-gbr@champion", "--env-manager", "local"),
            *("--workers", str(args.upstream_workers), "-p", str(upstream_port)),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    upstream_url = f"http://127.0.0.1:{upstream_port}"
    gateway_port = free_port()
    gateway = subprocess.Popen(
        [
            str(BIN / "firebreak"),
            *("serve", "--model", "bench-gbr", "--port", str(gateway_port), "--upstream", upstream_url),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    runs: dict[str, list[dict[str, float]]] = {"direct": [], "sidecar": []}
    loads = []
    try:
        wait_ready(f"{upstream_url}/ping", upstream)
        wait_ready(f"{gateway_url}/ready", gateway)
        time.sleep(3)
        # Warm both (first calls load lazily); the gateway's warm-up answers are logged too.
        warm = {url: wrk(f"{url}/invocations", 3, args.connections, lua) for url in (upstream_url, gateway_url)}
        for _ in range(args.repeats):
            for name, url in (("direct", upstream_url), ("sidecar", gateway_url)):
                loads.append(os.getloadavg()[0])
                runs[name].append(wrk(f"{url}/invocations", args.seconds, args.connections, lua))
    finally:
        stop(gateway)  # a clean stop flushes the prediction log
        stop(upstream)
    from firebreak.prediction_log import PredictionLog

    logged = len(PredictionLog(home / "predictions").read("bench-gbr"))
    routes = PredictionLog(home / "predictions").read("bench-gbr")["route"].value_counts().to_dict()
    answered = warm[gateway_url]["requests"] + sum(r["requests"] for r in runs["sidecar"])  # every wrk run through it
    print(
        f"\n### Sidecar vs direct: one-row requests, {args.connections} connections, {args.seconds} s, "
        f"median of {args.repeats}, upstream workers {args.upstream_workers}\n"
    )
    print("| path | req/s | p50 ms | p99 ms | non-2xx |")
    print("|---|---|---|---|---|")
    med = {}
    for name in ("direct", "sidecar"):
        med[name] = {k: statistics.median(r[k] for r in runs[name]) for k in ("rps", "p50", "p99")}
        print(
            f"| {name} | {med[name]['rps']:.0f} | {med[name]['p50']:.2f} | {med[name]['p99']:.2f} | "
            f"{sum(r['non2xx'] for r in runs[name])} |"
        )
    added50 = statistics.median(s["p50"] - d["p50"] for s, d in zip(runs["sidecar"], runs["direct"], strict=True))
    added99 = statistics.median(s["p99"] - d["p99"] for s, d in zip(runs["sidecar"], runs["direct"], strict=True))
    ratio = statistics.median(s["rps"] / d["rps"] for s, d in zip(runs["sidecar"], runs["direct"], strict=True))
    print(f"\nadded latency (median of per-repeat differences): p50 {added50:+.2f} ms, p99 {added99:+.2f} ms")
    print(f"throughput sidecar / direct: {ratio:.2f}x")
    print(
        f"logged {logged} rows (routes {routes}); wrk counted {answered} answers through the gateway, warm-up "
        f"included (the log also holds the requests in flight when each wrk run stopped: at most {4 * args.connections})"
    )
    print(f"load average (1 min) at each run's start: {', '.join(f'{x:.1f}' for x in loads)}")
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()

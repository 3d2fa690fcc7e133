"""Task start-up under a real scheduler: what an incident task pays in imports, with and without the preload.

The LocalExecutor forks its workers from the scheduler and each worker forks every task, so a
task starts as a fork of a process holding the scheduler's modules. This benchmark builds that
process (``airflow.jobs.scheduler_job_runner`` imported), then forks children that import what
a task imports, and times each child from fork to exit:

- anchor: a child that imports nothing (the fork itself);
- a light task (``close_incident``: ``firebreak.stages.closing``);
- a task that loads a model (``verify``: the stage module, MLflow's pyfunc, scikit-learn, skops);
- ``validate_contract`` and ``drift_report`` (Great Expectations, Evidently).

Each is measured in a parent without the preload and in one after
:func:`firebreak.task_preload.preload` (what ``config/airflow_local_settings.py`` does in a
scheduler), each parent a fresh interpreter. The preload's own cost, paid once per scheduler
start, is printed beside.

Run: ``.venv/bin/python benchmarks/bench_task_start.py [--repeat N]``; prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

TASKS = {
    "anchor: fork, no imports": [],
    "close_incident (light)": ["firebreak.stages.closing"],
    "verify (loads a model)": ["firebreak.stages.verification", "mlflow.pyfunc", "sklearn.ensemble", "skops.io"],
    "validate_contract": ["firebreak.stages.investigation", "great_expectations"],
    "drift_report": ["firebreak.stages.investigation", "evidently", "evidently.presets"],
}

PARENT = """
import json, os, sys, time
import airflow.jobs.scheduler_job_runner  # the scheduler's own modules, as its LocalExecutor forks
from firebreak.quiet_import import import_quietly
preloaded = 0.0
if sys.argv[1] == "on":
    from firebreak.task_preload import preload
    start = time.perf_counter()
    preload(["airflow", "scheduler"])
    preloaded = time.perf_counter() - start
tasks, repeat = json.loads(sys.argv[2]), int(sys.argv[3])
out = {"preload": preloaded}
for name, modules in tasks.items():
    walls = []
    for _ in range(repeat):
        start = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            for module in modules:
                import_quietly(module)
            os._exit(0)
        os.waitpid(pid, 0)
        walls.append(time.perf_counter() - start)
    out[name] = walls
print(json.dumps(out))
"""


def measure(mode: str, repeat: int) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PARENT, mode, json.dumps(TASKS), str(repeat)],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(done.stdout.splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    runs = {mode: measure(mode, args.repeat) for mode in ("off", "on")}
    print("| task (fork of a scheduler-like process → exit) | without preload | with preload |")
    print("|---|---|---|")
    for name in TASKS:
        off, on = (statistics.median(runs[m][name]) for m in ("off", "on"))  # type: ignore[arg-type]
        print(f"| {name} | {off * 1000:,.0f} ms | {on * 1000:,.0f} ms |")
    print(f"\nPreload, once per scheduler start: {runs['on']['preload']:.1f} s. Medians of {args.repeat} forks each.")


if __name__ == "__main__":
    main()

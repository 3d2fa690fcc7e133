"""Gauges read across the gateway's processes (prometheus_client's multi-process mode), as /metrics aggregates them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

GATEWAY = "from firebreak.serving.metrics import ModelMetrics; ModelMetrics('pricing').store_up.set(1)"
DRAINER = "from firebreak.serving.metrics import ModelMetrics; ModelMetrics('pricing').confidence.observe(0.9)"
READ = """
from prometheus_client import CollectorRegistry, multiprocess
registry = CollectorRegistry()
multiprocess.MultiProcessCollector(registry)
print(registry.get_sample_value("firebreak_state_store_up", {"model": "pricing"}))
"""


def test_the_drainer_process_never_pins_the_state_store_gauge_of_a_gateway_that_reads_the_store(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for script in (GATEWAY, DRAINER):  # two processes alive at once in `firebreak serve`; each leaves its file
        subprocess.run([sys.executable, "-c", script], env=env, check=True)
    read = subprocess.run([sys.executable, "-c", READ], env=env, check=True, capture_output=True, text=True)
    assert read.stdout.strip() == "1.0"

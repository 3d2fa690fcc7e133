"""Child processes on loopback, and Airflow's REST API, for the development stacks.

Shared by :mod:`firebreak_dev.local` and :mod:`firebreak_dev.cluster`, the integration
tests and the benchmarks. Everything runs as a child process; nothing here imports Airflow.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def airflow_api_token(airflow_url: str, password: str | None, user: str = "admin") -> str:
    """A JWT for Airflow's REST API (``POST /auth/token``)."""
    request = urllib.request.Request(
        f"{airflow_url}/auth/token",
        data=json.dumps({"username": user, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.loads(response.read())["access_token"])


def airflow_api_request(
    airflow_url: str, method: str, path: str, token: str, body: dict[str, object] | None = None, *, timeout: float
) -> dict[str, object]:
    """Call Airflow's REST API; raises urllib.error.HTTPError on 4xx/5xx."""
    request = urllib.request.Request(
        f"{airflow_url}{path}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return dict(json.loads(response.read()))


@dataclass
class Service:
    name: str
    args: list[str]
    env: dict[str, str]
    health_url: str
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        # A new session: stop() can signal the service and everything it started.
        self.process = subprocess.Popen(
            self.args, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.health_url, timeout=2) as response:
                return bool(200 <= response.status < 300)
        except (urllib.error.URLError, OSError, TimeoutError):
            return False

    def stop(self, timeout: float = 20) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(timeout=timeout)
                return
            except subprocess.TimeoutExpired:
                continue

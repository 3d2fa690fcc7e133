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
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
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
    with urllib.request.urlopen(request, timeout=60) as response:
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
        self.log_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Logs may carry secrets a service prints (tokens, generated passwords): owner-only,
        # and so is everything the service itself creates (umask 077).
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.chmod(self.log_path, 0o600)
        with os.fdopen(fd, "ab") as log:
            # A new session: stop() can signal the service and everything it started.
            self.process = subprocess.Popen(
                self.args, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, umask=0o077
            )

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.health_url, timeout=2) as response:
                return bool(200 <= response.status < 300)
        except (urllib.error.URLError, OSError, TimeoutError):
            return False

    def stop(self, timeout: float = 20) -> None:
        """Stop the service and every process it started: SIGTERM to the group, wait, then SIGKILL.

        Waiting for the leader alone is not enough: ``airflow standalone`` exits on SIGTERM
        while its scheduler and api-server are still shutting down (or ignoring it), and
        those were left running. The group is the session started in :meth:`start`.
        """
        if self.process is None:
            return
        group = self.process.pid
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(group, sig)
            except ProcessLookupError:
                break
            if _wait_for_group(self.process, group, timeout):
                break
        if self.process.poll() is None:
            self.process.wait(timeout=timeout)


def stop_all(services: Iterable[Service], timeout: float = 20) -> None:
    """Stop several services at once: SIGTERM to every group first, then wait for each in turn.

    One after another, each waited up to ``timeout`` for its own shutdown (a compose stack's
    teardown took 33 s); signalled together, their shutdowns overlap.
    """
    services = list(services)
    for service in services:
        if service.process is not None and service.process.poll() is None:
            try:
                os.killpg(service.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for service in services:
        service.stop(timeout)


def _group_alive(group: int) -> bool:
    """Whether a process of ``group`` still runs (zombies waiting for their reaper do not count)."""
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member exists but is not ours to signal: still alive
        return True
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            # pid (comm) state ppid pgrp ...: comm may hold spaces, so split after its ")".
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            return True
    return False


def _wait_for_group(leader: subprocess.Popen[bytes], group: int, timeout: float) -> bool:
    """Wait until no process of ``group`` is left (reaping the leader); False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leader.poll()  # reap the leader, or it lingers as a zombie member of the group
        if not _group_alive(group):
            return True
        time.sleep(0.05)
    return False

"""Real `flask --app wsgi atlas worker` processes for tests, on the test's database and Redis.

Each worker starts in a session of its own, so the processes it starts (RQ's scheduler is a forked child) share its
process group; kill() ends each of them by PID, orphans included. Only processes a test started are touched.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the project: `tests` and `wsgi` import from here


class Worker:
    """One worker process and its log file."""

    def __init__(self, name: str, env: dict, directory: Path):
        self.name, self.log_path = name, directory / f"{name}.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "atlas", "worker"],
                                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        self.pid = self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the worker, then whatever it started (its process group), each by PID."""
        if self.alive():
            self.process.kill()
        self.process.wait(10)
        for pid in _group_members(self.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while _group_members(self.pid) and time.monotonic() < deadline:
            time.sleep(0.02)

    def log(self) -> str:
        """The end of the worker's output, for a failure message."""
        return self.log_path.read_text(errors="replace")[-4000:]


def _group_members(pgid: int) -> list[int]:
    """PIDs of the live processes in this process group (Linux /proc)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as file:
                fields = file.read().rsplit(")", 1)[1].split()  # after "pid (comm)": state ppid pgrp ...
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry))
    return members


def worker_env(database_url: str, redis_url: str, instance_dir: Path, **settings) -> dict:
    """The environment of a worker on these servers; settings are ATLAS_* overrides (ATLAS_JOB_TIMEOUT=2)."""
    env = {**os.environ, "ATLAS_ENV": "development", "DATABASE_URL": database_url, "REDIS_URL": redis_url,
           "ATLAS_INSTANCE_DIR": str(instance_dir), "PYTHONUNBUFFERED": "1"}
    env.update({key: str(value) for key, value in settings.items()})
    return env

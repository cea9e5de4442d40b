"""Atlas as production runs it, for the browser tests and the screenshots: gunicorn (gthread) on a free loopback port,
its own Redis and a SQLite file migrated with `flask db upgrade`, all in one instance directory."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from atlas.devserver import RedisServer, free_port, stop_process

ROOT = Path(__file__).resolve().parents[2]
DEMO_PASSWORD = "demo-password-for-e2e"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Variables that would point the server at another database, Redis or secret than the ones made here.
INHERITED_OUT = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ATLAS_ENCRYPTION_KEY", "ATLAS_ALLOW_SIGNUP", "FLASK_APP")


@dataclass
class AtlasServer:
    """A running Atlas: where it answers and how to run `flask atlas ...` against the same instance."""

    base_url: str
    env: dict
    process: subprocess.Popen

    def flask(self, *args: str) -> str:
        """Run a `flask --app wsgi` command against this instance; returns its output."""
        done = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"flask {' '.join(args)} failed: {done.stderr}")
        return done.stdout


@contextmanager
def running_atlas(instance: Path) -> Iterator[AtlasServer]:
    """Redis, the migrations, then gunicorn; every process is stopped by its PID on the way out."""
    redis = RedisServer(instance / "redis", persist=False).start()
    env = {k: v for k, v in os.environ.items() if k not in INHERITED_OUT}
    env.update(ATLAS_ENV="development", REDIS_URL=redis.url, ATLAS_INSTANCE_DIR=str(instance),
               ATLAS_DEMO_PASSWORD=DEMO_PASSWORD, PYTHONDONTWRITEBYTECODE="1", ATLAS_SSE_HEARTBEAT="1",
               ATLAS_RECONCILE_SECONDS="1",
               # every browser test signs in from 127.0.0.1: the suite would hit the per-address sign-in limit
               ATLAS_RATELIMIT_AUTH="600 per minute")
    process, port = None, free_port()
    try:
        migrated = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env,
                                  capture_output=True, text=True, timeout=60)
        if migrated.returncode != 0:
            raise RuntimeError(f"flask db upgrade failed: {migrated.stderr}")
        with open(instance / "gunicorn.log", "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"127.0.0.1:{port}",
                 "--worker-class", "gthread", "--workers", "1", "--threads", "64", "--graceful-timeout", "2"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        base_url = f"http://127.0.0.1:{port}"
        _wait_until_answering(base_url, process, instance / "gunicorn.log")
        yield AtlasServer(base_url, env, process)
    finally:
        stop_process(process)
        redis.stop()


def _wait_until_answering(url: str, process: subprocess.Popen, log: Path, timeout: float = 30.0) -> None:
    """Poll the login page until it answers 200; fail with gunicorn's output if it exits or never answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url + "/login", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"Atlas did not answer at {url}:\n{log.read_text(errors='replace')[-3000:]}")

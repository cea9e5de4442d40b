"""Start the real app for a benchmark: embedded Redis, a migrated SQLite file, gunicorn (gthread)."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import requests

from atlas.devserver import RedisServer, free_port, stop_process

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def running_app(database: str = "sqlite", workers: int = 2, threads: int = 8):
    """Yield the base URL of a freshly started app on SQLite or PostgreSQL; everything is stopped afterwards."""
    instance = Path(tempfile.mkdtemp(prefix="atlas-bench-"))
    redis = RedisServer(instance / "redis", persist=False).start()
    env = {**os.environ, "ATLAS_ENV": "development", "ATLAS_INSTANCE_DIR": str(instance), "REDIS_URL": redis.url,
           "ATLAS_RATELIMIT_ENABLED": "false"}
    postgres = None
    if database == "postgres":
        from tests.support.postgres import PostgresServer

        postgres = PostgresServer().start()
        env["DATABASE_URL"] = postgres.url()
    port = free_port()
    web = None
    try:
        subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env,
                       check=True, capture_output=True)
        web = subprocess.Popen([sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"127.0.0.1:{port}",
                                "--worker-class", "gthread", "--workers", str(workers), "--threads", str(threads)],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        _wait_until_up(base)
        yield base
    finally:
        stop_process(web)
        redis.stop()
        if postgres is not None:
            postgres.stop()


def _wait_until_up(base: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(f"{base}/login", timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError("the app did not start")

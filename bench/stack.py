"""Start the real app for a benchmark: embedded Redis, a migrated database, gunicorn (gthread), RQ workers."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

from atlas.devserver import RedisServer, free_port, stop_process

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Stack:
    """What a benchmark may look at: the base URL, the env the processes got, and the processes themselves."""

    base: str
    env: dict
    web: subprocess.Popen
    workers: list[subprocess.Popen] = field(default_factory=list)
    redis_url: str = ""
    database_url: str | None = None  # None: the SQLite file atlas.db under `instance`
    instance: Path | None = None
    redis_pid: int | None = None
    postgres_pid: int | None = None  # the postmaster; its backends are its children


@contextmanager
def running_app(database: str = "sqlite", workers: int = 2, threads: int = 8):
    """Yield the base URL of a freshly started app on SQLite or PostgreSQL; everything is stopped afterwards."""
    with running_stack(database, workers=workers, threads=threads) as stack:
        yield stack.base


@contextmanager
def running_stack(database: str = "sqlite", workers: int = 2, threads: int = 8, rq_workers: int = 0,
                  profile_dir: Path | None = None, extra_env: dict | None = None):
    """Yield a Stack: web, `rq_workers` RQ worker processes, Redis and the database; stopped by PID afterwards.

    With profile_dir, the web processes and the workers run under cProfile (bench/profiled.py) and leave one
    .pstats file per process there.
    """
    instance = Path(tempfile.mkdtemp(prefix="atlas-bench-"))
    redis = RedisServer(instance / "redis", persist=False).start()
    env = {**os.environ, "ATLAS_ENV": "development", "ATLAS_INSTANCE_DIR": str(instance), "REDIS_URL": redis.url,
           "ATLAS_RATELIMIT_ENABLED": "false", **(extra_env or {})}
    if profile_dir is not None:
        env["ATLAS_BENCH_PROFILE_DIR"] = str(profile_dir)
    postgres = None
    if database == "postgres":
        from tests.support.postgres import PostgresServer

        postgres = PostgresServer().start()
        env["DATABASE_URL"] = postgres.url()
    port = free_port()
    web, started = None, []
    try:
        subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env,
                       check=True, capture_output=True)
        app = "bench.profiled:app" if profile_dir is not None else "wsgi:app"
        web = subprocess.Popen([sys.executable, "-m", "gunicorn", app, "--bind", f"127.0.0.1:{port}",
                                "--worker-class", "gthread", "--workers", str(workers), "--threads", str(threads)],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        worker = [sys.executable, "-m", "bench.profiled"] if profile_dir is not None else \
            [sys.executable, "-m", "flask", "--app", "wsgi", "atlas", "worker"]
        for _ in range(rq_workers):
            started.append(subprocess.Popen(worker, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL))
        base = f"http://127.0.0.1:{port}"
        _wait_until_up(base)
        yield Stack(base=base, env=env, web=web, workers=started, redis_url=redis.url,
                    database_url=env.get("DATABASE_URL"), instance=instance, redis_pid=redis.process.pid,
                    postgres_pid=_postmaster(postgres))
    finally:
        for process in started:  # each by its own PID; RQ finishes the job in hand on SIGTERM
            stop_process(process)
        stop_process(web)
        redis.stop()
        if postgres is not None:
            postgres.stop()


def _postmaster(postgres) -> int | None:
    if postgres is None:
        return None
    return int((postgres.directory / "data" / "postmaster.pid").read_text().split()[0])


def _wait_until_up(base: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(f"{base}/login", timeout=1)
            return
        except (requests.ConnectionError, requests.Timeout):  # not listening yet, or still importing
            time.sleep(0.1)
    raise RuntimeError("the app did not start")

"""Benchmark-only profiling of the real processes, switched on by ATLAS_BENCH_PROFILE_DIR (bench/stack.py).

`gunicorn bench.profiled:app` profiles every request in the thread that serves it; `python -m bench.profiled` runs
`flask --app wsgi atlas worker` under cProfile. Each process writes <role>-<pid>.pstats and <role>-<pid>.json
(SQL statements and transactions it ran) into the directory. Nothing here is imported by the app.
"""
from __future__ import annotations

import atexit
import cProfile
import json
import os
import pstats
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine

OUT = Path(os.environ.get("ATLAS_BENCH_PROFILE_DIR", "."))
# "cpu" (default): CPU seconds of the profiled thread, so that threads waiting for the GIL, a lock or a socket cost
# nothing; "wall": elapsed time, waits included.
CLOCK = time.perf_counter if os.environ.get("ATLAS_BENCH_PROFILE_CLOCK") == "wall" else time.thread_time
COUNTS = {"statements": 0, "commits": 0, "rollbacks": 0, "requests": 0}
PROFILED = "/execute"  # the web side profiles and counts only POST .../execute, not the benchmark's polling
_lock = threading.Lock()
_here = threading.local()


def _counted() -> bool:
    return getattr(_here, "counting", True)


@event.listens_for(Engine, "before_cursor_execute")
def _statement(*_args):
    if _counted():
        COUNTS["statements"] += 1


@event.listens_for(Engine, "commit")
def _commit(*_args):
    if _counted():
        COUNTS["commits"] += 1


@event.listens_for(Engine, "rollback")
def _rollback(*_args):
    if _counted():
        COUNTS["rollbacks"] += 1


def _write(role: str, stats: pstats.Stats | None) -> None:
    stem = OUT / f"{role}-{os.getpid()}"
    if stats is not None:
        stats.dump_stats(f"{stem}.pstats")
    Path(f"{stem}.json").write_text(json.dumps(COUNTS))


class ProfiledApp:
    """WSGI middleware: one cProfile per request, merged per process and written every 50 requests and at exit."""

    def __init__(self, app):
        self.app, self.stats = app, None
        atexit.register(self.dump)

    def __call__(self, environ, start_response):
        _here.counting = environ.get("PATH_INFO", "").endswith(PROFILED)
        if not _here.counting:
            return self.app(environ, start_response)
        profile = cProfile.Profile(CLOCK)
        profile.enable()
        try:
            return self.app(environ, start_response)
        finally:
            profile.disable()
            _here.counting = False
            with _lock:
                COUNTS["requests"] += 1
                if self.stats is None:
                    self.stats = pstats.Stats(profile)
                else:
                    self.stats.add(profile)
                if COUNTS["requests"] % 50 == 0:
                    _write("web", self.stats)

    def dump(self):
        with _lock:
            if self.stats is not None:
                _write("web", self.stats)


def run_worker() -> None:
    """`flask --app wsgi atlas worker` under cProfile until SIGTERM."""
    from flask.cli import main

    profile = cProfile.Profile(CLOCK)
    sys.argv = ["flask", "--app", "wsgi", "atlas", "worker"]
    try:
        profile.runcall(main)
    finally:
        _write("worker", pstats.Stats(profile))


if __name__ == "__main__":
    run_worker()
else:
    from wsgi import app as _app

    app = ProfiledApp(_app)

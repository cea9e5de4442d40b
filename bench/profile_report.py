"""Read the .pstats files bench/profiled.py left: where a run's time goes, per execute request and per worker job."""
from __future__ import annotations

import json
import pstats
import shutil
from pathlib import Path

# (label, path fragment, function name): the stages of a run, by cumulative wall time.
WEB_STAGES = [
    ("whole request (WSGI app)", "flask/app.py", "wsgi_app"),
    ("authenticate: token, membership", "atlas/api/context.py", "_authenticate"),
    ("start_execution (service)", "atlas/services/executions.py", "start_execution"),
    ("  get_workflow", "atlas/services/workflows.py", "get_workflow"),
    ("  queue.depth (Redis)", "atlas/services/queue.py", "depth"),
    ("  runner.deliver (commit + enqueue)", "atlas/services/runner.py", "deliver"),
    ("    queue.enqueue_run (RQ enqueue)", "atlas/services/queue.py", "enqueue_run"),
    ("estimate_for (history + validation)", "atlas/services/executions.py", "estimate_for"),
    ("  check_definition (validation)", "atlas/services/workflows.py", "check_definition"),
    ("queue.position (Redis)", "atlas/services/queue.py", "position"),
    ("audit_mutation (after_request)", "atlas/api/context.py", "audit_mutation"),
    ("response schema (marshmallow dump)", "marshmallow/schema.py", "dump"),
    ("every session commit", "sqlalchemy/orm/session.py", "commit"),
    ("every Redis command", "redis/connection.py", "read_response"),
]
WORKER_STAGES = [
    ("RQ: dequeue (incl. idle wait)", "rq/worker/base.py", "dequeue_job_and_maintain_ttl"),
    ("RQ: execute_job (everything per job)", "rq/worker", "execute_job"),
    ("RQ: prepare_job_execution", "rq/worker/base.py", "prepare_job_execution"),
    ("RQ: handle_job_success", "rq/worker/base.py", "handle_job_success"),
    ("jobs.runs.run_execution (app context + run)", "jobs/runs.py", "run_execution"),
    ("runner.run_execution", "atlas/services/runner.py", "run_execution"),
    ("  _claim (UPDATE + commit)", "atlas/services/runner.py", "_claim"),
    ("  session.get(Execution)", "sqlalchemy/orm/session.py", "get"),
    ("  definition_of", "atlas/services/runner.py", "definition_of"),
    ("  advance_once", "atlas/services/runner.py", "advance_once"),
    ("  engine.advance", "atlas/core/engine.py", "advance"),
    ("    step runs (templating, conditions)", "atlas/core/steps/control.py", "_set_variable"),
    ("  _save_steps", "atlas/services/runner.py", "_save_steps"),
    ("  _save_outcome (SELECT FOR UPDATE, UPDATEs, commit)", "atlas/services/runner.py", "_save_outcome"),
    ("  realtime.publish (live events, one pipeline)", "atlas/realtime/__init__.py", "publish"),
    ("every session commit", "sqlalchemy/orm/session.py", "commit"),
    ("every Redis command (incl. idle BLPOP)", "redis/connection.py", "read_response"),
    ("logging", "logging/__init__.py", "handle"),
]


def clear(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)


def _merged(directory: Path, role: str) -> pstats.Stats | None:
    files = sorted(directory.glob(f"{role}-*.pstats"))
    if not files:
        return None
    stats = pstats.Stats(str(files[0]))
    for f in files[1:]:
        stats.add(str(f))
    return stats


def _counts(directory: Path, role: str) -> dict:
    total: dict = {}
    for f in directory.glob(f"{role}-*.json"):
        for k, v in json.loads(f.read_text()).items():
            total[k] = total.get(k, 0) + v
    return total


def _find(stats: pstats.Stats, fragment: str, name: str) -> tuple[int, float]:
    """(calls, cumulative seconds) of the matching functions; a recursive function counts once (primitive calls)."""
    calls, cumulative = 0, 0.0
    for (path, _line, func), (cc, _nc, _tt, ct, _callers) in stats.stats.items():
        if func == name and fragment in path:
            calls, cumulative = calls + cc, cumulative + ct
    return calls, cumulative


def _table(stats: pstats.Stats, stages: list, per: int) -> list[dict]:
    rows = []
    for label, fragment, name in stages:
        calls, cumulative = _find(stats, fragment, name)
        rows.append({"stage": label, "ms_per_run": round(cumulative / per * 1000, 3),
                     "calls_per_run": round(calls / per, 2)})
    return rows


def _top(stats: pstats.Stats, per: int, n: int = 25) -> list[str]:
    """The functions that spend the most time themselves (tottime), per run."""
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)[:n]
    return [f"{tt / per * 1000:8.3f} ms  {cc / per:6.1f}x  {Path(path).name}:{line} {func}"
            for (path, line, func), (cc, _nc, tt, _ct, _callers) in rows]


def summary(directory: Path, result: dict) -> dict:
    """Per execute request and per worker job: the stages, the top self-time functions, SQL per run."""
    out = {}
    web, web_counts = _merged(directory, "web"), _counts(directory, "web")
    if web is not None and web_counts.get("requests"):
        per = web_counts["requests"]
        out["web"] = {"requests": per, "stages": _table(web, WEB_STAGES, per), "top_self_time": _top(web, per),
                      "sql_per_request": {k: round(v / per, 2) for k, v in web_counts.items() if k != "requests"}}
    worker, worker_counts = _merged(directory, "worker"), _counts(directory, "worker")
    if worker is not None:
        jobs, _ = _find(worker, "jobs/runs.py", "run_execution")
        jobs = max(1, jobs)
        out["worker"] = {"jobs": jobs, "stages": _table(worker, WORKER_STAGES, jobs),
                         "top_self_time": _top(worker, jobs),
                         "sql_per_job": {k: round(v / jobs, 2) for k, v in worker_counts.items() if k != "requests"}}
    return out

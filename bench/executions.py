"""Executions end to end: POST .../execute at a fixed concurrency, RQ workers run them, the database says when.

Phase "saturated": the client fires RUNS executions of a 6-step control-flow workflow (no waits) back to back at
CONCURRENCY while RQ_WORKERS workers run them: completed runs per second from the first request to the last
finished_at, and the time from request to completion, read back from the API's executions list. Phase "paced": an
open loop at RATE a second (default half of what the saturated phase completed) for PACED_S seconds, the latency at
moderate load. Phase "batched": BATCH_RUNS runs started BATCH_SIZE at a time through POST .../execute/batch (enroll a
list of contacts), back to back at CONCURRENCY; phase "batched_paced": an open loop of PACED_BATCH_SIZE-run batches
offering half of what "batched" completed, for PACED_S seconds. Phase "split": workers suspended (`rq suspend`),
the client fires SPLIT_RUNS (web alone), then the workers resume and drain them (workers alone).
"""
from __future__ import annotations

import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import psutil
import requests
from redis import Redis
from rq.suspension import resume, suspend

from bench import percentiles
from bench.stack import running_stack

RUNS = int(os.environ.get("ATLAS_BENCH_RUNS", 1000))        # bounded in count...
RATE = float(os.environ.get("ATLAS_BENCH_RATE", 0))  # paced phase; 0: half of what the saturated phase completed
PACED_S = 10
SPLIT_RUNS = int(os.environ.get("ATLAS_BENCH_SPLIT_RUNS", 600))
BATCH_RUNS = int(os.environ.get("ATLAS_BENCH_BATCH_RUNS", 4000))  # phase "batched": runs started in batches...
BATCH_SIZE = 100                                                   # ...of this many per POST .../execute/batch
PACED_BATCH_SIZE = 10  # phase "batched_paced": an open loop of small batches at half the batched throughput
CONCURRENCY = 8
RQ_WORKERS = int(os.environ.get("ATLAS_BENCH_WORKERS", 2))
FIRE_LIMIT_S = 45                                           # ...and in time
DRAIN_LIMIT_S = 40
POLL_S = 0.5


def definition() -> dict:
    """greet -> check (if/else) -> tier (split) -> score -> label -> done: six steps, no waits, no side effects."""
    nodes = [
        {"id": "greet", "type": "set_variable", "name": "Greet",
         "config": {"name": "greeting", "value": "Hi {{ contact.name }}"}},
        {"id": "check", "type": "if_else", "name": "Booked?",
         "config": {"condition": {"field": "trigger.booked", "operator": "equals", "value": True}}},
        {"id": "tier", "type": "split", "name": "Tier", "config": {"branches": [
            {"name": "regular", "condition": {"field": "contact.visits", "operator": "greater_than", "value": 10}},
            {"name": "new", "condition": {"field": "contact.visits", "operator": "less_than", "value": 3}}]}},
        {"id": "score", "type": "set_variable", "name": "Score",
         "config": {"name": "score", "value": "{{ contact.visits }}"}},
        {"id": "label", "type": "set_variable", "name": "Label",
         "config": {"name": "label", "value": "{{ vars.greeting }} ({{ vars.score }} visits)"}},
        {"id": "done", "type": "end", "name": "Done", "config": {}},
    ]
    edges = [{"source": "greet", "target": "check"},
             {"source": "check", "target": "tier", "branch": "true"},
             {"source": "check", "target": "tier", "branch": "false"},
             *({"source": "tier", "target": "score", "branch": b} for b in ("regular", "new", "default")),
             {"source": "score", "target": "label"}, {"source": "label", "target": "done"}]
    return {"schemaVersion": 1, "nodes": nodes, "edges": edges}


def _sign_up(base: str) -> dict:
    body = {"email": f"bench-{uuid.uuid4().hex[:8]}@example.com", "password": "bench-password-123",
            "name": "Bench", "organizationName": "Bench Gym"}
    data = requests.post(f"{base}/api/v2/auth/signup", json=body, timeout=10).json()
    return {"Authorization": f"Bearer {data['token']['accessToken']}", "X-Organization-ID": data["organizations"][0]["id"]}


def _active_workflow(base: str, headers: dict) -> str:
    """Create a draft, validate it, then activate it (which publishes version 1)."""
    created = requests.post(f"{base}/api/v2/workflows", headers=headers, timeout=10, json={
        "name": "Bench flow", "triggerType": "lead_created", "workflowData": definition()})
    created.raise_for_status()
    workflow_id = created.json()["workflow"]["id"]
    checked = requests.post(f"{base}/api/v2/workflows/{workflow_id}/validate", headers=headers, json={}, timeout=10)
    checked.raise_for_status()
    if not checked.json()["isValid"]:
        raise RuntimeError(f"the bench workflow does not validate: {checked.json()}")
    requests.put(f"{base}/api/v2/workflows/{workflow_id}", headers=headers, json={"status": "active"},
                 timeout=10).raise_for_status()
    return workflow_id


def _busy() -> float:
    """CPU seconds the whole machine has spent busy since boot."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


class Meter(threading.Thread):
    """Samples the stack's processes every 0.2 s: peak RSS of the RQ workers, CPU seconds of each part."""

    def __init__(self, groups: dict[str, list[int]]):
        super().__init__(daemon=True)
        self.groups, self.stop = groups, threading.Event()
        self.peak_rss: dict[int, int] = {}
        self.cpu: dict[str, dict[int, float]] = {name: {} for name in groups}
        self.base: dict[str, dict[int, float]] = {}

    def _processes(self, name: str, roots: list[int]):
        for pid in roots:
            try:
                root = psutil.Process(pid)
                yield root
                if name != "client":  # the client started every other process: its children are theirs
                    yield from root.children(recursive=True)
            except psutil.NoSuchProcess:
                continue

    def sample(self) -> None:
        for name, roots in self.groups.items():
            for proc in self._processes(name, roots):
                try:
                    times = proc.cpu_times()
                    self.cpu[name][proc.pid] = times.user + times.system
                    if name == "rq_workers" and proc.pid in roots:
                        self.peak_rss[proc.pid] = max(self.peak_rss.get(proc.pid, 0), proc.memory_info().rss)
                except psutil.NoSuchProcess:
                    continue

    def mark(self) -> None:
        """CPU seconds counted from now on."""
        self.sample()
        self.base = {name: dict(per_pid) for name, per_pid in self.cpu.items()}
        self.machine = _busy()

    def cpu_since_mark(self) -> dict[str, float]:
        """CPU seconds of each part since mark(); "other": what the rest of the machine used meanwhile."""
        self.sample()
        used = {name: round(sum(t - self.base.get(name, {}).get(pid, 0.0) for pid, t in per_pid.items()), 2)
                for name, per_pid in self.cpu.items()}
        return {**used, "other": round(max(0.0, _busy() - self.machine - sum(used.values())), 2)}

    def run(self) -> None:
        while not self.stop.wait(0.2):
            self.sample()


def _run_body(i: int) -> dict:
    return {"triggerData": {"booked": i % 2 == 0},
            "inputData": {"contact": {"id": f"c-{i}", "name": f"Member {i}", "visits": i % 20}}}


def _fire_batches(base: str, headers: dict, workflow_id: str, count: int, deadline: float, start: int = 0,
                  rate: float | None = None, size: int = BATCH_SIZE):
    """POST .../execute/batch with `size` runs each: back to back at CONCURRENCY, or paced so that `rate` runs a
    second are offered (open loop, each request's clock starting when it was due). One record per run."""
    local = threading.local()
    url = f"{base}/api/v2/workflows/{workflow_id}/execute/batch"
    t0 = time.time()

    def one(first: int):
        due = t0 + (first - start) / rate if rate else None
        if due is not None and due > time.time():
            time.sleep(due - time.time())
        if time.monotonic() > deadline:
            return []
        if not hasattr(local, "session"):
            local.session = requests.Session()
        sent, started = due or time.time(), time.perf_counter()
        runs = [_run_body(i) for i in range(first, min(first + size, start + count))]
        response = local.session.post(url, headers=headers, json={"runs": runs}, timeout=60)
        took, ok = time.perf_counter() - started, response.status_code == 202
        ids = [e["executionId"] for e in response.json()["executions"]] if ok else [None] * len(runs)
        return [{"sent": sent, "http_s": took, "ok": ok, "id": i, "status": response.status_code} for i in ids]

    with ThreadPoolExecutor(CONCURRENCY * 2 if rate else CONCURRENCY) as pool:
        return [r for batch in pool.map(one, range(start, start + count, size)) for r in batch]


def _fire(base: str, headers: dict, workflow_id: str, count: int, deadline: float, rate: float | None = None,
          start: int = 0) -> list[dict]:
    """POST .../execute `count` times: back to back at CONCURRENCY, or paced at `rate` a second (open loop).

    Paced, each request's clock starts when it was due, not when a free thread sent it (no coordinated omission).
    """
    local = threading.local()
    url = f"{base}/api/v2/workflows/{workflow_id}/execute"
    t0 = time.time()

    def one(i: int):
        due = t0 + (i - start) / rate if rate else None
        if due is not None and due > time.time():
            time.sleep(due - time.time())
        if time.monotonic() > deadline:
            return None
        if not hasattr(local, "session"):
            local.session = requests.Session()
        sent, started = due or time.time(), time.perf_counter()
        response = local.session.post(url, headers=headers, json=_run_body(i), timeout=30)
        took = time.perf_counter() - started
        ok = response.status_code == 202
        return {"sent": sent, "http_s": took, "ok": ok, "id": response.json().get("executionId") if ok else None,
                "status": response.status_code}

    with ThreadPoolExecutor(CONCURRENCY * 2 if rate else CONCURRENCY) as pool:
        return [r for r in pool.map(one, range(start, start + count)) if r is not None]


def _finished(base: str, headers: dict, workflow_id: str) -> tuple[int, int]:
    """(completed, failed) so far, from one small list call."""
    data = requests.get(f"{base}/api/v2/workflows/{workflow_id}/executions?status=completed&limit=1",
                        headers=headers, timeout=10).json()
    failed = sum(r["count"] for r in data["analytics"]["failureReasons"])
    return data["pagination"]["total"], failed


def _wait_for(base: str, headers: dict, workflow_id: str, target: int, deadline: float) -> tuple[int, int]:
    done = (0, 0)
    while time.monotonic() < deadline:
        done = _finished(base, headers, workflow_id)
        if sum(done) >= target:
            break
        time.sleep(POLL_S)
    return done


def _rows(base: str, headers: dict, workflow_id: str) -> dict[str, dict]:
    """Every run of the workflow with its timestamps (epoch seconds), 100 a page."""
    rows, page = {}, 1
    while True:
        data = requests.get(f"{base}/api/v2/workflows/{workflow_id}/executions?limit=100&page={page}",
                            headers=headers, timeout=30).json()
        for r in data["executions"]:
            rows[r["id"]] = {"status": r["status"], **{k: _epoch(r.get(k)) for k in
                                                       ("createdAt", "startedAt", "finishedAt")}}
        if page >= data["pagination"]["totalPages"]:
            return rows
        page += 1


def _epoch(text: str | None) -> float | None:
    return datetime.fromisoformat(text).timestamp() if text else None


def _redis_calls(client: Redis) -> int:
    return sum(v["calls"] for k, v in client.info("commandstats").items())


def _pg_counters(url: str | None) -> dict:
    if not url:
        return {}
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        row = conn.execute("SELECT xact_commit + xact_rollback, tup_inserted, tup_updated, tup_returned + "
                           "tup_fetched FROM pg_stat_database WHERE datname = current_database()").fetchone()
    return {"transactions": row[0], "rows_inserted": row[1], "rows_updated": row[2], "rows_read": row[3]}


def _per_run(before: dict, after: dict, runs: int) -> dict:
    return {k: round((after[k] - before[k]) / runs, 1) for k in before} if runs else {}


def _with_workers(stack, headers, workflow_id, meter, redis, count: int, rate: float | None = None,
                  start: int = 0, batched: int = 0) -> dict:
    """Fire `count` runs with the workers running (one request each, or BATCH_SIZE a request); measure throughput
    and request-to-completion latency."""
    before_completed, before_failed = _finished(stack.base, headers, workflow_id)
    before = before_completed + before_failed
    pg_before, redis_before = _pg_counters(stack.database_url), _redis_calls(redis)
    meter.mark()
    deadline = time.monotonic() + FIRE_LIMIT_S
    fired = _fire_batches(stack.base, headers, workflow_id, count, deadline, start, rate, batched) if batched \
        else _fire(stack.base, headers, workflow_id, count, deadline, rate, start)
    fired_at = time.time()
    accepted = [f for f in fired if f["ok"]]
    completed, failed = _wait_for(stack.base, headers, workflow_id, before + len(accepted),
                                  time.monotonic() + DRAIN_LIMIT_S)
    cpu = meter.cpu_since_mark()
    pg_after, redis_after = _pg_counters(stack.database_url), _redis_calls(redis) - 1  # the first INFO call
    rows = _rows(stack.base, headers, workflow_id)
    done = [(f, rows[f["id"]]) for f in accepted if rows.get(f["id"], {}).get("finishedAt")]
    first, last = min(f["sent"] for f in fired), max(r["finishedAt"] for _, r in done) if done else fired_at
    return {
        "offered": f"{rate}/s paced" if rate else f"closed loop, {CONCURRENCY} requests at a time"
                   + (f", {batched} runs a request" if batched else ""),
        "runs_requested": count, "requests_sent": len(fired), "accepted": len(accepted),
        "rejected": len(fired) - len(accepted), "completed": completed - before_completed,
        "failed": failed - before_failed,
        "unfinished": len(accepted) - len(done),
        "completed_per_s": round(len(done) / (last - first), 1) if done else 0.0,
        "accepted_per_s": round(len(accepted) / (fired_at - first), 1),
        "request_to_completion": percentiles([r["finishedAt"] - f["sent"] for f, r in done]),
        "execute_http": percentiles([f["http_s"] for f in fired]),
        "request_to_created": percentiles([r["createdAt"] - f["sent"] for f, r in done]),
        "created_to_started": percentiles([r["startedAt"] - r["createdAt"] for _, r in done]),
        "started_to_finished": percentiles([r["finishedAt"] - r["startedAt"] for _, r in done]),
        "cpu_ms_per_run": {k: round(v / max(1, len(done)) * 1000, 2) for k, v in cpu.items()},
        "cpu_s": cpu, "wall_s": round(last - first, 2),
        "redis_commands_per_run": round((redis_after - redis_before) / max(1, len(accepted)), 1),
        "postgres_per_run": _per_run(pg_before, pg_after, len(accepted)),
    }


def _split(stack, headers, workflow_id, meter, redis) -> dict:
    """Web alone (workers suspended), then workers alone draining what the web queued."""
    before_completed, before_failed = _finished(stack.base, headers, workflow_id)
    suspend(redis)
    time.sleep(1.5)  # a worker blocked in its dequeue takes at most one more job before it sees the flag
    meter.mark()
    started = time.perf_counter()
    fired = _fire(stack.base, headers, workflow_id, SPLIT_RUNS, time.monotonic() + FIRE_LIMIT_S)
    web_wall = time.perf_counter() - started
    web_cpu = meter.cpu_since_mark()
    accepted = sum(1 for f in fired if f["ok"])
    meter.mark()
    started = time.perf_counter()
    resume(redis)
    completed, failed = _wait_for(stack.base, headers, workflow_id, before_completed + before_failed + accepted,
                                  time.monotonic() + DRAIN_LIMIT_S)
    drained = completed + failed - before_completed - before_failed
    drain_wall = time.perf_counter() - started
    drain_cpu = meter.cpu_since_mark()
    return {
        "web_only": {"accepted": accepted, "per_s": round(accepted / web_wall, 1), **percentiles(
            [f["http_s"] for f in fired]), "cpu_ms_per_run": {k: round(v / max(1, accepted) * 1000, 2)
                                                              for k, v in web_cpu.items()}},
        "workers_only": {"drained": drained, "per_s": round(drained / drain_wall, 1),
                         "note": f"wall includes up to {POLL_S}s of polling",
                         "cpu_ms_per_run": {k: round(v / max(1, drained) * 1000, 2) for k, v in drain_cpu.items()}},
    }


def _groups(stack) -> dict[str, list[int]]:
    groups = {"web": [stack.web.pid], "rq_workers": [w.pid for w in stack.workers],
              "redis": [stack.redis_pid], "client": [os.getpid()]}
    if stack.postgres_pid:
        groups["postgres"] = [stack.postgres_pid]
    return groups


def run(database: str = "sqlite", profile_dir: Path | None = None) -> dict:
    """The three phases on one freshly started stack; CPU figures are per completed run, "other" is the rest of the
    machine (anything above zero means something else competed for the cores)."""
    with running_stack(database, rq_workers=RQ_WORKERS, profile_dir=profile_dir) as stack:
        headers = _sign_up(stack.base)
        workflow_id = _active_workflow(stack.base, headers)
        redis = Redis.from_url(stack.redis_url)
        meter = Meter(_groups(stack))
        meter.start()
        saturated = _with_workers(stack, headers, workflow_id, meter, redis, RUNS)
        rate = RATE or max(10, round(saturated["completed_per_s"] * 0.5))
        paced = _with_workers(stack, headers, workflow_id, meter, redis, int(rate * PACED_S), rate, start=RUNS)
        batched = _with_workers(stack, headers, workflow_id, meter, redis, BATCH_RUNS, start=RUNS * 10,
                                batched=BATCH_SIZE)
        batch_rate = max(20, round(batched["completed_per_s"] * 0.5))  # moderate: half of what batches completed
        batched_paced = _with_workers(stack, headers, workflow_id, meter, redis, int(batch_rate * PACED_S),
                                      batch_rate, start=RUNS * 20, batched=PACED_BATCH_SIZE)
        split = _split(stack, headers, workflow_id, meter, redis)
        meter.stop.set()
        rss = {pid: round(b / 2**20, 1) for pid, b in meter.peak_rss.items()}
    return {"database": database, "concurrency": CONCURRENCY, "rq_workers": RQ_WORKERS,
            "server": "gunicorn gthread, 2 workers x 8 threads", "profiled": profile_dir is not None,
            "saturated": saturated, "paced": paced, "batched": batched, "batched_paced": batched_paced, **split,
            "worker_peak_rss_mib": rss}

"""`make bench`: every benchmark in turn; figures are printed and written to bench/results/.

`python -m bench executions` runs one (`events`: event ingestion and the decision log, issue 4; `builder`: the
builder's interactions on a 60-step draft, issue 5; `webhooks`: a burst of signed deliveries, issue 6);
ATLAS_BENCH_PROFILE=1 runs the executions benchmark with its web and worker processes under cProfile
(bench/profiled.py; CPU time per thread, or wall time with ATLAS_BENCH_PROFILE_CLOCK=wall) and adds where their
time went to the results.
"""
import json
import os
import sys
from pathlib import Path

from bench import api_crud, builder, events, executions, webhooks

OUT = Path(__file__).parent / "results"
DATABASES = tuple(os.environ.get("ATLAS_BENCH_DATABASES", "sqlite,postgres").split(","))


def _executions(database: str) -> dict:
    if not os.environ.get("ATLAS_BENCH_PROFILE"):
        return executions.run(database)
    from bench import profile_report

    directory = OUT / f"profile-{database}"
    profile_report.clear(directory)
    result = executions.run(database, profile_dir=directory)
    result["profile"] = profile_report.summary(directory, result)
    return result


BENCHMARKS = {"api_crud": api_crud.run, "executions": _executions, "events": events.run,
              "builder": builder.run, "webhooks": webhooks.run}


def main(names: list[str]) -> int:
    chosen = names or list(BENCHMARKS)
    results = {f"{name}_{db}": BENCHMARKS[name](db) for name in chosen for db in DATABASES}
    OUT.mkdir(exist_ok=True)
    stem = "latest" if not names else "latest-" + "-".join(names)
    (OUT / f"{stem}.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""`make bench`: every benchmark in turn; figures are printed and written to bench/results/."""
import json
import sys
from pathlib import Path

from bench import api_crud


def main() -> int:
    results = {f"api_crud_{db}": api_crud.run(db) for db in ("sqlite", "postgres")}
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmarks (`make bench`): they start the real app and measure it over loopback; never run as tests."""
import statistics


def percentiles(samples: list[float]) -> dict:
    """Latency figures in ms from samples in seconds: n, p50, p95, p99, max and mean ({} for no samples)."""
    if not samples:
        return {}
    ordered = sorted(samples)
    pick = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)  # noqa: E731
    return {"n": len(ordered), "p50_ms": pick(0.50), "p95_ms": pick(0.95), "p99_ms": pick(0.99),
            "max_ms": round(ordered[-1] * 1000, 1), "mean_ms": round(statistics.fmean(ordered) * 1000, 1)}

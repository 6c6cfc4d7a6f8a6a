"""Percentiles, the one way the benches and the reliability harnesses summarise timings."""

from __future__ import annotations


def percentiles(values: list[float], digits: int = 3) -> dict[str, float | int]:
    """Count, p50, p90, p95, p99 and max of ``values`` (sorted or not), rounded to ``digits`` places."""
    ordered = sorted(values)
    if not ordered:
        return {"count": 0}

    def at(fraction: float) -> float:
        return round(ordered[min(int(len(ordered) * fraction), len(ordered) - 1)], digits)

    return {
        "count": len(ordered),
        "p50": at(0.5),
        "p90": at(0.9),
        "p95": at(0.95),
        "p99": at(0.99),
        "max": round(ordered[-1], digits),
    }

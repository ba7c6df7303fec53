"""Shared helpers of the benchmarks: percentiles, timers, the machine, the eval messages, results.

Every benchmark prints its figures and returns a JSON-able dict; bench/run_all.py collects them into
bench/results/. Benchmarks never assert on time: they report, with the goal and whether it was met.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
EVAL_FILES = (ROOT / "tests" / "data" / "eval.yaml", ROOT / "tests" / "data" / "eval_holdout.yaml")

if str(ROOT) not in sys.path:  # `python bench/x.py` from anywhere
    sys.path.insert(0, str(ROOT))
if str(ROOT / "tests") not in sys.path:  # botapi_client lives in tests/
    sys.path.append(str(ROOT / "tests"))


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summary_ms(seconds: Iterable[float]) -> dict[str, float]:
    """p50 / p90 / p99 / max / mean of durations given in seconds, as milliseconds."""
    values = [s * 1000 for s in seconds]
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 50), 3),
        "p90_ms": round(percentile(values, 90), 3),
        "p99_ms": round(percentile(values, 99), 3),
        "max_ms": round(max(values), 3),
        "mean_ms": round(statistics.fmean(values), 3),
    }


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def goal(name: str, value: float | None, limit: float, unit: str, higher_is_better: bool = False) -> dict[str, Any]:
    """A goal with its verdict: met / not met (or n/a when nothing was measured)."""
    met = None if value is None else (value >= limit if higher_is_better else value <= limit)
    return {
        "goal": name,
        "value": None if value is None else round(value, 3),
        "limit": limit,
        "unit": unit,
        "direction": ">=" if higher_is_better else "<=",
        "met": met,
    }


def verdict(g: dict[str, Any]) -> str:
    met = {True: "met", False: "NOT MET", None: "n/a"}[g["met"]]
    return f"{g['goal']}: {g['value']} {g['unit']} (goal {g['direction']} {g['limit']} {g['unit']}) -> {met}"


def machine() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (None, None, None)
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_mb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_mb = int(line.split()[1]) // 1024
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_mb": mem_mb,
        "loadavg_1_5_15": [round(x, 2) for x in load if x is not None],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "time_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def eval_messages() -> list[tuple[str, str | None]]:
    """(message, expected entry id or None) of tests/data/eval.yaml and eval_holdout.yaml."""
    from bot.evaluation import parse_items
    from bot.yamlio import read_yaml

    out: list[tuple[str, str | None]] = []
    for path in EVAL_FILES:
        out += [(it.q, it.expect) for it in parse_items(read_yaml(path))]
    return out


def say(line: str = "") -> None:
    print(line, flush=True)

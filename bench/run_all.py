"""`make bench`: every benchmark, one after the other; figures printed and written to bench/results/.

Order: start-up, storage, end to end, matcher (the synthetic FAQs last: they take longest).
Writes bench/results/<UTC time>.json and .txt, and the same as latest.json / latest.txt.
Nothing here asserts on time: goals are reported as met / NOT MET.

Usage: .venv/bin/python bench/run_all.py [--quick]     (--quick: a short matcher run, for trying)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from typing import Any

from common import RESULTS, machine, say, verdict


class _Tee(io.TextIOBase):
    def __init__(self, *streams: Any) -> None:
        self.streams = streams

    def write(self, s: str) -> int:
        for stream in self.streams:
            stream.write(s)
        return len(s)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description="Komek benchmarks")
    parser.add_argument("--quick", action="store_true", help="matcher: shipped FAQ and 500 entries only")
    args = parser.parse_args()

    import bench_e2e
    import bench_matcher
    import bench_startup
    import bench_storage

    text = io.StringIO()
    results: dict[str, Any] = {"machine": machine()}
    t0 = time.monotonic()
    with contextlib.redirect_stdout(_Tee(sys.stdout, text)):
        m = results["machine"]
        say(f"Komek benchmarks, {m['time_utc']}: {m['cpus']} CPUs ({m['cpu_model']}), {m['memory_mb']} MB,")
        say(f"  Python {m['python']}, load average at start {m['loadavg_1_5_15']}")
        say()
        for name, fn in (
            ("startup", bench_startup.run),
            ("storage", bench_storage.run),
            ("e2e", bench_e2e.run),
            ("matcher", lambda: bench_matcher.run(args.quick)),
        ):
            t = time.monotonic()
            results[name] = fn()
            results[name]["bench_seconds"] = round(time.monotonic() - t, 1)
            say()
        goals = [g for part in ("matcher", "startup", "e2e") for g in results[part].get("goals", [])]
        results["goals"] = goals
        results["total_seconds"] = round(time.monotonic() - t0, 1)
        results["machine"]["loadavg_end_1_5_15"] = machine()["loadavg_1_5_15"]
        say("== Goals ==")
        for g in goals:
            say(f"  {verdict(g)}")
        met = sum(1 for g in goals if g["met"])
        say(f"  {met} of {len(goals)} goals met")
        say(
            f"Total {results['total_seconds']:.0f} s;"
            f" load average at the end {results['machine']['loadavg_end_1_5_15']}"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = results["machine"]["time_utc"].replace(":", "").replace("-", "")
    data = json.dumps(results, indent=2, ensure_ascii=False) + "\n"
    for name in (f"{stamp}.json", "latest.json"):
        _write(RESULTS / name, data)
    for name in (f"{stamp}.txt", "latest.txt"):
        _write(RESULTS / name, text.getvalue())
    print(f"written: bench/results/{stamp}.json, .txt and latest.json, latest.txt")


def _write(path: Any, data: str) -> None:
    tmp = path.with_name(path.name + ".tmp")  # ignored by .gitignore; replaced atomically
    tmp.write_text(data, encoding="utf-8")
    tmp.replace(path)


if __name__ == "__main__":
    main()

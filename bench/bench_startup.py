"""Start-up: from process start to the first answer, and peak memory, with the shipped FAQ.

Runs `python -m bot ask "<question>"` (import, load and check config.yaml + faq/, load the learned
ranker from its cache, build the index, answer once, print) as a child process: one warm-up run (page
cache, .pyc files, and the ranker's cache filled), then RUNS measured runs. Time = from just before
spawning to the first line of the answer on stdout; peak RSS = that child's ru_maxrss (os.wait4 gives
each child's own resource usage); CPU = its user + system time (the machine is shared: wall time
swings with other work, CPU time much less). Medians are reported. Then COLD_RUNS runs with an empty
ranker cache (KOMEK_MODEL_CACHE in a fresh folder): the first start after a FAQ change, which trains
the ranker (scikit-learn imported) before answering; stated, not a goal.

Usage: .venv/bin/python bench/bench_startup.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from common import ROOT, goal, median, say, verdict

RUNS = 5
COLD_RUNS = 2
QUESTION = "как подать на статус беженца"
GOAL_SECONDS = 1.5
GOAL_RSS_MB = 150.0


def _one(cache: str | None = None) -> tuple[float, float, str, float]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONIOENCODING"] = "utf-8"
    if cache is not None:
        env["KOMEK_MODEL_CACHE"] = cache
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "ask", QUESTION],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    elapsed = time.perf_counter() - t0
    proc.stdout.read()
    proc.stdout.close()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"`python -m bot ask` exited with {proc.returncode}")
    cpu = usage.ru_utime + usage.ru_stime
    return elapsed, usage.ru_maxrss / 1024, first.decode("utf-8", "replace").strip(), cpu


def run() -> dict[str, Any]:
    say("== Start-up ==")
    _one()  # warm-up
    times, rss, cpus, first = [], [], [], ""
    for _ in range(RUNS):
        t, mb, first, cpu = _one()
        times.append(t)
        rss.append(mb)
        cpus.append(cpu)
    cold_times, cold_rss, cold_cpus = [], [], []
    for _ in range(COLD_RUNS):
        with tempfile.TemporaryDirectory(prefix="komek-cold-cache-") as folder:
            t, mb, _, cpu = _one(folder)
        cold_times.append(t)
        cold_rss.append(mb)
        cold_cpus.append(cpu)
    r: dict[str, Any] = {
        "command": f'python -m bot ask "{QUESTION}"',
        "first_line": first,
        "runs": RUNS,
        "seconds": [round(t, 3) for t in times],
        "median_s": round(median(times), 3),
        "peak_rss_mb": [round(m, 1) for m in rss],
        "median_peak_rss_mb": round(median(rss), 1),
        "cpu_s": [round(c, 3) for c in cpus],
        "median_cpu_s": round(median(cpus), 3),
        "cold_cache": {
            "runs": COLD_RUNS,
            "seconds": [round(t, 3) for t in cold_times],
            "median_s": round(median(cold_times), 3),
            "median_cpu_s": round(median(cold_cpus), 3),
            "median_peak_rss_mb": round(median(cold_rss), 1),
        },
    }
    say(f"  {r['command']} -> {first}")
    say(f"  time to first answer: median {r['median_s']:.3f} s over {RUNS} runs {r['seconds']}")
    say(f"  peak RSS: median {r['median_peak_rss_mb']:.1f} MB {r['peak_rss_mb']}")
    say(f"  CPU time: median {r['median_cpu_s']:.3f} s {r['cpu_s']}")
    c = r["cold_cache"]
    say(
        f"  with an empty ranker cache (first start after a FAQ change, trains the ranker): median"
        f" {c['median_s']:.2f} s ({c['median_cpu_s']:.2f} s CPU), {c['median_peak_rss_mb']:.0f} MB, runs {c['seconds']}"
    )
    r["goals"] = [
        goal("start-up, time to first answer (median)", r["median_s"], GOAL_SECONDS, "s"),
        goal("start-up, peak RSS (median)", r["median_peak_rss_mb"], GOAL_RSS_MB, "MB"),
    ]
    for g in r["goals"]:
        say(f"  {verdict(g)}")
    return r


if __name__ == "__main__":
    run()

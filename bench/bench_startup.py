"""Start-up: from process start to the first answer, and peak memory, with the shipped FAQ.

Runs `python -m bot ask "<question>"` (import, load and check config.yaml + faq/, build the index,
answer once, print) as a child process: one warm-up run (page cache, .pyc files), then RUNS measured
runs. Time = from just before spawning to the first line of the answer on stdout; peak RSS = that
child's ru_maxrss (os.wait4 gives each child's own resource usage). Medians are reported.

Usage: .venv/bin/python bench/bench_startup.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

from common import ROOT, goal, median, say, verdict

RUNS = 5
QUESTION = "как подать на статус беженца"
GOAL_SECONDS = 1.5
GOAL_RSS_MB = 120.0


def _one() -> tuple[float, float, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONIOENCODING"] = "utf-8"
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
    return elapsed, usage.ru_maxrss / 1024, first.decode("utf-8", "replace").strip()


def run() -> dict[str, Any]:
    say("== Start-up ==")
    _one()  # warm-up
    times, rss, first = [], [], ""
    for _ in range(RUNS):
        t, mb, first = _one()
        times.append(t)
        rss.append(mb)
    r: dict[str, Any] = {
        "command": f'python -m bot ask "{QUESTION}"',
        "first_line": first,
        "runs": RUNS,
        "seconds": [round(t, 3) for t in times],
        "median_s": round(median(times), 3),
        "peak_rss_mb": [round(m, 1) for m in rss],
        "median_peak_rss_mb": round(median(rss), 1),
    }
    say(f"  {r['command']} -> {first}")
    say(f"  time to first answer: median {r['median_s']:.3f} s over {RUNS} runs {r['seconds']}")
    say(f"  peak RSS: median {r['median_peak_rss_mb']:.1f} MB {r['peak_rss_mb']}")
    r["goals"] = [
        goal("start-up, time to first answer (median)", r["median_s"], GOAL_SECONDS, "s"),
        goal("start-up, peak RSS (median)", r["median_peak_rss_mb"], GOAL_RSS_MB, "MB"),
    ]
    for g in r["goals"]:
        say(f"  {verdict(g)}")
    return r


if __name__ == "__main__":
    run()

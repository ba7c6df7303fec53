"""Start-up: from process start to the first answer, and the serving process's peak memory, with the
shipped FAQ; after a FAQ change also the time until the learned ranker serves, and its build process.

The serving process is `python -m bot run`, long-polling the Bot API emulator (tests/botapi) as in
production, with its own SQLite file. A user's message is posted to the emulator as the process is
spawned (it waits there until the bot's first getUpdates); time to first answer = from just before
spawning to the bot's reply seen in the emulator (polled every 10 ms). Peak RSS = the serving
process's own VmHWM (/proc: its children's memory is not in it), read after its first answer and
again at the end; CPU = its user + system time at the first answer (the machine is shared: wall time
swings with other work, CPU time much less). Medians are reported.

- with the model cached: one warm-up run fills the cache (KOMEK_MODEL_CACHE, a fresh folder), then
  RUNS runs read it: this FAQ version's model is read as arrays, scikit-learn is not imported;
- after a FAQ change (COLD_RUNS runs, each with an empty cache): the bot answers with the matcher
  alone at once and trains the ranker in a child process (bot/understanding/build.py). Also
  measured: the time until the ranker serves (from spawning to the bot's "ranker ready" log line;
  one more message is then answered by both), and the build process's own figures from that line
  (its wall time from spawning to the model read back, its training time, its peak RSS).

Usage: .venv/bin/python bench/bench_startup.py
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from common import ROOT, goal, median, say, verdict

RUNS = 5
COLD_RUNS = 3
QUESTION = "как подать на статус беженца"
AFTER = "можно ли работать беженцу"
GOAL_SECONDS = 1.5
GOAL_RSS_MB = 150.0
GOAL_BUILD_SECONDS = 10.0
READY = re.compile(
    r"ranker ready after ([\d.]+) s: the build process took ([\d.]+) s "
    r"\(training ([\d.]+) s; ([\d.]+) s of CPU\), peak ([\d.]+) MB"
)


def _status_mb(pid: int, field: str) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError):
        pass
    return None


def _cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def _spawn(server: Any, token: str, cache: Path, tmp: Path) -> tuple[subprocess.Popen[bytes], float, Path]:
    """`python -m bot run` with its own database and log; (the process, when it was spawned, its log)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "KOMEK_"))}
    env.update(
        TELEGRAM_BOT_TOKEN=token,
        TELEGRAM_BASE_URL=server.base_url,
        TELEGRAM_BASE_FILE_URL=server.base_file_url,
        KOMEK_SECRET="bench-secret-0123456789abcdef",
        KOMEK_DB=str(tmp / f"{uuid.uuid4().hex[:8]}.sqlite3"),
        KOMEK_MODEL_CACHE=str(cache),
        KOMEK_LOG_LEVEL="INFO",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        PYTHONUNBUFFERED="1",
    )
    log_path = tmp / f"{uuid.uuid4().hex[:8]}.log"
    with open(log_path, "wb") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "run"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
    return proc, t0, log_path


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


async def _observe(
    server: Any, token: str, proc: subprocess.Popen[bytes], t0: float, log_path: Path, cold: bool
) -> dict[str, Any]:
    """The first answer (and after a FAQ change the ranker's arrival) of a bot just spawned."""
    from botapi_client import SimUser

    user = SimUser(id=9_100_000_001, first_name="Bench", language_code="ru")
    out: dict[str, Any] = {}

    def log_text() -> str:
        return log_path.read_text("utf-8", "replace")

    async def answered(count: int) -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"the bot exited:\n{log_text()[-2000:]}")
        return len(await client.bot_messages(user.id)) >= count

    async with server.client(token, timeout=30) as client:
        await client.send_message(user.id, QUESTION, user)  # waits at the emulator for the first getUpdates
        await client.wait_for(lambda: answered(1), timeout=120, interval=0.01, message="the first answer")
        out["first_answer_s"] = time.perf_counter() - t0
        out["cpu_s"] = _cpu(proc.pid)
        out["rss_first_mb"] = _status_mb(proc.pid, "VmHWM")
        if cold:
            found = await client.wait_for(
                lambda: proc.poll() is None and READY.search(log_text()), timeout=120, interval=0.01, message="ranker"
            )
            out["ranker_ready_s"] = time.perf_counter() - t0
            out["build_wall_s"], out["build_train_s"] = float(found.group(2)), float(found.group(3))
            out["build_cpu_s"], out["build_peak_rss_mb"] = float(found.group(4)), float(found.group(5))
            await client.send_message(user.id, AFTER, user)  # answered by the matcher and the ranker
            await client.wait_for(lambda: answered(2), timeout=60, interval=0.01, message="the second answer")
        out["rss_peak_mb"] = _status_mb(proc.pid, "VmHWM")
    engine = [line.split(": ", 1)[-1] for line in log_text().splitlines() if "matcher" in line]
    out["engine_logged"] = engine[0] if engine else ""
    return out


def _one(server: Any, cache: Path, tmp: Path, cold: bool) -> dict[str, Any]:
    token = f"{int(time.time() * 1000) % 10**9 + 10**9}:START-{uuid.uuid4().hex[:16]}"
    proc, t0, log_path = _spawn(server, token, cache, tmp)
    try:
        return asyncio.run(_observe(server, token, proc, t0, log_path, cold))
    finally:
        _stop(proc)


def _runs(cold: bool, count: int, server: Any, tmp: Path, cache: Path | None = None) -> list[dict[str, Any]]:
    results = []
    for i in range(count):
        folder = cache or Path(tempfile.mkdtemp(prefix=f"cold-{i}-", dir=tmp))
        results.append(_one(server, folder, tmp, cold))
    return results


def _med(runs: list[dict[str, Any]], key: str, digits: int = 3) -> float:
    return round(median([r[key] for r in runs]), digits)


def _all(runs: list[dict[str, Any]], key: str, digits: int = 2) -> list[float]:
    return [round(r[key], digits) for r in runs]


def run() -> dict[str, Any]:
    from botapi_client import BotApiServer

    say("== Start-up (python -m bot run against the Bot API emulator) ==")
    load_before = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="komek-startup-") as folder, BotApiServer() as server:
        tmp = Path(folder)
        cache = tmp / "cache"
        _runs(True, 1, server, tmp, cache)  # warm-up: page cache, .pyc files, and the model cached
        warm = _runs(False, RUNS, server, tmp, cache)
        cold = _runs(True, COLD_RUNS, server, tmp)
    r: dict[str, Any] = {
        "command": "python -m bot run",
        "loadavg_1_5_15": {"before": load_before, "after": [round(x, 2) for x in os.getloadavg()]},
        "question": QUESTION,
        "cached": {
            "runs": RUNS,
            "first_answer_s": _all(warm, "first_answer_s", 3),
            "median_first_answer_s": _med(warm, "first_answer_s"),
            "median_cpu_s": _med(warm, "cpu_s"),
            "peak_rss_mb": _all(warm, "rss_peak_mb", 1),
            "median_peak_rss_mb": _med(warm, "rss_peak_mb", 1),
            "engine": warm[0]["engine_logged"],
        },
        "faq_changed": {
            "runs": COLD_RUNS,
            "first_answer_s": _all(cold, "first_answer_s", 3),
            "median_first_answer_s": _med(cold, "first_answer_s"),
            "median_cpu_s": _med(cold, "cpu_s"),
            "median_rss_at_first_answer_mb": _med(cold, "rss_first_mb", 1),
            "peak_rss_mb": _all(cold, "rss_peak_mb", 1),
            "median_peak_rss_mb": _med(cold, "rss_peak_mb", 1),
            "ranker_ready_s": _all(cold, "ranker_ready_s"),
            "median_ranker_ready_s": _med(cold, "ranker_ready_s"),
            "build_wall_s": _all(cold, "build_wall_s"),
            "median_build_wall_s": _med(cold, "build_wall_s"),
            "median_build_train_s": _med(cold, "build_train_s"),
            "build_cpu_s": _all(cold, "build_cpu_s"),
            "median_build_cpu_s": _med(cold, "build_cpu_s"),
            "build_peak_rss_mb": _all(cold, "build_peak_rss_mb", 0),
            "median_build_peak_rss_mb": _med(cold, "build_peak_rss_mb", 0),
            "engine": cold[0]["engine_logged"],
        },
    }
    w, c = r["cached"], r["faq_changed"]
    say(f"  {r['command']}, first question {QUESTION!r}; load average {load_before} -> {r['loadavg_1_5_15']['after']}")
    say(f"  model cached: first answer median {w['median_first_answer_s']:.3f} s {w['first_answer_s']},")
    say(f"    CPU {w['median_cpu_s']:.2f} s, peak RSS median {w['median_peak_rss_mb']:.1f} MB {w['peak_rss_mb']}")
    say(f"    log: {w['engine']}")
    say(f"  after a FAQ change (no model cached): first answer median {c['median_first_answer_s']:.3f} s")
    say(f"    {c['first_answer_s']}, CPU {c['median_cpu_s']:.2f} s, {c['median_rss_at_first_answer_mb']:.1f} MB then;")
    say(f"    ranker serving after median {c['median_ranker_ready_s']:.2f} s {c['ranker_ready_s']};")
    say(f"    serving process peak RSS median {c['median_peak_rss_mb']:.1f} MB {c['peak_rss_mb']}")
    say(
        f"    build process: median {c['median_build_wall_s']:.2f} s {c['build_wall_s']} (training"
        f" {c['median_build_train_s']:.2f} s; CPU {c['median_build_cpu_s']:.2f} s {c['build_cpu_s']}),"
        f" peak RSS median {c['median_build_peak_rss_mb']:.0f} MB"
        f" {c['build_peak_rss_mb']}"
    )
    say(f"    log: {c['engine']}")
    r["goals"] = [
        goal("start-up to first answer, model cached (median)", w["median_first_answer_s"], GOAL_SECONDS, "s"),
        goal("start-up, peak RSS, model cached (median)", w["median_peak_rss_mb"], GOAL_RSS_MB, "MB"),
        goal("start-up to first answer after a FAQ change (median)", c["median_first_answer_s"], GOAL_SECONDS, "s"),
        goal("serving peak RSS after a FAQ change, ranker in (median)", c["median_peak_rss_mb"], GOAL_RSS_MB, "MB"),
        goal("model build for the shipped FAQ (median)", c["median_build_wall_s"], GOAL_BUILD_SECONDS, "s"),
    ]
    for g in r["goals"]:
        say(f"  {verdict(g)}")
    return r


if __name__ == "__main__":
    run()

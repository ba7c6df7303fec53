"""End to end through the Bot API emulator: Komek against a plain PTB echo bot, same run, same server.

Each bot runs as its own process, long-polling the emulator (tests/botapi/launcher.js) like in
production: Komek is `python -m bot run` (its SQLite file in a temp dir, storage and all), the echo
bot is bench/echo_bot.py (PTB's run_polling), and "komek-ptb" is Komek's same Application on PTB's
run_polling with the echo bot's exact settings (bench/komek_ptb_polling.py), which separates the
cost of Komek's handlers from its polling loop. The three run side by side (idle ones only
long-poll). 50 simulated users each send a message, wait for the reply, then send the next one (a
closed loop: at most 50 messages are in flight, which is also how people use a help-line bot). The
messages are the eval messages. After a warm-up (one message per user and bot), ROUNDS rounds: in
each round every bot in turn gets USERS x PER_USER = 350 messages (new users every round), so a slow
moment of the shared machine hits all three alike. Throughput is the median over the rounds, and the
ratio to the echo bot the median of the rounds' ratios; latencies are pooled over the rounds.

Latency = from just before the user's message is posted to the emulator, to the emulator's arrival
time of the bot's (last) sendMessage for that chat (/control/requests, same clock). Throughput =
messages / (first send -> last reply). Also CPU time per message of the bot process, the emulator
and this process (the simulated users), from /proc: the three share the machine.
Komek's flood guard allows 20 messages per user per minute; each user sends at most 8.

Usage: .venv/bin/python bench/bench_e2e.py      (BENCH_PROFILE=/some/dir: profile the bots with cProfile)
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from common import ROOT, eval_messages, goal, median, say, summary_ms, verdict

if TYPE_CHECKING:
    from botapi_client import BotApiClient, BotApiServer

USERS = 50
PER_USER = 7  # measured messages per user and round (plus one warm-up message)
ROUNDS = 3
KINDS = ("echo", "komek", "komek-ptb")
GOAL_RATIO = 0.8
LANGS = ("ru", "kk", "en")


def _cpu(pid: int | None) -> float:
    """CPU seconds (user + system) a process has used so far (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


class RunningBot:
    """A bot process polling the emulator with its own token."""

    def __init__(self, kind: str, server: BotApiServer, tmp: Path) -> None:
        self.kind = kind
        self.token = f"{random.randint(100000, 999999)}:BENCH-{kind}-{uuid.uuid4().hex[:16]}"
        env = dict(os.environ)
        env.update(
            TELEGRAM_BOT_TOKEN=self.token,
            TELEGRAM_BASE_URL=server.base_url,
            TELEGRAM_BASE_FILE_URL=server.base_file_url,
            KOMEK_SECRET="bench-secret-0123456789abcdef",
            KOMEK_DB=str(tmp / f"{kind}.sqlite3"),
            KOMEK_LOG_LEVEL="WARNING",
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        )
        cmd = {
            "komek": ["-m", "bot", "run"],
            "komek-ptb": ["bench/komek_ptb_polling.py"],
            "echo": ["bench/echo_bot.py"],
        }[kind]
        profile_dir = os.environ.get("BENCH_PROFILE")  # a folder: the bots run under cProfile, .prof files there
        if profile_dir:
            cmd = ["-m", "cProfile", "-o", str(Path(profile_dir).resolve() / f"{kind}.prof"), *cmd]
        cmd = [sys.executable, *cmd]
        self.log = open(tmp / f"{kind}.log", "w+b")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        self.cpu_s = 0.0

    def cpu_now(self) -> float:
        return _cpu(self.proc.pid)

    def peak_rss_mb(self) -> float | None:
        """VmHWM: the bot process's peak resident memory so far (Linux /proc)."""
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
        except (OSError, ValueError):
            pass
        return None

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.log.seek(0)
        text = self.log.read().decode("utf-8", "replace")
        self.log.close()
        return text


class Replies:
    """Watches the bot's sendMessage calls in the emulator and wakes the user waiting for each."""

    def __init__(self, http: httpx.AsyncClient, token: str, complete: Any) -> None:
        self.http = http
        self.token = token
        self.complete = complete  # request params -> is this the last message of a reply?
        self.since = 0
        self.waiting: dict[int, asyncio.Future[float]] = {}
        self.replies = 0  # complete replies seen (more than messages sent = duplicate answers)
        self.stopped = False

    async def poll(self) -> None:
        while not self.stopped:
            params = {"token": self.token, "method": "sendMessage", "since": str(self.since)}
            body = (await self.http.get("/control/requests", params=params)).json()
            for req in body["result"]:
                self.since = max(self.since, req["seq"])
                p = req.get("params") or {}
                try:
                    chat = int(str(p.get("chat_id")))
                except (TypeError, ValueError):
                    continue
                if not self.complete(p):
                    continue
                self.replies += 1
                fut = self.waiting.get(chat)
                if fut is not None and not fut.done():
                    fut.set_result(req["time"] / 1000)
            await asyncio.sleep(0.01)

    def expect(self, chat: int) -> asyncio.Future[float]:
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiting[chat] = fut
        return fut


async def _round(server: BotApiServer, bot: RunningBot, texts: list[str], base_id: int, count: int) -> dict[str, Any]:
    """USERS users (ids from base_id) each send `count` messages, one after the other's reply."""
    from botapi_client import SimUser  # tests/ is on sys.path once common is imported

    complete = (lambda p: bool(p.get("reply_markup"))) if bot.kind.startswith("komek") else (lambda p: True)
    async with server.client(bot.token, timeout=30) as user, httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        replies = Replies(http, bot.token, complete)
        replies.since = max([r["seq"] for r in await user.requests("sendMessage")], default=0)
        poller = asyncio.create_task(replies.poll())
        sims = [SimUser(id=base_id + i, first_name=f"U{i}", language_code=LANGS[i % 3]) for i in range(USERS)]
        latencies: list[float] = []
        last_reply = 0.0

        async def session(i: int) -> None:
            nonlocal last_reply
            for j in range(count):
                fut = replies.expect(sims[i].id)
                t_send = time.time()
                await user.send_message(sims[i].id, texts[(base_id + i * count + j) % len(texts)], sims[i])
                t_reply = await asyncio.wait_for(fut, timeout=120)
                latencies.append(max(0.0, t_reply - t_send))
                last_reply = max(last_reply, t_reply)

        try:
            cpu0, emu0, own0 = bot.cpu_now(), _cpu(server.pid), time.process_time()
            t0 = time.time()
            await asyncio.gather(*(session(i) for i in range(USERS)))
            cpu1, emu1, own1 = bot.cpu_now(), _cpu(server.pid), time.process_time()
            await asyncio.sleep(0.5)  # late (duplicate) replies
        finally:
            replies.stopped = True
            await poller
    n = len(latencies)
    return {
        "messages": n,
        "elapsed_s": last_reply - t0,
        "latencies": latencies,
        "bot_cpu_s": cpu1 - cpu0,
        "emulator_cpu_s": emu1 - emu0,
        "driver_cpu_s": own1 - own0,
        "replies_seen": replies.replies,
    }


async def _drive(server: BotApiServer, bots: list[RunningBot], texts: list[str]) -> dict[str, dict[str, Any]]:
    """Warm-up, then ROUNDS rounds; in each round every bot in turn (interleaved, so a slow
    moment of the shared machine hits all bots alike). New user ids every round (flood guard)."""
    for bot in bots:
        async with server.client(bot.token) as user:
            await user.wait_for(partial(_polling, user), timeout=60, message=f"{bot.kind} to start polling")
    for bot in bots:
        await _round(server, bot, texts, 6_000_000, 1)  # warm-up: one message per user
    rounds: dict[str, list[dict[str, Any]]] = {bot.kind: [] for bot in bots}
    for r in range(ROUNDS):
        for bot in bots:
            rounds[bot.kind].append(await _round(server, bot, texts, 7_000_000 + 1000 * r, PER_USER))
    out: dict[str, dict[str, Any]] = {}
    for bot in bots:
        rs = rounds[bot.kind]
        n = sum(r["messages"] for r in rs)
        rates = [r["messages"] / r["elapsed_s"] for r in rs]
        out[bot.kind] = {
            "messages": n,
            "rounds": len(rs),
            "msgs_per_s": round(median(rates), 1),
            "msgs_per_s_rounds": [round(x, 1) for x in rates],
            "latency": summary_ms([t for r in rs for t in r["latencies"]]),
            "bot_cpu_ms_per_msg": round(sum(r["bot_cpu_s"] for r in rs) * 1000 / n, 2),
            "emulator_cpu_ms_per_msg": round(sum(r["emulator_cpu_s"] for r in rs) * 1000 / n, 2),
            "driver_cpu_ms_per_msg": round(sum(r["driver_cpu_s"] for r in rs) * 1000 / n, 2),
            "bot_peak_rss_mb": bot.peak_rss_mb(),
            "messages_sent": n,
            "replies_seen": sum(r["replies_seen"] for r in rs),
        }
    return out


async def _polling(user: BotApiClient) -> bool:
    return (await user.calls()).get("getUpdates", 0) > 0


def run() -> dict[str, Any]:
    from botapi_client import BotApiServer

    say(f"== End to end (Bot API emulator, {USERS} users, closed loop, {ROUNDS} interleaved rounds) ==")
    texts = [q for q, _ in eval_messages()]
    random.Random(7).shuffle(texts)
    results: dict[str, Any] = {"users": USERS, "messages_per_user_per_round": PER_USER, "rounds": ROUNDS}
    with tempfile.TemporaryDirectory(prefix="komek-e2e-") as tmp, BotApiServer() as server:
        bots = [RunningBot(kind, server, Path(tmp)) for kind in KINDS]
        try:
            measured = asyncio.run(_drive(server, bots, texts))
        finally:
            logs = {bot.kind: bot.stop() for bot in bots}
    for kind in KINDS:
        r = measured[kind]
        errors = [line for line in logs[kind].splitlines() if " ERROR " in line or "Traceback" in line]
        r["errors_in_log"] = len(errors)
        results[kind] = r
        lat = r["latency"]
        say(
            f"  {kind:<9} {r['messages']} messages: {r['msgs_per_s']:.1f} msg/s (median; rounds"
            f" {r['msgs_per_s_rounds']}); latency p50 {lat['p50_ms']:.0f} ms, p99 {lat['p99_ms']:.0f} ms;"
            f" log errors: {len(errors)}"
        )
        say(
            f"  {'':<9} CPU per message: bot {r['bot_cpu_ms_per_msg']:.1f} ms,"
            f" emulator {r['emulator_cpu_ms_per_msg']:.1f} ms, simulated users {r['driver_cpu_ms_per_msg']:.1f} ms;"
            f" bot peak RSS {r['bot_peak_rss_mb']} MB"
        )
        if r["replies_seen"] != r["messages_sent"]:
            say(f"    WARNING: {r['replies_seen']} replies to {r['messages_sent']} messages (latency may be off)")
        for line in errors[:5]:
            say(f"    {line[:200]}")
    echo = results["echo"]["msgs_per_s_rounds"]
    per_round = {k: [a / b for a, b in zip(results[k]["msgs_per_s_rounds"], echo, strict=True)] for k in KINDS[1:]}
    ratio, ratio_ptb = median(per_round["komek"]), median(per_round["komek-ptb"])
    results["ratio"] = round(ratio, 3)
    results["ratio_rounds"] = [round(x, 3) for x in per_round["komek"]]
    results["ratio_ptb_polling"] = round(ratio_ptb, 3)
    results["ratio_ptb_polling_rounds"] = [round(x, 3) for x in per_round["komek-ptb"]]
    say(
        f"  throughput Komek / echo (median of the rounds' ratios): {ratio:.2f} (python -m bot run,"
        f" rounds {results['ratio_rounds']}); {ratio_ptb:.2f} (Komek on PTB's run_polling)"
    )
    # The goal is Komek as it runs (python -m bot run). Komek's handlers on PTB's stock loop are a
    # diagnostic (which share of the cost is the loop's), printed above, not a way Komek is deployed.
    results["goals"] = [
        goal("end to end, Komek (python -m bot run) / echo bot throughput", ratio, GOAL_RATIO, "x", True),
    ]
    for g in results["goals"]:
        say(f"  {verdict(g)}")
    return results


if __name__ == "__main__":
    run()

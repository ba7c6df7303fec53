"""End to end through the Bot API emulator: Komek against a plain PTB echo bot, same run, same server.

Each bot runs as its own process, long-polling the emulator (tests/botapi/launcher.js) like in
production: Komek is `python -m bot run` (its SQLite file in a temp dir, storage and all), the echo
bot is bench/echo_bot.py (PTB's run_polling), and "komek-ptb" is Komek's same Application on PTB's
run_polling with the echo bot's exact settings (bench/komek_ptb_polling.py), which separates the
cost of Komek's handlers from its polling loop. 50 simulated users each send a message,
wait for the reply, then send the next one (a closed loop: at most 50 messages are in flight,
which is also how people use a help-line bot). The messages are the eval messages. After a warm-up
round (one message per user), USERS x PER_USER = 500 messages are measured per bot.

Latency = from just before the user's message is posted to the emulator, to the emulator's arrival
time of the bot's (last) sendMessage for that chat (/control/requests, same clock). Throughput =
messages / (first send -> last reply). Also CPU time per message of the bot process, the emulator
and this process (the simulated users), from /proc: the three share the machine.
Komek's flood guard allows 20 messages per user per minute; 50 users x (1 + 10) messages stay under it.

Usage: .venv/bin/python bench/bench_e2e.py      (BENCH_PROFILE=/some/dir: profile both bots with cProfile)
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
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from common import ROOT, eval_messages, goal, say, summary_ms, verdict

if TYPE_CHECKING:
    from botapi_client import BotApiClient, BotApiServer

USERS = 50
PER_USER = 10  # measured messages per user (plus one warm-up)
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
                    chat = int(p.get("chat_id"))
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


async def _drive(server: BotApiServer, bot: RunningBot, texts: list[str]) -> dict[str, Any]:
    from botapi_client import SimUser  # tests/ is on sys.path once common is imported

    komek = bot.kind.startswith("komek")
    complete = (lambda p: bool(p.get("reply_markup"))) if komek else (lambda p: True)
    async with server.client(bot.token, timeout=30) as user, httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        # ready = the bot has started long-polling
        await user.wait_for(lambda: _polling(user), timeout=60, message=f"{bot.kind} to start polling")
        replies = Replies(http, bot.token, complete)
        poller = asyncio.create_task(replies.poll())
        sims = [SimUser(id=7_000_000 + i, first_name=f"U{i}", language_code=LANGS[i % 3]) for i in range(USERS)]
        latencies: list[float] = []
        last_reply = 0.0

        async def one(sim: SimUser, text: str, record: bool) -> None:
            nonlocal last_reply
            fut = replies.expect(sim.id)
            t_send = time.time()
            await user.send_message(sim.id, text, sim)
            t_reply = await asyncio.wait_for(fut, timeout=120)
            if record:
                latencies.append(max(0.0, t_reply - t_send))
                last_reply = max(last_reply, t_reply)

        async def session(i: int, record: bool, count: int, offset: int) -> None:
            for j in range(count):
                await one(sims[i], texts[(offset + i * count + j) % len(texts)], record)

        try:
            await asyncio.gather(*(session(i, False, 1, 0) for i in range(USERS)))  # warm-up
            cpu0, emu0, own0 = bot.cpu_now(), _cpu(server.pid), time.process_time()
            t0 = time.time()
            await asyncio.gather(*(session(i, True, PER_USER, 1000) for i in range(USERS)))
            cpu1, emu1, own1 = bot.cpu_now(), _cpu(server.pid), time.process_time()
            await asyncio.sleep(1.0)  # late (duplicate) replies
            rss = bot.peak_rss_mb()
        finally:
            replies.stopped = True
            await poller
    elapsed = last_reply - t0
    n = len(latencies)
    return {
        "messages": n,
        "elapsed_s": round(elapsed, 3),
        "msgs_per_s": round(n / elapsed, 1),
        "latency": summary_ms(latencies),
        "bot_cpu_ms_per_msg": round((cpu1 - cpu0) * 1000 / n, 2),
        "emulator_cpu_ms_per_msg": round((emu1 - emu0) * 1000 / n, 2),
        "driver_cpu_ms_per_msg": round((own1 - own0) * 1000 / n, 2),
        "bot_peak_rss_mb": rss,
        "messages_sent": USERS * (1 + PER_USER),
        "replies_seen": replies.replies,
    }


async def _polling(user: BotApiClient) -> bool:
    return (await user.calls()).get("getUpdates", 0) > 0


def run() -> dict[str, Any]:
    say("== End to end (Bot API emulator, 50 users, closed loop) ==")
    texts = [q for q, _ in eval_messages()]
    random.Random(7).shuffle(texts)
    results: dict[str, Any] = {"users": USERS, "messages_per_user": PER_USER}
    from botapi_client import BotApiServer

    with tempfile.TemporaryDirectory(prefix="komek-e2e-") as tmp, BotApiServer() as server:
        for kind in ("echo", "komek", "komek-ptb"):
            bot = RunningBot(kind, server, Path(tmp))
            try:
                r = asyncio.run(_drive(server, bot, texts))
            finally:
                log = bot.stop()
            errors = [line for line in log.splitlines() if " ERROR " in line or "Traceback" in line]
            extra = r["replies_seen"] - r["messages_sent"]
            r["errors_in_log"] = len(errors)
            results[kind] = r
            lat = r["latency"]
            say(
                f"  {kind:<9} {r['messages']} messages in {r['elapsed_s']:.2f} s: {r['msgs_per_s']:.1f} msg/s;"
                f" latency p50 {lat['p50_ms']:.0f} ms, p99 {lat['p99_ms']:.0f} ms;"
                f" log errors: {len(errors)}"
            )
            say(
                f"  {'':<9} CPU per message: bot {r['bot_cpu_ms_per_msg']:.1f} ms,"
                f" emulator {r['emulator_cpu_ms_per_msg']:.1f} ms, simulated users {r['driver_cpu_ms_per_msg']:.1f} ms;"
                f" bot peak RSS {r['bot_peak_rss_mb']} MB"
            )
            if extra:
                say(f"    WARNING: {r['replies_seen']} replies to {r['messages_sent']} messages (latency may be off)")
            for line in errors[:5]:
                say(f"    {line[:200]}")
    ratio = results["komek"]["msgs_per_s"] / results["echo"]["msgs_per_s"]
    ratio_ptb = results["komek-ptb"]["msgs_per_s"] / results["echo"]["msgs_per_s"]
    results["ratio"] = round(ratio, 3)
    results["ratio_ptb_polling"] = round(ratio_ptb, 3)
    say(f"  throughput Komek / echo: {ratio:.2f} (python -m bot run); {ratio_ptb:.2f} (Komek on PTB's run_polling)")
    results["goals"] = [
        goal("end to end, Komek (python -m bot run) / echo bot throughput", ratio, GOAL_RATIO, "x", True),
        goal("end to end, Komek on PTB run_polling / echo bot throughput", ratio_ptb, GOAL_RATIO, "x", True),
    ]
    for g in results["goals"]:
        say(f"  {verdict(g)}")
    return results


if __name__ == "__main__":
    run()

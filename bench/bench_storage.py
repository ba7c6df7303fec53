"""Storage throughput: 200 simulated users writing at once through one Storage, as the bot does.

Two phases on a fresh database (WAL; the journal mode is read back and printed):
- events: 200 asyncio tasks each calling Storage.record_event in a loop;
- messages: 200 tasks each doing what the bot does per free-text message (handlers._record and
  _language): get_language, touch_user, record_event, and for one message in four (the share of
  fallback / did-you-mean replies) record_unanswered.
Prints writes per second and the latency of one call under that load (with 200 callers queued on
one connection, that latency is mostly the wait for the others' writes).

Usage: .venv/bin/python bench/bench_storage.py
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import tempfile
import time
from pathlib import Path
from typing import Any

from common import say, summary_ms

from bot.storage import Storage

USERS = 200
EVENTS_PER_USER = 40
MESSAGES_PER_USER = 15


def _pid(i: int) -> str:
    return hashlib.sha256(f"user-{i}".encode()).hexdigest()[:32]


async def _events(storage: Storage, pids: list[str]) -> tuple[float, list[float]]:
    latencies: list[float] = []
    now = dt.datetime.now(dt.UTC)

    async def user(pid: str) -> None:
        for _ in range(EVENTS_PER_USER):
            t0 = time.perf_counter()
            await storage.record_event(pid, "answer", "asylum-apply", 0.71, "ru", now)
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(user(p) for p in pids))
    return time.perf_counter() - t0, latencies


async def _messages(storage: Storage, pids: list[str]) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    writes = 0
    now = dt.datetime.now(dt.UTC)

    async def user(i: int, pid: str) -> None:
        nonlocal writes
        for j in range(MESSAGES_PER_USER):
            t0 = time.perf_counter()
            await storage.get_language(pid)
            await storage.touch_user(pid, now)
            await storage.record_event(pid, "did_you_mean" if (i + j) % 4 == 0 else "answer", None, 0.4, "ru", now)
            writes += 2
            if (i + j) % 4 == 0:
                await storage.record_unanswered(
                    pid, "ru", "did_you_mean", "где взять справку для статуса", [("asylum-apply", 0.41)], now
                )
                writes += 1
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(user(i, p) for i, p in enumerate(pids)))
    return time.perf_counter() - t0, latencies, writes


async def _run(db: Path) -> dict[str, Any]:
    storage = await Storage.open(db)
    try:
        mode = await storage.journal_mode()
        pids = [_pid(i) for i in range(USERS)]
        await _events(storage, pids[:10])  # warm-up (connection thread, statement cache)
        elapsed, lat = await _events(storage, pids)
        m_elapsed, m_lat, writes = await _messages(storage, pids)
        count = await storage.count_events()
    finally:
        await storage.close()
    events = USERS * EVENTS_PER_USER
    messages = USERS * MESSAGES_PER_USER
    return {
        "journal_mode": mode,
        "users": USERS,
        "events": events,
        "events_per_s": round(events / elapsed, 1),
        "record_event_latency": summary_ms(lat),
        "messages": messages,
        "messages_per_s": round(messages / m_elapsed, 1),
        "message_writes_per_s": round(writes / m_elapsed, 1),
        "per_message_latency": summary_ms(m_lat),
        "events_in_db": count,
    }


def run() -> dict[str, Any]:
    say("== Storage ==")
    with tempfile.TemporaryDirectory(prefix="komek-bench-") as tmp:
        r = asyncio.run(_run(Path(tmp) / "bench.sqlite3"))
        r["db_dir"] = tmp
    if r["journal_mode"] != "wal":
        say(f"  WARNING: journal_mode is {r['journal_mode']!r}, not WAL")
    lat = r["record_event_latency"]
    say(f"  journal_mode={r['journal_mode']}, {USERS} concurrent users, one Storage (one connection)")
    say(
        f"  record_event: {r['events']} events, {r['events_per_s']:.0f} events/s;"
        f" latency under load p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms"
    )
    m = r["per_message_latency"]
    say(
        f"  per message (get_language + touch_user + record_event [+ record_unanswered 1 in 4]):"
        f" {r['messages_per_s']:.0f} messages/s ({r['message_writes_per_s']:.0f} writes/s);"
        f" latency p50 {m['p50_ms']:.1f} ms, p99 {m['p99_ms']:.1f} ms"
    )
    return r


if __name__ == "__main__":
    run()

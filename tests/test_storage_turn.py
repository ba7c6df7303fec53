"""Storage.record_turn: a message's writes (the user seen, its event, the unanswered question) as one
transaction, and Storage's transactions in one trip to the database thread."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, cast

import aiosqlite
import pytest

from bot.privacy import pseudonym
from bot.storage import Storage, StorageError

KEY = b"test-pseudonym-key"
NOW = dt.datetime(2024, 5, 12, 15, 30, 0, tzinfo=dt.UTC)
ALICE = pseudonym(5_123_456_789, KEY)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Storage]:
    async with await Storage.open(tmp_path / "komek.sqlite3") as s:
        yield s


def table(store: Storage, name: str) -> list[tuple[object, ...]]:
    con = sqlite3.connect(store.path)
    try:
        return con.execute(f"SELECT * FROM {name}").fetchall()
    finally:
        con.close()


async def test_record_turn_writes_what_the_three_calls_wrote(store: Storage, tmp_path: Path) -> None:
    later = NOW + dt.timedelta(minutes=5)
    await store.record_turn(ALICE, "answer", "asylum-apply", 0.91, "ru", NOW)
    await store.record_turn(ALICE, "fallback", None, 0.2, "ru", later, ("звоните +7 701 123 45 67", [("a", 0.21)]))
    async with await Storage.open(tmp_path / "separate.sqlite3") as other:
        await other.touch_user(ALICE, NOW)
        await other.record_event(ALICE, "answer", "asylum-apply", 0.91, "ru", NOW)
        await other.touch_user(ALICE, later)
        await other.record_event(ALICE, "fallback", None, 0.2, "ru", later)
        await other.record_unanswered(ALICE, "ru", "fallback", "звоните +7 701 123 45 67", [("a", 0.21)], later)
        for name in ("users", "events", "unanswered"):
            assert table(store, name) == table(other, name), name
    [row] = table(store, "unanswered")
    assert "[phone]" in str(row) and "701" not in str(row)  # scrubbed here too


async def test_record_turn_is_all_or_nothing(store: Storage) -> None:
    await store.record_turn(ALICE, "answer", "x", 0.9, "ru", NOW)
    await store._conn().execute_fetchall(
        "CREATE TRIGGER no_more BEFORE INSERT ON unanswered BEGIN SELECT RAISE(ABORT, 'full'); END"
    )
    with pytest.raises(StorageError):
        await store.record_turn(ALICE, "fallback", None, 0.1, "ru", NOW + dt.timedelta(hours=1), ("q", []))
    assert len(table(store, "events")) == 1  # the event of the failed turn was rolled back with it
    assert [r[3] for r in table(store, "users")] == [NOW.isoformat(timespec="seconds")]  # last_seen too
    await store.record_turn(ALICE, "answer", "x", 0.9, "ru", NOW)  # and the connection is usable again
    assert len(table(store, "events")) == 2


async def test_a_closed_store_raises_storage_error(store: Storage) -> None:
    await store.close()
    with pytest.raises(StorageError):
        await store.record_turn(ALICE, "answer", "x", 0.9, "ru", NOW)


async def test_concurrent_turns_share_commits_and_fail_alone(store: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    """Turns that arrive together are committed together (fewer commits than turns), yet a turn whose
    statement fails is rolled back alone and raises, as if it had had a transaction of its own."""
    from bot import storage as storage_module

    batches: list[int] = []
    commit = storage_module._commit_groups

    def counting(db: aiosqlite.Connection, groups: list[list[tuple[str, Sequence[Any]]]]) -> list[sqlite3.Error | None]:
        batches.append(len(groups))
        return commit(db, groups)

    monkeypatch.setattr(storage_module, "_commit_groups", counting)
    pids = [pseudonym(i, KEY) for i in range(40)]
    bad = pids[7]
    await store._conn().execute_fetchall(
        f"CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.pid = '{bad}' BEGIN SELECT RAISE(ABORT, 'no'); END"
    )
    results = await asyncio.gather(
        *(store.record_turn(pid, "answer", "x", 0.5, "en", NOW, ("q", [])) for pid in pids), return_exceptions=True
    )
    assert [i for i, r in enumerate(results) if isinstance(r, StorageError)] == [7]
    assert all(r is None for i, r in enumerate(results) if i != 7)
    assert sum(batches) == 40 and len(batches) < 40
    assert sorted(cast(str, r[2]) for r in table(store, "events")) == sorted(p for p in pids if p != bad)
    assert bad not in {r[0] for r in table(store, "users")}  # its touch was rolled back with it
    assert len(table(store, "unanswered")) == 39


async def test_close_waits_for_queued_turns(tmp_path: Path) -> None:
    store = await Storage.open(tmp_path / "komek.sqlite3")
    writes = [asyncio.create_task(store.record_turn(ALICE, "answer", "x", 0.5, "en", NOW)) for _ in range(5)]
    await asyncio.sleep(0)
    await store.close()
    await asyncio.gather(*writes)
    assert len(table(store, "events")) == 5


async def test_a_full_disk_fails_turns_one_by_one(store: Storage) -> None:
    """SQLite rolls back a whole transaction on a full disk; the turns are then committed one by
    one, so each is stored whole or raises, never half, and the ones that fit are kept."""
    [(pages,)] = await store._conn().execute_fetchall("PRAGMA page_count")
    await store._conn().execute_fetchall(f"PRAGMA max_page_count = {pages + 2}")
    pids = [pseudonym(i, KEY) for i in range(30)]
    big = "вопрос " * 400
    results = await asyncio.gather(
        *(store.record_turn(pid, "fallback", None, 0.1, "ru", NOW, (big, [])) for pid in pids), return_exceptions=True
    )
    failed = {pid for pid, r in zip(pids, results, strict=True) if isinstance(r, StorageError)}
    assert failed and all(r is None or isinstance(r, StorageError) for r in results)
    assert all("full" in str(r) for r in results if r is not None)
    stored = {r[2] for r in table(store, "events")}
    assert stored == set(pids) - failed
    assert {r[2] for r in table(store, "unanswered")} == stored
    await store._conn().execute_fetchall("PRAGMA max_page_count = 1073741823")
    await store.record_turn(pids[0], "answer", "x", 0.9, "ru", NOW)  # usable again

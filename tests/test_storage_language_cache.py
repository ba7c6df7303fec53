"""The in-memory language cache of Storage: reads come from memory, and it always agrees with the
database (set_language, forget_user, a failed write, a read that overlaps a change, its bound)."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from bot import storage as storage_module
from bot.privacy import pseudonym
from bot.storage import Storage, StorageError

KEY = b"test-pseudonym-key"
NOW = dt.datetime(2024, 5, 12, 15, 30, 0, tzinfo=dt.UTC)
ALICE = pseudonym(5_123_456_789, KEY)
BOB = pseudonym(6_987_654_321, KEY)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Storage]:
    async with await Storage.open(tmp_path / "komek.sqlite3") as s:
        yield s


def stored_language(store: Storage, pid: str) -> object:
    """What the file says, through a separate plain sqlite3 connection."""
    con = sqlite3.connect(store.path)
    try:
        row = con.execute("SELECT language FROM users WHERE pid = ?", (pid,)).fetchone()
    finally:
        con.close()
    return None if row is None else row[0]


class CountingReads:
    """Counts the SELECTs on users that reach the database."""

    def __init__(self, store: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        read = store._read

        async def counted(sql: str, params: Sequence[Any] = ()) -> list[Any]:
            if "FROM users" in sql:
                self.count += 1
            return await read(sql, params)

        monkeypatch.setattr(store, "_read", counted)


async def test_repeated_reads_come_from_memory(store: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    reads = CountingReads(store, monkeypatch)
    assert await store.get_language(ALICE) is None  # never chose: None is remembered too
    assert await store.get_language(ALICE) is None
    await store.set_language(BOB, "kk", NOW)
    assert await store.get_language(BOB) == "kk"
    assert await store.get_language(BOB) == "kk"
    assert reads.count == 1  # only Alice's first read went to the database


async def test_set_language_and_forget_keep_it_true(store: Storage) -> None:
    assert await store.get_language(ALICE) is None
    await store.set_language(ALICE, "en", NOW)
    assert await store.get_language(ALICE) == "en" == stored_language(store, ALICE)
    await store.set_language(ALICE, "ru", NOW)
    assert await store.get_language(ALICE) == "ru" == stored_language(store, ALICE)
    await store.forget_user(ALICE)
    assert await store.get_language(ALICE) is None
    assert stored_language(store, ALICE) is None


async def test_a_failed_write_leaves_the_old_language(store: Storage) -> None:
    await store.set_language(ALICE, "kk", NOW)
    assert await store.get_language(ALICE) == "kk"
    await store._conn().execute("PRAGMA query_only = ON")
    with pytest.raises(StorageError):
        await store.set_language(ALICE, "en", NOW)
    with pytest.raises(StorageError):
        await store.forget_user(ALICE)
    assert await store.get_language(ALICE) == "kk" == stored_language(store, ALICE)
    await store._conn().execute("PRAGMA query_only = OFF")


async def test_a_read_overlapping_a_change_is_not_remembered(store: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    """A read that started before set_language / forget_user and ends after it may carry the old
    value: it is returned (as before the cache) but not kept."""
    read = store._read
    gate = asyncio.Event()

    async def slow(sql: str, params: Sequence[Any] = ()) -> list[Any]:
        rows = await read(sql, params)
        await gate.wait()  # the change happens while this read is under way
        return rows

    for change in ("set", "forget"):
        await store.set_language(ALICE, "kk", NOW)
        store._languages.clear()
        monkeypatch.setattr(store, "_read", slow)
        gate.clear()
        pending = asyncio.create_task(store.get_language(ALICE))
        await asyncio.sleep(0.05)
        monkeypatch.setattr(store, "_read", read)
        if change == "set":
            await store.set_language(ALICE, "en", NOW)
        else:
            await store.forget_user(ALICE)
        gate.set()
        assert await pending == "kk"  # read before the change
        want = "en" if change == "set" else None
        assert await store.get_language(ALICE) == want == stored_language(store, ALICE), change


async def test_the_cache_is_bounded(store: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(storage_module, "LANGUAGE_CACHE_SIZE", 3)
    pids = [pseudonym(i, KEY) for i in range(10)]
    for pid in pids:
        await store.set_language(pid, "ru", NOW)
    assert len(store._languages) == 3
    reads = CountingReads(store, monkeypatch)
    assert [await store.get_language(pid) for pid in pids[-3:]] == ["ru"] * 3  # the most recent ones: memory
    assert reads.count == 0
    assert await store.get_language(pids[0]) == "ru"  # a forgotten one comes from the file
    assert reads.count == 1
    assert len(store._languages) == 3

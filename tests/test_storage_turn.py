"""Storage.record_turn: a message's writes (the user seen, its event, the unanswered question) as one
transaction, and Storage's transactions in one trip to the database thread."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

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

"""bot.storage on real SQLite files in tmp_path: schema, every method, concurrency, failure, privacy.

The stdlib sqlite3 module is used only to look at the file from outside, as an auditor would.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import sqlite3
import stat
import struct
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path

import pytest

from bot import storage as storage_module
from bot.privacy import pseudonym, scrub
from bot.storage import MIGRATIONS, Storage, StorageError

KEY = b"test-pseudonym-key"
NOW = dt.datetime(2024, 5, 12, 15, 30, 0, tzinfo=dt.timezone(dt.timedelta(hours=5)))  # Almaty
ALICE = pseudonym(5_123_456_789, KEY)
BOB = pseudonym(6_987_654_321, KEY)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "nested" / "komek.sqlite3"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[Storage]:
    async with await Storage.open(db_path) as s:
        yield s


def rows(path: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Read the file with a separate, plain sqlite3 connection."""
    con = sqlite3.connect(path)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def file_bytes(path: Path) -> bytes:
    """The database and its WAL / shared-memory side files, as they lie on disk."""
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists())


# ---------------------------------------------------------------- opening and migrations


async def test_open_creates_folders_and_applies_migrations(db_path: Path) -> None:
    assert not db_path.parent.exists()
    async with await Storage.open(db_path) as s:
        assert await s.schema_version() == len(MIGRATIONS)
        assert await s.journal_mode() == "wal"
        assert await s.count_events() == 0
    tables = {r[0] for r in rows(db_path, "SELECT name FROM sqlite_schema WHERE type = 'table'")}
    assert tables == {"users", "events", "unanswered", "feedback", "handoffs", "teaching", "inbox", "outbox"}
    assert rows(db_path, "PRAGMA journal_mode") == [("wal",)]  # WAL is a property of the file
    columns = {r[1] for r in rows(db_path, "PRAGMA table_info(users)")}
    assert columns == {"pid", "language", "first_seen", "last_seen", "blocked", "subscribed", "chat_seal"}


async def test_reopen_is_idempotent_and_keeps_data(db_path: Path) -> None:
    async with await Storage.open(db_path) as s:
        await s.set_language(ALICE, "kk", NOW)
    for _ in range(3):
        async with await Storage.open(db_path) as s:
            assert await s.schema_version() == len(MIGRATIONS)
            assert await s.get_language(ALICE) == "kk"


async def test_new_migration_applies_once_on_reopen(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with await Storage.open(db_path) as s:
        await s.touch_user(ALICE, NOW)
    monkeypatch.setattr(storage_module, "MIGRATIONS", [*MIGRATIONS, "CREATE TABLE later (x INTEGER);"])
    for _ in range(2):
        async with await Storage.open(db_path) as s:
            assert await s.schema_version() == len(MIGRATIONS) + 1
    assert rows(db_path, "SELECT count(*) FROM users") == [(1,)]


async def test_broken_migration_changes_nothing(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with await Storage.open(db_path) as s:
        await s.touch_user(ALICE, NOW)
    broken = "CREATE TABLE half (x INTEGER); THIS IS NOT SQL;"
    monkeypatch.setattr(storage_module, "MIGRATIONS", [*MIGRATIONS, broken])
    with pytest.raises(StorageError):
        await Storage.open(db_path)
    assert rows(db_path, "PRAGMA user_version") == [(len(MIGRATIONS),)]
    assert rows(db_path, "SELECT name FROM sqlite_schema WHERE name = 'half'") == []


async def test_newer_schema_is_refused(db_path: Path) -> None:
    async with await Storage.open(db_path):
        pass
    con = sqlite3.connect(db_path)
    con.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    con.close()
    with pytest.raises(StorageError, match="newer"):
        await Storage.open(db_path)


async def test_not_a_database_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"this is not a database file at all" * 200)
    with pytest.raises(StorageError):
        await Storage.open(path)


async def test_closed_storage_raises_storage_error(db_path: Path) -> None:
    s = await Storage.open(db_path)
    await s.close()
    await s.close()  # twice is fine
    with pytest.raises(StorageError):
        await s.count_events()
    with pytest.raises(StorageError):
        await s.touch_user(ALICE, NOW)


# ---------------------------------------------------------------- methods


async def test_users_language_and_blocking(store: Storage, db_path: Path) -> None:
    assert await store.get_language(ALICE) is None
    await store.touch_user(ALICE, NOW)
    assert await store.get_language(ALICE) is None
    later = NOW + dt.timedelta(hours=1)
    await store.set_language(ALICE, "en", later)
    await store.set_language(BOB, "ru", NOW)  # no touch first: the row is created
    assert await store.get_language(ALICE) == "en"
    assert await store.get_language(BOB) == "ru"
    await store.mark_blocked(ALICE)
    got = rows(db_path, "SELECT first_seen, last_seen, blocked, subscribed FROM users WHERE pid = ?", (ALICE,))
    assert got == [("2024-05-12T10:30:00+00:00", "2024-05-12T11:30:00+00:00", 1, 0)]
    await store.touch_user(ALICE, later)  # writing to us again means they unblocked the bot
    assert rows(db_path, "SELECT blocked FROM users WHERE pid = ?", (ALICE,)) == [(0,)]
    await store.mark_blocked(ALICE, blocked=True)
    await store.mark_blocked(ALICE, blocked=False)
    assert rows(db_path, "SELECT blocked FROM users WHERE pid = ?", (ALICE,)) == [(0,)]


async def test_record_event(store: Storage, db_path: Path) -> None:
    await store.record_event(ALICE, "answer", "visa_extend", 0.87, "ru", NOW)
    await store.record_event(ALICE, "fallback", None, 0.0, "kk", NOW)
    assert await store.count_events() == 2
    got = rows(db_path, "SELECT ts, pid, kind, entry_id, score, lang FROM events ORDER BY id")
    assert got == [
        ("2024-05-12T10:30:00+00:00", ALICE, "answer", "visa_extend", 0.87, "ru"),
        ("2024-05-12T10:30:00+00:00", ALICE, "fallback", None, 0.0, "kk"),
    ]


async def test_record_unanswered_scrubs_again_and_keeps_candidates(store: Storage, db_path: Path) -> None:
    raw = "как продлить визу? звоните 87011234567 или пишите @aigerim_k"
    await store.record_unanswered(ALICE, "ru", "suggest", raw, [("visa_extend", 0.512345), ("visa_new", 0.4)], NOW)
    await store.record_unanswered(ALICE, "ru", "fallback", scrub(raw), [], NOW)
    got = rows(db_path, "SELECT ts, pid, lang, kind, text, candidates FROM unanswered ORDER BY id")
    clean = "как продлить визу? звоните [phone] или пишите [user]"
    assert got[0][:5] == ("2024-05-12T10:30:00+00:00", ALICE, "ru", "suggest", clean)
    assert json.loads(str(got[0][5])) == [["visa_extend", 0.5123], ["visa_new", 0.4]]
    assert got[1][4] == clean and json.loads(str(got[1][5])) == []


async def test_record_feedback(store: Storage, db_path: Path) -> None:
    await store.record_feedback(ALICE, "visa_extend", True, NOW)
    await store.record_feedback(BOB, "visa_extend", False, NOW)
    got = rows(db_path, "SELECT pid, entry_id, helpful FROM feedback ORDER BY id")
    assert got == [(ALICE, "visa_extend", 1), (BOB, "visa_extend", 0)]


async def test_naive_datetimes_and_raw_ids_are_refused(store: Storage) -> None:
    with pytest.raises(ValueError, match="aware"):
        await store.touch_user(ALICE, dt.datetime(2024, 5, 12, 10, 0))
    with pytest.raises(ValueError, match="pseudonym"):
        await store.touch_user("5123456789", NOW)
    with pytest.raises(ValueError, match="pseudonym"):
        await store.record_event("@aigerim_k", "answer", None, None, "ru", NOW)
    assert await store.count_events() == 0


async def fill(store: Storage, pid: str, n: int, now: dt.datetime = NOW) -> None:
    """A bit of everything for one user."""
    await store.touch_user(pid, now)
    await store.set_language(pid, "ru", now)
    for i in range(n):
        await store.record_event(pid, "answer", f"entry_{i}", 0.9, "ru", now)
        await store.record_unanswered(pid, "ru", "fallback", f"question {i} of {pid[:6]}", [("a", 0.3)], now)
        await store.record_feedback(pid, f"entry_{i}", i % 2 == 0, now)


async def test_forget_removes_everything_of_one_user_and_nothing_of_another(store: Storage, db_path: Path) -> None:
    await fill(store, ALICE, 3)
    await fill(store, BOB, 2)
    counts = await store.forget_user(ALICE)
    assert counts == {"users": 1, "events": 3, "unanswered": 3, "feedback": 3, "handoffs": 0, "outbox": 0}
    for table in ("users", "events", "unanswered", "feedback"):
        assert rows(db_path, f"SELECT count(*) FROM {table} WHERE pid = ?", (ALICE,)) == [(0,)]
    assert rows(db_path, "SELECT count(*) FROM users WHERE pid = ?", (BOB,)) == [(1,)]
    assert rows(db_path, "SELECT count(*) FROM events WHERE pid = ?", (BOB,)) == [(2,)]
    assert rows(db_path, "SELECT count(*) FROM unanswered WHERE pid = ?", (BOB,)) == [(2,)]
    assert rows(db_path, "SELECT count(*) FROM feedback WHERE pid = ?", (BOB,)) == [(2,)]
    assert await store.get_language(BOB) == "ru"
    # Not only the rows: the bytes are gone from the file and its WAL (secure_delete, checkpoint).
    on_disk = file_bytes(db_path)
    assert ALICE.encode() not in on_disk
    assert f"of {ALICE[:6]}".encode() not in on_disk
    assert BOB.encode() in on_disk
    nothing = {"users": 0, "events": 0, "unanswered": 0, "feedback": 0, "handoffs": 0, "outbox": 0}
    assert await store.forget_user(ALICE) == nothing


async def test_purge_by_age(store: Storage, db_path: Path) -> None:
    await fill(store, ALICE, 2, NOW - dt.timedelta(days=100))
    await fill(store, BOB, 3, NOW - dt.timedelta(days=10))
    counts = await store.purge_older_than(90, NOW)
    assert counts == {"events": 2, "unanswered": 2, "feedback": 2, "handoffs": 0, "outbox": 0, "inbox": 0}
    assert await store.count_events() == 3
    assert rows(db_path, "SELECT count(*) FROM unanswered") == [(3,)]
    assert rows(db_path, "SELECT DISTINCT pid FROM events") == [(BOB,)]
    assert await store.get_language(ALICE) == "ru"  # the language choice is kept: it is not usage
    nothing = {"events": 0, "unanswered": 0, "feedback": 0, "handoffs": 0, "outbox": 0, "inbox": 0}
    assert await store.purge_older_than(90, NOW) == nothing
    assert (await store.purge_older_than(5, NOW))["events"] == 3


async def test_integrity_ok_on_a_good_file(store: Storage) -> None:
    await fill(store, ALICE, 5)
    assert await store.integrity_ok()


def damage(path: Path, page: int = 4096) -> None:
    """Overwrite part of every page but the first (the header and schema stay readable)."""
    size = path.stat().st_size
    assert size >= 4 * page
    with path.open("r+b") as f:
        for n in range(1, size // page):
            f.seek(n * page + 100)
            f.write(b"\xff" * 200)


async def test_integrity_not_ok_on_a_damaged_file(db_path: Path) -> None:
    async with await Storage.open(db_path) as s:
        for i in range(300):
            await s.record_event(pseudonym(i, KEY), "answer", "visa_extend", 0.9, "ru", NOW)
    damage(db_path)
    async with await Storage.open(db_path) as s:
        assert not await s.integrity_ok()


# ---------------------------------------------------------------- concurrency


async def test_200_concurrent_writers_all_land(store: Storage, capsys: pytest.CaptureFixture[str]) -> None:
    pids = [pseudonym(i, KEY) for i in range(200)]
    start = time.perf_counter()
    await asyncio.gather(*(store.record_event(pid, "answer", "visa_extend", 0.9, "ru", NOW) for pid in pids))
    elapsed = time.perf_counter() - start
    assert await store.count_events() == 200
    with capsys.disabled():
        print(
            f"\n[storage] 200 concurrent record_event calls: {elapsed * 1000:.1f} ms "
            f"({elapsed * 1000 / 200:.2f} ms each, commit per write)"
        )


async def test_concurrent_mixed_writes_and_forget(store: Storage, db_path: Path) -> None:
    """A forget (one transaction) in the middle of other users' writes neither loses nor takes theirs."""
    await fill(store, ALICE, 5)
    others = [pseudonym(1000 + i, KEY) for i in range(50)]
    jobs: list[Awaitable[object]] = [store.record_event(pid, "answer", None, 0.5, "en", NOW) for pid in others]
    jobs += [store.record_feedback(pid, "x", True, NOW) for pid in others]
    jobs.insert(40, store.forget_user(ALICE))
    results = await asyncio.gather(*jobs)
    assert {"users": 1, "events": 5, "unanswered": 5, "feedback": 5, "handoffs": 0, "outbox": 0} in results
    assert await store.count_events() == 50
    assert rows(db_path, "SELECT count(*) FROM feedback") == [(50,)]
    assert rows(db_path, "SELECT count(*) FROM events WHERE pid = ?", (ALICE,)) == [(0,)]


# ---------------------------------------------------------------- failure


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make the file really read-only: mode 0444, and for root (who ignores modes) immutable."""
    mode = path.stat().st_mode
    path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    immutable = False
    try:
        if os.geteuid() == 0:
            done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
            if done.returncode != 0:
                pytest.skip("running as root without chattr: cannot make a read-only file")
            immutable = True
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        path.chmod(mode)


async def test_read_only_file_fails_writes_with_storage_error_but_reads_work(db_path: Path) -> None:
    async with await Storage.open(db_path) as s:
        await s.set_language(ALICE, "kk", NOW)
        await s.record_event(ALICE, "answer", "visa_extend", 0.9, "kk", NOW)
    with read_only(db_path):
        async with await Storage.open(db_path) as s:
            assert await s.get_language(ALICE) == "kk"
            assert await s.count_events() == 1
            with pytest.raises(StorageError, match="readonly"):
                await s.record_event(ALICE, "answer", "visa_extend", 0.9, "kk", NOW)
            with pytest.raises(StorageError):
                await s.forget_user(ALICE)
            with pytest.raises(StorageError):
                await s.touch_user(BOB, NOW)
            # after failures the connection is still usable for reading
            assert await s.get_language(ALICE) == "kk"
            assert await s.count_events() == 1
            assert await s.integrity_ok()


# ---------------------------------------------------------------- privacy of the file


async def test_no_raw_id_username_or_phone_on_disk_after_a_session(db_path: Path) -> None:
    """What a seized or leaked database file could reveal: pseudonyms and scrubbed text only."""
    telegram_id, username, phone = 5_123_456_789, "Aigerim_K", "+7 701 123 45 67"
    messages = [
        f"Здравствуйте, я @{username}, мой номер {phone}",
        f"мой id {telegram_id}, паспорт N12345678, ИИН 900101300123",
        "как продлить визу если паспорт истёк?",
        f"напишите на aigerim.k@mail.ru или t.me/{username}",
    ]
    pid = pseudonym(telegram_id, KEY)
    async with await Storage.open(db_path) as s:
        await s.touch_user(pid, NOW)
        await s.set_language(pid, "ru", NOW)
        for i, text in enumerate(messages):
            t = NOW + dt.timedelta(minutes=i)
            await s.record_event(pid, "fallback", None, 0.1, "ru", t)
            # the first two as the handlers do it (scrubbed), the rest as a careless caller would
            await s.record_unanswered(pid, "ru", "fallback", scrub(text) if i < 2 else text, [("visa", 0.3)], t)
            await s.record_feedback(pid, "visa_extend", True, t)
        open_bytes = file_bytes(db_path)
    closed_bytes = file_bytes(db_path)
    texts = [str(r[0]) for r in rows(db_path, "SELECT text FROM unanswered")]
    assert any("[phone]" in t for t in texts) and any("[user]" in t for t in texts)
    for blob in (open_bytes, closed_bytes):
        lowered = blob.lower()
        assert str(telegram_id).encode() not in blob
        assert struct.pack(">q", telegram_id) not in blob and struct.pack(">q", telegram_id)[2:] not in blob
        assert username.lower().encode() not in lowered
        for needle in ("7011234567", "701 123 45 67", "123 45 67", "900101300123", "12345678", "aigerim.k@"):
            assert needle.encode() not in blob, needle

"""The pieces under the durable inbox and outbox, on real SQLite files: sealing (bot/vault.py), the
storage methods they use, hand-offs matched by chat and message id, the retry policy, and the
"ask a person" consent's lifetime. The end-to-end behaviour is in test_delivery.py."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.app import EnvError, read_env
from bot.handlers import CONSENT_SECONDS, Consents
from bot.outbox import MAX_AGE, MAX_BACKOFF, permanent, plain, retry_wait
from bot.privacy import pseudonym
from bot.storage import MIGRATIONS, Storage
from bot.vault import open_sealed, seal_bytes

KEY = b"durable-test-key-0123456789"
NOW = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
ALICE = pseudonym(5_100_000_001, KEY)
BOB = pseudonym(5_100_000_002, KEY)


# ---------------------------------------------------------------- sealing


@given(st.binary(max_size=5000))
def test_a_seal_opens_with_its_secret_only(data: bytes) -> None:
    sealed = seal_bytes(data, KEY)
    assert open_sealed(sealed, KEY) == data
    assert open_sealed(sealed, b"another-secret-0123456789") is None
    assert len(sealed) == len(data) + 32
    if data:
        assert data not in sealed or len(data) < 4  # a short run may appear by chance
        tampered = bytearray(sealed)
        tampered[16] ^= 1
        assert open_sealed(bytes(tampered), KEY) is None


def test_two_seals_of_the_same_bytes_differ() -> None:
    assert seal_bytes(b'{"text": "hello"}', KEY) != seal_bytes(b'{"text": "hello"}', KEY)
    assert open_sealed(b"short", KEY) is None


# ---------------------------------------------------------------- storage


async def test_inbox_rows_live_until_handled_and_confirmed(tmp_path: Path) -> None:
    db = tmp_path / "komek.sqlite3"
    async with await Storage.open(db) as s:
        assert await s.inbox_add([(10, b"a"), (11, b"b")], NOW)
        assert await s.inbox_add([(11, b"again"), (12, b"c")], NOW)  # a re-sent update is kept as first stored
        assert await s.inbox_rows() == [(10, b"a"), (11, b"b"), (12, b"c")]
        assert await s.inbox_done(10) and await s.inbox_done(12)
        assert await s.inbox_rows() == [(10, None), (11, b"b"), (12, None)]
        assert await s.inbox_forget_handled(below_update_id=12) == 1  # 12 may still come again
        assert await s.inbox_rows() == [(11, b"b"), (12, None)]
        assert await s.inbox_forget_handled(before=NOW + dt.timedelta(seconds=1)) == 1
        assert await s.inbox_rows() == [(11, b"b")]  # never one not handled yet
        with pytest.raises(ValueError):
            await s.inbox_forget_handled()


async def test_outbox_rows_and_forget(tmp_path: Path) -> None:
    db = tmp_path / "komek.sqlite3"
    async with await Storage.open(db) as s:
        first = await s.outbox_add(ALICE, b"sealed-1", NOW)
        second = await s.outbox_add(None, b"sealed-2", NOW)
        await s.outbox_add(BOB, b"sealed-3", NOW)
        assert [r[0] for r in await s.outbox_rows()] == [first, second, first + 2]
        assert await s.outbox_done(second)
        counts = await s.forget_user(ALICE)
        assert counts["outbox"] == 1
        assert [r[2] for r in await s.outbox_rows()] == [b"sealed-3"]
        with pytest.raises(ValueError):
            await s.outbox_add("123456789", b"x", NOW)  # a raw id is never stored


async def test_a_handoff_is_found_by_chat_and_message_id(tmp_path: Path) -> None:
    """Message ids restart in a new chat (a group upgraded to a supergroup): the same id in another
    chat is another message, and must not find this hand-off."""
    db = tmp_path / "komek.sqlite3"
    async with await Storage.open(db) as s:
        assert await s.record_handoff(ALICE, "seal-a", -100, 7, "ru", NOW)
        assert await s.record_handoff(BOB, "seal-b", -200, 7, "en", NOW)
        assert await s.handoff_for(-100, 7) == (ALICE, "seal-a", "ru")
        assert await s.handoff_for(-200, 7) == (BOB, "seal-b", "en")
        assert await s.handoff_for(-300, 7) is None
        assert sorted(await s.operator_chats()) == [-200, -100]


async def test_hand_offs_from_before_the_chat_was_stored_are_never_matched(tmp_path: Path) -> None:
    """A database of schema 2 (hand-offs by message id only) is migrated; its hand-offs have no chat,
    so a reply to one is answered "not delivered" instead of reaching whoever had that id."""
    db = tmp_path / "komek.sqlite3"
    with sqlite3.connect(db) as conn:
        for number, script in enumerate(MIGRATIONS[:2], start=1):
            conn.executescript(f"{script}\nPRAGMA user_version = {number};")
        conn.execute(
            "INSERT INTO handoffs (ts, pid, chat_seal, operator_message_id, lang) VALUES (?, ?, ?, ?, ?)",
            ("2026-11-01T00:00:00+00:00", ALICE, "seal-a", 7, "ru"),
        )
    conn.close()
    async with await Storage.open(db) as s:
        assert await s.schema_version() == len(MIGRATIONS)
        assert await s.handoff_for(-100, 7) is None
        assert await s.operator_chats() == []


async def test_unsubscribed_when_blocked(tmp_path: Path) -> None:
    async with await Storage.open(tmp_path / "komek.sqlite3") as s:
        await s.set_subscription(ALICE, True, "seal-a", NOW)
        assert [r[0] for r in await s.subscribers()] == [ALICE]
        await s.set_unsubscribed(ALICE)
        assert await s.subscribers() == []
        await s.touch_user(ALICE, NOW)  # writes again: not blocked, but not subscribed again either
        assert await s.subscribers() == []
    with sqlite3.connect(tmp_path / "komek.sqlite3") as conn:
        assert conn.execute("SELECT subscribed, chat_seal FROM users").fetchall() == [(0, None)]
    conn.close()


# ---------------------------------------------------------------- retry policy


def test_a_429_waits_exactly_what_telegram_says_however_long() -> None:
    """Before, waits were capped at 30 s: a "retry after 40" was tried again after 30, refused
    again, and the chat went without an answer for longer. Now the wait is what Telegram says."""
    assert retry_wait(RetryAfter(40), 1) == 40.0
    assert retry_wait(RetryAfter(dt.timedelta(seconds=95)), 3) == 95.0
    assert [retry_wait(NetworkError("x"), n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert retry_wait(TimedOut(), 50) == MAX_BACKOFF
    assert retry_wait(NetworkError("x"), 50, max_backoff=0.5) == 0.5


def test_what_is_refused_for_good() -> None:
    assert permanent(BadRequest("Bad Request: chat not found"))
    assert permanent(Forbidden("Forbidden: bot was blocked by the user"))
    assert permanent(ChatMigrated(-1001))
    assert not permanent(RetryAfter(3)) and not permanent(TimedOut()) and not permanent(NetworkError("502"))


def test_plain_text_keeps_the_words() -> None:
    assert plain("<b>Bold</b> &amp; <a href='x'>link</a> 1 &lt; 2") == "Bold & link 1 < 2"


# ---------------------------------------------------------------- consent


def test_consent_covers_one_message_in_that_chat_within_the_time() -> None:
    consents = Consents()
    consents.give(ALICE, 1, now=100.0)
    assert not consents.take(ALICE, 2, now=101.0)  # another chat: no (and it is used up)
    consents.give(ALICE, 1, now=100.0)
    assert consents.take(ALICE, 1, now=100.0 + CONSENT_SECONDS - 1)
    assert not consents.take(ALICE, 1, now=100.0 + CONSENT_SECONDS - 1)  # the next message only
    consents.give(ALICE, 1, now=100.0)
    assert not consents.take(ALICE, 1, now=100.0 + CONSENT_SECONDS + 1)  # expired
    consents.give(BOB, 1, now=100.0)
    consents.withdraw(BOB)
    assert not consents.take(BOB, 1, now=100.5)


def test_consents_do_not_accumulate() -> None:
    consents = Consents(seconds=10)
    for i in range(1000):
        consents.give(pseudonym(i, KEY), i, now=float(i))
    assert len(consents) <= 11  # only those of the last 10 s


# ---------------------------------------------------------------- settings


def test_outbox_settings_come_from_the_environment(tmp_path: Path) -> None:
    base = {"TELEGRAM_BOT_TOKEN": "1:abc", "KOMEK_SECRET": "s" * 16}
    env = read_env(base, "komek.sqlite3", tmp_path)
    assert (env.outbox_max_age, env.outbox_max_backoff) == (MAX_AGE, MAX_BACKOFF) == (86400.0, 30.0)
    env = read_env({**base, "KOMEK_OUTBOX_MAX_AGE": "2", "KOMEK_OUTBOX_MAX_BACKOFF": "0.5"}, "k.db", tmp_path)
    assert (env.outbox_max_age, env.outbox_max_backoff) == (2.0, 0.5)
    for bad in ("soon", "0", "-5", "nan"):
        with pytest.raises(EnvError, match="KOMEK_OUTBOX_MAX_AGE"):
            read_env({**base, "KOMEK_OUTBOX_MAX_AGE": bad}, "k.db", tmp_path)

"""The bot's only database: pseudonymous usage events, scrubbed unanswered questions, feedback.

The only module that imports aiosqlite. No Telegram id, username or message text is ever stored:
users are keyed by `privacy.pseudonym`, and the one kind of text kept (questions the bot could not
answer, for improving the FAQ) is scrubbed by the caller and again here. Deleted rows are
overwritten (`secure_delete`) and the WAL is truncated after a forget or purge, so "forget me"
also holds for the bytes on disk.

Concurrency: one aiosqlite connection in autocommit mode; every write holds one asyncio.Lock and
commits before it returns (a multi-statement write is one BEGIN IMMEDIATE … COMMIT under the same
lock, run in one trip to the database thread), so a coroutine never commits or rolls back another
one's half-done work. With WAL and synchronous=NORMAL a commit does not fsync. A message's own
writes (record_turn) are group-committed: those that queue up while a commit runs share the next
one, each in its own SAVEPOINT so that one writer's failure rolls back only its rows, and each
writer returns only once its rows are committed, so nothing is acknowledged early and a crash loses
nothing that was acknowledged. Measured (development machine, CPU per turn): alone 0.23 ms either
way; 10 at once 0.19 -> 0.07 ms; 50 at once 0.21 -> 0.05 ms. Alone, a write waits for nobody.
Reads take no lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import json
import re
import sqlite3
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import aiosqlite

from bot.privacy import scrub

# Each script moves the schema one version up (PRAGMA user_version); never edit a released one,
# append a new one. Applied in order at open, each in its own transaction.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE users (
        pid        TEXT PRIMARY KEY,
        language   TEXT,
        first_seen TEXT NOT NULL,
        last_seen  TEXT NOT NULL,
        blocked    INTEGER NOT NULL DEFAULT 0,
        subscribed INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE events (
        id       INTEGER PRIMARY KEY,
        ts       TEXT NOT NULL,
        pid      TEXT NOT NULL,
        kind     TEXT NOT NULL,
        entry_id TEXT,
        score    REAL,
        lang     TEXT
    );
    CREATE INDEX events_ts ON events (ts);
    CREATE INDEX events_pid ON events (pid);
    CREATE TABLE unanswered (
        id         INTEGER PRIMARY KEY,
        ts         TEXT NOT NULL,
        pid        TEXT NOT NULL,
        lang       TEXT,
        kind       TEXT NOT NULL,
        text       TEXT NOT NULL,
        candidates TEXT NOT NULL DEFAULT '[]'
    );
    CREATE INDEX unanswered_ts ON unanswered (ts);
    CREATE INDEX unanswered_pid ON unanswered (pid);
    CREATE TABLE feedback (
        id       INTEGER PRIMARY KEY,
        ts       TEXT NOT NULL,
        pid      TEXT NOT NULL,
        entry_id TEXT NOT NULL,
        helpful  INTEGER NOT NULL
    );
    CREATE INDEX feedback_ts ON feedback (ts);
    CREATE INDEX feedback_pid ON feedback (pid);
    """,
    # 2: opt-in features need a way back to the user's chat. The chat id is never stored raw: it is
    # sealed (encrypted with KOMEK_SECRET, see privacy.seal) and only for users who opted in.
    """
    ALTER TABLE users ADD COLUMN chat_seal TEXT;
    CREATE TABLE handoffs (
        id                  INTEGER PRIMARY KEY,
        ts                  TEXT NOT NULL,
        pid                 TEXT NOT NULL,
        chat_seal           TEXT NOT NULL,
        operator_message_id INTEGER NOT NULL,
        lang                TEXT
    );
    CREATE INDEX handoffs_message ON handoffs (operator_message_id);
    CREATE INDEX handoffs_pid ON handoffs (pid);
    """,
    # 3: what staff decided about an unanswered question (/unanswered, `python -m bot teach`): taught
    # to an entry, kept as a new topic for the next content review, or ignored. No text and no user:
    # the question stays in `unanswered` (and goes with its retention and with a /forget).
    """
    CREATE TABLE teaching (
        id            INTEGER PRIMARY KEY,
        ts            TEXT NOT NULL,
        unanswered_id INTEGER NOT NULL,
        action        TEXT NOT NULL,
        entry_id      TEXT,
        lang          TEXT,
        by            TEXT NOT NULL
    );
    CREATE INDEX teaching_unanswered ON teaching (unanswered_id);
    CREATE INDEX teaching_ts ON teaching (ts);
    """,
    # The crisis category of an urgent reply (suicide, medical...: bot/data/crisis.yaml), for counts in
    # /stats and the report. A category, never the message.
    """
    ALTER TABLE events ADD COLUMN crisis TEXT;
    """,
    # 5: nothing lost while Telegram is unreachable. `inbox`: every update as received, sealed
    # (bot/vault.py), kept before Telegram is told to forget it and until it was handled (payload
    # NULL = handled, kept only until Telegram can no longer send it again). `outbox`: messages that
    # Telegram did not accept yet, sealed (chat id inside), retried until delivered. A hand-off is
    # found by the operators' chat *and* the message id (message ids restart in a new chat, e.g. a
    # group upgraded to a supergroup); older rows have no chat and are never matched.
    """
    CREATE TABLE inbox (
        update_id INTEGER PRIMARY KEY,
        ts        TEXT NOT NULL,
        payload   BLOB
    );
    CREATE TABLE outbox (
        id      INTEGER PRIMARY KEY,
        ts      TEXT NOT NULL,
        pid     TEXT,
        payload BLOB NOT NULL
    );
    CREATE INDEX outbox_pid ON outbox (pid);
    ALTER TABLE handoffs ADD COLUMN operator_chat INTEGER;
    CREATE INDEX handoffs_chat_message ON handoffs (operator_chat, operator_message_id);
    """,
]
TEACHING_ACTIONS = ("taught", "new_topic", "ignored")

_PID_RE = re.compile(r"^[0-9a-f]{32}$")
LANGUAGE_CACHE_SIZE = 50_000  # users whose language choice is kept in memory (about 10 MB at most)
_USER_TABLES = ("users", "events", "unanswered", "feedback", "handoffs", "outbox")
_AGED_TABLES = ("events", "unanswered", "feedback", "handoffs", "outbox", "inbox")


_TOUCH_SQL = (
    "INSERT INTO users (pid, first_seen, last_seen) VALUES (?, ?, ?) "
    "ON CONFLICT (pid) DO UPDATE SET last_seen = excluded.last_seen, blocked = 0"
)
_EVENT_SQL = "INSERT INTO events (ts, pid, kind, entry_id, score, lang, crisis) VALUES (?, ?, ?, ?, ?, ?, ?)"
_UNANSWERED_SQL = "INSERT INTO unanswered (ts, pid, lang, kind, text, candidates) VALUES (?, ?, ?, ?, ?, ?)"


def _unanswered_row(
    pid: str, lang: str | None, kind: str, text: str, candidates: Iterable[Sequence[Any]], ts: str
) -> tuple[Any, ...]:
    top = [[str(c[0]), round(float(c[1]), 4)] for c in candidates]
    return (ts, pid, lang, kind, scrub(text), json.dumps(top, ensure_ascii=False))


class StorageError(Exception):
    """The database could not be read or written (read-only file, disk full, corrupt, closed)."""


def _iso(now: dt.datetime) -> str:
    """Aware datetime → ISO 8601 in UTC, one fixed shape so text order is time order."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("storage needs timezone-aware datetimes")
    return now.astimezone(dt.UTC).isoformat(timespec="seconds")


def _pid(pid: str) -> str:
    """Refuse anything that is not a pseudonym, so a raw Telegram id can never slip in."""
    if not _PID_RE.match(pid):
        raise ValueError("pid must be a pseudonym (32 lowercase hex characters)")
    return pid


class Storage:
    """Intent-named reads and writes over one SQLite file; errors surface as StorageError."""

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        """Use `await Storage.open(path)`; this only wraps an already prepared connection."""
        self._db: aiosqlite.Connection | None = db
        self._lock = asyncio.Lock()
        self.path = path
        # pid -> chosen language (None: none chosen), the most recently used last. Every message
        # needs it and only set_language / forget_user change it, so reads come from here; the
        # database stays the truth (a miss reads it, a failed write leaves the entry as it was).
        self._languages: OrderedDict[str, str | None] = OrderedDict()
        self._language_writes = 0  # bumped by every language change: a read that overlapped one is not cached
        self._queued: list[tuple[list[tuple[str, Sequence[Any]]], asyncio.Future[None]]] = []  # see _group_commit
        self._flusher: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ life cycle

    @classmethod
    async def open(cls, path: str | Path) -> Storage:
        """Open (creating folders and file), set WAL and friends, apply pending migrations."""
        path = Path(path)
        try:
            await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
            db = await aiosqlite.connect(path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"cannot open database {path}: {exc}") from exc
        try:
            for pragma in (
                "PRAGMA busy_timeout = 5000",
                "PRAGMA foreign_keys = ON",
                "PRAGMA secure_delete = ON",
                "PRAGMA journal_mode = WAL",
                "PRAGMA synchronous = NORMAL",
            ):
                await db.execute_fetchall(pragma)  # run and closed: an open cursor would block COMMIT
            await _migrate(db)
        except BaseException as exc:
            await db.close()
            if isinstance(exc, sqlite3.Error):
                raise StorageError(f"cannot prepare database {path}: {exc}") from exc
            raise
        return cls(db, path)

    async def close(self) -> None:
        """Wait for writes in flight, then close; closing twice is fine."""
        if self._flusher is not None:
            with contextlib.suppress(BaseException):
                await self._flusher
        async with self._lock:
            if self._db is not None:
                db, self._db = self._db, None
                await db.close()

    async def __aenter__(self) -> Storage:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # ------------------------------------------------------------------ users

    async def touch_user(self, pid: str, now: dt.datetime) -> None:
        """Note that the user was here; a message from them also means they are not blocking us."""
        ts = _iso(now)
        await self._write(_TOUCH_SQL, (_pid(pid), ts, ts))

    async def get_language(self, pid: str) -> str | None:
        """The language the user chose, or None when they never chose one."""
        pid = _pid(pid)
        try:
            lang = self._languages[pid]
        except KeyError:
            pass
        else:
            self._languages.move_to_end(pid)
            return lang
        writes = self._language_writes
        rows = await self._read("SELECT language FROM users WHERE pid = ?", (pid,))
        lang = str(rows[0][0]) if rows and rows[0][0] is not None else None
        if writes == self._language_writes:  # no language changed meanwhile: this is still true
            self._remember_language(pid, lang)
        return lang

    async def set_language(self, pid: str, lang: str, now: dt.datetime) -> None:
        """Remember the chosen language (creating the user row if needed)."""
        ts = _iso(now)
        pid = _pid(pid)
        self._language_writes += 1
        self._languages.pop(pid, None)  # unknown until the write is done (it may fail)
        await self._write(
            "INSERT INTO users (pid, language, first_seen, last_seen) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (pid) DO UPDATE SET language = excluded.language, last_seen = excluded.last_seen",
            (pid, lang, ts, ts),
        )
        self._language_writes += 1
        self._remember_language(pid, lang)

    def _remember_language(self, pid: str, lang: str | None) -> None:
        self._languages[pid] = lang
        self._languages.move_to_end(pid)
        while len(self._languages) > LANGUAGE_CACHE_SIZE:
            self._languages.popitem(last=False)

    async def mark_blocked(self, pid: str, blocked: bool = True) -> None:
        """The user blocked the bot (or deactivated): an opt-out, so nothing is sent to them."""
        await self._write("UPDATE users SET blocked = ? WHERE pid = ?", (int(blocked), _pid(pid)))

    # ------------------------------------------------------------------ usage

    async def record_event(
        self,
        pid: str,
        kind: str,
        entry_id: str | None,
        score: float | None,
        lang: str | None,
        now: dt.datetime,
        crisis: str | None = None,
    ) -> None:
        """One reply given: its kind, the FAQ entry and score, never the question itself."""
        await self._write(_EVENT_SQL, (_iso(now), _pid(pid), kind, entry_id, score, lang, crisis))

    async def record_unanswered(
        self,
        pid: str,
        lang: str | None,
        kind: str,
        text: str,
        candidates: Iterable[Sequence[Any]],
        now: dt.datetime,
    ) -> None:
        """A question the FAQ could not answer well, scrubbed (again, in case the caller forgot)."""
        await self._write(_UNANSWERED_SQL, _unanswered_row(_pid(pid), lang, kind, text, candidates, _iso(now)))

    async def record_turn(
        self,
        pid: str,
        kind: str,
        entry_id: str | None,
        score: float | None,
        lang: str | None,
        now: dt.datetime,
        unanswered: tuple[str, Iterable[Sequence[Any]]] | None = None,
        crisis: str | None = None,
    ) -> None:
        """One message answered: touch_user + record_event (+ record_unanswered with (text,
        candidates) when given), as one transaction: the turn is recorded whole or not at all."""
        pid, ts = _pid(pid), _iso(now)
        statements: list[tuple[str, Sequence[Any]]] = [
            (_TOUCH_SQL, (pid, ts, ts)),
            (_EVENT_SQL, (ts, pid, kind, entry_id, score, lang, crisis)),
        ]
        if unanswered is not None:
            text, candidates = unanswered
            statements.append((_UNANSWERED_SQL, _unanswered_row(pid, lang, kind, text, candidates, ts)))
        await self._group_commit(statements)

    async def record_feedback(self, pid: str, entry_id: str, helpful: bool, now: dt.datetime) -> None:
        """A "helpful / not helpful" press on an answer."""
        await self._write(
            "INSERT INTO feedback (ts, pid, entry_id, helpful) VALUES (?, ?, ?, ?)",
            (_iso(now), _pid(pid), entry_id, int(helpful)),
        )

    # ------------------------------------------------------------------ opt-in: news and a person

    async def set_subscription(self, pid: str, subscribed: bool, chat_seal: str | None, now: dt.datetime) -> None:
        """Announcements are opt-in: the sealed chat reference is kept only while subscribed."""
        pid = _pid(pid)
        await self._transaction(
            [
                (
                    "INSERT INTO users (pid, first_seen, last_seen) VALUES (?, ?, ?) "
                    "ON CONFLICT(pid) DO UPDATE SET last_seen = excluded.last_seen",
                    (pid, _iso(now), _iso(now)),
                ),
                (
                    "UPDATE users SET subscribed = ?, chat_seal = ? WHERE pid = ?",
                    (int(subscribed), chat_seal if subscribed else None, pid),
                ),
            ]
        )

    async def subscribers(self) -> list[tuple[str, str | None, str]]:
        """(pid, language, chat seal) of every subscriber who has not blocked the bot."""
        rows = await self._read(
            "SELECT pid, language, chat_seal FROM users WHERE subscribed = 1 AND blocked = 0 AND chat_seal IS NOT NULL"
        )
        return [(str(r[0]), r[1], str(r[2])) for r in rows]

    async def set_unsubscribed(self, pid: str) -> None:
        """The user blocked the bot (or deactivated): unsubscribed, the sealed chat reference dropped."""
        await self._write(
            "UPDATE users SET subscribed = 0, chat_seal = NULL, blocked = 1 WHERE pid = ?",
            (_pid(pid),),
        )

    async def record_handoff(
        self, pid: str, chat_seal: str, operator_chat: int, operator_message_id: int, lang: str, now: dt.datetime
    ) -> bool:
        """A question forwarded to the operators' chat, so that a reply to it can find its way back.
        True once stored (Services.store gives None when the database refused it)."""
        await self._write(
            "INSERT INTO handoffs (ts, pid, chat_seal, operator_chat, operator_message_id, lang) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (_iso(now), _pid(pid), chat_seal, int(operator_chat), int(operator_message_id), lang),
        )
        return True

    async def handoff_for(self, operator_chat: int, operator_message_id: int) -> tuple[str, str, str | None] | None:
        """(pid, chat seal, language) of the hand-off whose message in that operators' chat this is."""
        rows = await self._read(
            "SELECT pid, chat_seal, lang FROM handoffs WHERE operator_chat = ? AND operator_message_id = ? "
            "ORDER BY id DESC LIMIT 1",
            (int(operator_chat), int(operator_message_id)),
        )
        return (str(rows[0][0]), str(rows[0][1]), rows[0][2]) if rows else None

    async def operator_chats(self) -> list[int]:
        """Every operators' chat that hand-offs were sent to (within the retention)."""
        rows = await self._read("SELECT DISTINCT operator_chat FROM handoffs WHERE operator_chat IS NOT NULL")
        return [int(r[0]) for r in rows]

    # ------------------------------------------------------------------ inbox and outbox (sealed)

    async def inbox_add(self, rows: Sequence[tuple[int, bytes]], now: dt.datetime) -> bool:
        """Updates as received (update id, sealed payload), in one transaction; one already there is
        left as it is (Telegram sent it again). True once committed."""
        ts = _iso(now)
        await self._transaction(
            [("INSERT OR IGNORE INTO inbox (update_id, ts, payload) VALUES (?, ?, ?)", (u, ts, p)) for u, p in rows]
        )
        return True

    async def inbox_done(self, update_id: int) -> bool:
        """The update was handled: its payload is erased; the row stays while Telegram may send it again."""
        await self._group_commit([("UPDATE inbox SET payload = NULL WHERE update_id = ?", (int(update_id),))])
        return True

    async def inbox_forget_handled(self, below_update_id: int | None = None, before: dt.datetime | None = None) -> int:
        """Handled rows Telegram can no longer send again: below the confirmed offset (polling), or
        older than `before` (webhook). How many were deleted."""
        params: tuple[Any, ...]
        if below_update_id is not None:
            where, params = "update_id < ?", (int(below_update_id),)
        elif before is not None:
            where, params = "ts < ?", (_iso(before),)
        else:
            raise ValueError("below_update_id or before is needed")
        [count] = await self._transaction([(f"DELETE FROM inbox WHERE payload IS NULL AND {where}", params)])
        return count

    async def inbox_rows(self) -> list[tuple[int, bytes | None]]:
        """Every row, oldest update first: (update id, sealed payload, or None once handled)."""
        rows = await self._read("SELECT update_id, payload FROM inbox ORDER BY update_id")
        return [(int(r[0]), bytes(r[1]) if r[1] is not None else None) for r in rows]

    async def outbox_add(self, pid: str | None, payload: bytes, now: dt.datetime) -> int:
        """A message Telegram did not accept yet (sealed); its row id."""
        async with self._lock:
            db = self._conn()
            try:
                row = await db.execute_insert(
                    "INSERT INTO outbox (ts, pid, payload) VALUES (?, ?, ?)",
                    (_iso(now), _pid(pid) if pid is not None else None, payload),
                )
            except sqlite3.Error as exc:
                raise StorageError(f"database write failed: {exc}") from exc
        if row is None:
            raise StorageError("database write failed: no row id")
        return int(row[0])

    async def outbox_done(self, row_id: int) -> bool:
        """Delivered, or given up: the row is deleted."""
        await self._group_commit([("DELETE FROM outbox WHERE id = ?", (int(row_id),))])
        return True

    async def outbox_rows(self) -> list[tuple[int, str, bytes]]:
        """(row id, time queued, sealed payload) of every message waiting, oldest first."""
        rows = await self._read("SELECT id, ts, payload FROM outbox ORDER BY id")
        return [(int(r[0]), str(r[1]), bytes(r[2])) for r in rows]

    # ------------------------------------------------------------------ staff views

    async def stats(self, since: dt.datetime) -> dict[str, Any]:
        """Question counts by reply kind, top entries and feedback since `since` (for /stats)."""
        cutoff = _iso(since)
        kinds = {
            str(k): int(n)
            for k, n in await self._read("SELECT kind, count(*) FROM events WHERE ts >= ? GROUP BY kind", (cutoff,))
        }
        top = [
            (str(e), int(n))
            for e, n in await self._read(
                "SELECT entry_id, count(*) AS n FROM events WHERE ts >= ? AND entry_id IS NOT NULL "
                "AND kind IN ('answer', 'urgent') GROUP BY entry_id ORDER BY n DESC, entry_id LIMIT 5",
                (cutoff,),
            )
        ]
        votes = await self._read(
            "SELECT sum(helpful), sum(1 - helpful) FROM feedback WHERE ts >= ?",
            (cutoff,),
        )
        crisis = {
            str(c): int(n)
            for c, n in await self._read(
                "SELECT crisis, count(*) AS n FROM events WHERE ts >= ? AND crisis IS NOT NULL "
                "GROUP BY crisis ORDER BY n DESC, crisis",
                (cutoff,),
            )
        }
        return {
            "kinds": kinds,
            "crisis": crisis,
            "top": top,
            "helpful": int(votes[0][0] or 0),
            "not_helpful": int(votes[0][1] or 0),
        }

    async def latest_unanswered(self, limit: int = 10) -> list[tuple[str, str, str, str]]:
        """(ts, lang, kind, scrubbed text) of the newest questions the bot could not answer."""
        rows = await self._read(
            "SELECT ts, lang, kind, text FROM unanswered ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [(str(r[0]), str(r[1] or ""), str(r[2]), str(r[3])) for r in rows]

    # ------------------------------------------------------------------ teaching (staff review)

    async def recent_unanswered(self, limit: int = 200) -> list[tuple[int, str, str, str, str]]:
        """(id, ts, lang, kind, scrubbed text) of the newest questions the bot could not answer."""
        rows = await self._read(
            "SELECT id, ts, lang, kind, text FROM unanswered ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [(int(r[0]), str(r[1]), str(r[2] or ""), str(r[3]), str(r[4])) for r in rows]

    async def unanswered_by_id(self, question_id: int) -> tuple[int, str, str, str, str] | None:
        """(id, ts, lang, kind, scrubbed text) of one stored question, or None (purged or forgotten)."""
        rows = await self._read("SELECT id, ts, lang, kind, text FROM unanswered WHERE id = ?", (question_id,))
        return (
            (int(rows[0][0]), str(rows[0][1]), str(rows[0][2] or ""), str(rows[0][3]), str(rows[0][4]))
            if rows
            else None
        )

    async def record_teaching(
        self, question_id: int, action: str, entry_id: str | None, lang: str | None, by: str, now: dt.datetime
    ) -> None:
        """Staff's decision about a stored question: taught (to entry_id, in lang), new_topic or ignored."""
        if action not in TEACHING_ACTIONS:
            raise ValueError(f"action must be one of {TEACHING_ACTIONS}")
        await self._write(
            "INSERT INTO teaching (ts, unanswered_id, action, entry_id, lang, by) VALUES (?, ?, ?, ?, ?, ?)",
            (_iso(now), question_id, action, entry_id, lang, by),
        )

    async def teaching_decisions(self) -> list[tuple[str, int, str, str | None, str | None, str, str | None]]:
        """(ts, question id, action, entry id, lang, by, the question's text or None once it is gone) of
        every decision, oldest first. A database from before teaching existed has none."""
        if not await self._read("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'teaching'"):
            return []  # its migration's number may differ between branches: ask for the table itself
        rows = await self._read(
            "SELECT t.ts, t.unanswered_id, t.action, t.entry_id, t.lang, t.by, u.text "
            "FROM teaching t LEFT JOIN unanswered u ON u.id = t.unanswered_id ORDER BY t.id"
        )
        return [(str(r[0]), int(r[1]), str(r[2]), r[3], r[4], str(r[5]), r[6]) for r in rows]

    async def count_events(self) -> int:
        """How many events are stored (for health checks and tests)."""
        rows = await self._read("SELECT count(*) FROM events")
        return int(rows[0][0])

    # ------------------------------------------------------------------ deletion

    async def forget_user(self, pid: str) -> dict[str, int]:
        """Delete everything about one user, in one transaction; rows deleted per table."""
        pid = _pid(pid)
        self._language_writes += 1
        self._languages.pop(pid, None)  # read again from the database, whether the delete works or not
        try:
            counts = await self._transaction([(f"DELETE FROM {table} WHERE pid = ?", (pid,)) for table in _USER_TABLES])
        finally:
            self._language_writes += 1
            self._languages.pop(pid, None)  # a read that finished before the delete may have cached it
        await self._truncate_wal()
        return dict(zip(_USER_TABLES, counts, strict=True))

    async def purge_older_than(self, days: int, now: dt.datetime) -> dict[str, int]:
        """Retention: events, unanswered questions and feedback older than `days` are deleted.

        Feedback is purged too: (pid, entry_id) says what a person asked about.
        """
        if days < 0:
            raise ValueError("days must not be negative")
        cutoff = _iso(now - dt.timedelta(days=days))
        counts = await self._transaction([(f"DELETE FROM {table} WHERE ts < ?", (cutoff,)) for table in _AGED_TABLES])
        await self._truncate_wal()
        return dict(zip(_AGED_TABLES, counts, strict=True))

    # ------------------------------------------------------------------ health

    async def integrity_ok(self) -> bool:
        """PRAGMA integrity_check says "ok" (a corrupt file answers False, not an exception)."""
        try:
            rows = await self._read("PRAGMA integrity_check")
        except StorageError as exc:
            if isinstance(exc.__cause__, sqlite3.DatabaseError) and self._db is not None:
                return False
            raise
        return [tuple(r) for r in rows] == [("ok",)]

    async def schema_version(self) -> int:
        """PRAGMA user_version: how many migrations this file has."""
        rows = await self._read("PRAGMA user_version")
        return int(rows[0][0])

    async def journal_mode(self) -> str:
        """The journal mode: "wal" once opened (anything else means no shared-memory support)."""
        rows = await self._read("PRAGMA journal_mode")
        return str(rows[0][0])

    # ------------------------------------------------------------------ plumbing

    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StorageError("storage is closed")
        return self._db

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        db = self._conn()
        try:
            return list(await db.execute_fetchall(sql, params))
        except sqlite3.Error as exc:
            raise StorageError(f"database read failed: {exc}") from exc

    async def _write(self, sql: str, params: Sequence[Any]) -> None:
        """One statement, committed on its own (autocommit), serialised with all other writes.
        execute_fetchall runs and closes the cursor in one trip to the database thread."""
        async with self._lock:
            db = self._conn()
            try:
                await db.execute_fetchall(sql, params)
            except sqlite3.Error as exc:
                raise StorageError(f"database write failed: {exc}") from exc

    async def _transaction(self, statements: list[tuple[str, Sequence[Any]]]) -> list[int]:
        """Several statements, all or nothing, in one trip to the database thread; rows changed by each.

        One trip instead of one per statement plus BEGIN and COMMIT: each trip is a hand-over
        between threads, and a message's writes cost about half the CPU this way. aiosqlite has no
        public call for running a function on its thread; `_execute` is what all its own calls use
        (aiosqlite < 1, pinned in pyproject), and the function uses its sqlite3 connection there.
        """
        async with self._lock:
            db = self._conn()

            def run() -> list[int]:
                conn: sqlite3.Connection = db._conn
                conn.execute("BEGIN IMMEDIATE")
                try:
                    counts = [conn.execute(sql, params).rowcount for sql, params in statements]
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
                    raise
                return counts

            on_db_thread: Callable[[Callable[[], list[int]]], Awaitable[list[int]]] = db._execute
            try:
                counts = await on_db_thread(run)
            except (sqlite3.Error, ValueError) as exc:  # ValueError: aiosqlite's connection is closed
                raise StorageError(f"database write failed: {exc}") from exc
            return counts

    async def _group_commit(self, statements: list[tuple[str, Sequence[Any]]]) -> None:
        """Statements that succeed or fail together, committed with whatever others are waiting.

        Under load many messages finish at once, and each commit (and each trip to the database
        thread) costs more CPU than the rows. So the writes that queue up while one commit runs
        go together in the next: one transaction, each writer's statements in its own SAVEPOINT,
        so one writer's failure (a full disk) rolls back only its own rows, as with a transaction
        of its own. Every writer returns only once its rows are committed (or raises), so nothing
        is acknowledged (or its update confirmed to Telegram) before it is on disk, and a crash
        loses no more than before. Alone, a write waits for nobody.
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queued.append((statements, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="storage-group-commit")
        await future

    async def _flush(self) -> None:
        """Commit the queued writes, batch after batch, until none are left."""
        while self._queued:
            batch: list[tuple[list[tuple[str, Sequence[Any]]], asyncio.Future[None]]] = []
            try:
                async with self._lock:
                    batch, self._queued = self._queued, []  # taken with the lock: all that queued meanwhile
                    db = self._conn()
                    groups = [statements for statements, _ in batch]
                    on_db_thread: Callable[[Callable[[], list[sqlite3.Error | None]]], Awaitable[Any]] = db._execute
                    outcomes: list[Exception | None] = await on_db_thread(functools.partial(_commit_groups, db, groups))
            except (StorageError, sqlite3.Error, ValueError) as exc:  # ValueError: aiosqlite's connection is closed
                outcomes = [exc] * len(batch)
            except BaseException:
                for _, future in batch + self._queued:
                    future.cancel()
                self._queued = []
                raise
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():  # the writer was cancelled meanwhile
                    continue
                if outcome is None:
                    future.set_result(None)
                else:
                    failure = StorageError(
                        str(outcome) if isinstance(outcome, StorageError) else f"database write failed: {outcome}"
                    )
                    failure.__cause__ = outcome
                    future.set_exception(failure)

    async def _truncate_wal(self) -> None:
        """Move the WAL into the main file and empty it, so deleted rows leave no copy behind."""
        async with self._lock:
            try:
                await self._conn().execute_fetchall("PRAGMA wal_checkpoint(TRUNCATE)")  # run and closed
            except sqlite3.Error as exc:
                raise StorageError(f"database checkpoint failed: {exc}") from exc

    # ------------------------------------------------------------------ reports (read-only)

    @classmethod
    async def open_readonly(cls, path: str | Path) -> Storage:
        """Open an existing database for reading only (SQLite URI mode=ro): a report never creates,
        migrates or writes the live bot's file, and a WAL reader never blocks the bot's writes."""
        path = Path(path)
        if not await asyncio.to_thread(path.is_file):
            raise StorageError(f"database {path} does not exist (set KOMEK_DB or use --db)")
        try:
            uri = f"{(await asyncio.to_thread(path.resolve)).as_uri()}?mode=ro"
            db = await aiosqlite.connect(uri, uri=True, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"cannot open database {path}: {exc}") from exc
        try:
            await db.execute("PRAGMA busy_timeout = 5000")
            rows = list(await db.execute_fetchall("PRAGMA user_version"))
            version = int(rows[0][0])
        except sqlite3.Error as exc:
            await db.close()
            raise StorageError(f"cannot read database {path}: {exc}") from exc
        if version < 1:
            await db.close()
            raise StorageError(f"{path} is not a Komek database (no schema)")
        return cls(db, path)

    async def events_between(
        self, since: dt.datetime, until: dt.datetime
    ) -> list[tuple[str, str, str | None, str | None, str | None]]:
        """(ts, kind, entry id, language, crisis category) of every reply in [since, until), oldest first."""
        rows = await self._read(
            "SELECT ts, kind, entry_id, lang, crisis FROM events WHERE ts >= ? AND ts < ? ORDER BY ts, id",
            (_iso(since), _iso(until)),
        )
        return [(str(r[0]), str(r[1]), r[2], r[3], r[4]) for r in rows]

    async def unanswered_between(self, since: dt.datetime, until: dt.datetime) -> list[tuple[str, str, str, str]]:
        """(ts, language, kind, scrubbed text) of the questions not answered in [since, until), oldest first."""
        rows = await self._read(
            "SELECT ts, lang, kind, text FROM unanswered WHERE ts >= ? AND ts < ? ORDER BY ts, id",
            (_iso(since), _iso(until)),
        )
        return [(str(r[0]), str(r[1] or ""), str(r[2]), str(r[3])) for r in rows]

    async def feedback_between(self, since: dt.datetime, until: dt.datetime) -> list[tuple[str, str, bool]]:
        """(ts, entry id, helpful?) of every 👍/👎 press in [since, until), oldest first."""
        rows = await self._read(
            "SELECT ts, entry_id, helpful FROM feedback WHERE ts >= ? AND ts < ? ORDER BY ts, id",
            (_iso(since), _iso(until)),
        )
        return [(str(r[0]), str(r[1]), bool(r[2])) for r in rows]


def _commit_groups(
    db: aiosqlite.Connection, groups: list[list[tuple[str, Sequence[Any]]]]
) -> list[sqlite3.Error | None]:
    """On aiosqlite's thread: all groups in one transaction, each in a SAVEPOINT; each group's error
    or None. Should the transaction itself fail (SQLite rolls the whole of it back on a full disk,
    or COMMIT fails), each group is committed on its own instead, exactly as without grouping."""
    conn: sqlite3.Connection = db._conn
    try:
        return _commit_together(conn, groups)
    except BaseException as exc:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        if not isinstance(exc, sqlite3.Error):
            raise
    return [_commit_alone(conn, statements) for statements in groups]


def _commit_together(
    conn: sqlite3.Connection, groups: list[list[tuple[str, Sequence[Any]]]]
) -> list[sqlite3.Error | None]:
    conn.execute("BEGIN IMMEDIATE")
    outcomes: list[sqlite3.Error | None] = []
    for statements in groups:
        conn.execute("SAVEPOINT turn")
        try:
            for sql, params in statements:
                conn.execute(sql, params)
        except sqlite3.Error as exc:
            if not conn.in_transaction:
                raise  # SQLite rolled back the whole transaction: the caller commits one by one
            conn.execute("ROLLBACK TO turn")
            outcomes.append(exc)
        else:
            outcomes.append(None)
        conn.execute("RELEASE turn")
    conn.execute("COMMIT")
    return outcomes


def _commit_alone(conn: sqlite3.Connection, statements: list[tuple[str, Sequence[Any]]]) -> sqlite3.Error | None:
    try:
        conn.execute("BEGIN IMMEDIATE")
        for sql, params in statements:
            conn.execute(sql, params)
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        return exc
    return None


async def _migrate(db: aiosqlite.Connection) -> None:
    """Apply MIGRATIONS past the file's user_version, each atomically with its version bump."""
    rows = list(await db.execute_fetchall("PRAGMA user_version"))
    version = int(rows[0][0])
    if version > len(MIGRATIONS):
        raise StorageError(f"database schema version {version} is newer than this code ({len(MIGRATIONS)})")
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        try:
            await db.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
        except sqlite3.Error:
            if db.in_transaction:
                await db.execute("ROLLBACK")
            raise

"""The durable inbox: every update is kept in SQLite (sealed, bot/vault.py) from the moment it
arrives until it has been handled, and handled per chat, in order, chats concurrently.

Telegram's getUpdates offset is one for all chats: confirming an update tells Telegram to forget
it, and not confirming it holds back every later update of everyone. So the poller (bot/polling.py)
stores each batch here first and confirms it at once; the webhook (bot/webhook.py) answers 200 once
the update is stored. From then on the update is ours: handled from here, and after a crash or a
restart handled from the table (`recover`). An update stays in the table with its payload until its
handler has finished, which means its answer was delivered or is queued in the outbox (bot/outbox.py,
retried until delivered); then its payload is erased, and the bare row is kept only while Telegram
might still send that update again (below the confirmed offset it is deleted), so a re-sent update
is recognised and not answered twice.

Per chat: one worker takes that chat's updates one after another; at most `slots` updates are
handled at once over all chats, each worker asking for a slot per update, so a chat with a long
backlog takes its turn like everyone else and never more than one slot. Nothing a chat's updates
do (a flood of messages, a long /announce, sends Telegram refuses with 429) makes another chat wait.

When the database cannot take an update, it is handled from memory and reported as volatile: the
caller must not confirm it before it was handled (`take` gives a future for it), which is the
at-least-once rule the bot had before the inbox.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import json
import logging
import time
from collections.abc import Hashable
from typing import Any

from telegram import Update
from telegram.ext import Application, ExtBot

from bot.handlers import Services
from bot.vault import open_sealed, seal_bytes

log = logging.getLogger("komek")
AnyApp = Application[Any, Any, Any, Any, Any, Any]
SLOTS = 32  # updates handled at once (all chats together)
MAX_WAITING = 5000  # taken but not handled: past this the poller stops taking more
RECENT = 4096  # ids of updates handled lately without a row (storage down): a re-send is recognised
KEEP_HANDLED_SECONDS = 3600.0  # webhook mode: a handled update's bare row is kept this long


def chat_key(update: Update) -> int | None:
    """Whose order an update keeps: its chat's (or, without a chat, its sender's)."""
    if update.effective_chat is not None:
        return update.effective_chat.id
    if update.effective_user is not None:
        return update.effective_user.id
    return None


def read_update(data: Any, bot: ExtBot[Any]) -> Update | int:
    """One update as Telegram sent it (decoded JSON) -> an Update, or its bare id if PTB cannot read
    it: such an update is to be skipped (confirmed unhandled), with one line in the log that names
    no content, since retrying it would fail the same way for ever. Without an id it cannot even be
    skipped: the parser's error is raised."""
    try:
        update = Update.de_json(data, bot)
        bot.insert_callback_data(update)
    except Exception as exc:
        update_id = data.get("update_id") if isinstance(data, dict) else None
        if not isinstance(update_id, int):
            raise
        log.error("update %d cannot be read (%s) and is skipped", update_id, type(exc).__name__)
        return update_id
    return update


class Inbox:
    """`await inbox.take(raw_updates)` stores and queues them; see the module's docstring."""

    def __init__(self, app: AnyApp, svc: Services, *, slots: int = SLOTS, max_waiting: int = MAX_WAITING) -> None:
        self.app = app
        self.svc = svc
        self.max_waiting = max_waiting
        self.waiting = 0  # taken, not handled yet
        self._slots = asyncio.Semaphore(slots)
        self._queues: dict[Hashable, collections.deque[tuple[Update, asyncio.Future[None] | None]]] = {}
        self._workers: dict[Hashable, asyncio.Task[None]] = {}
        self._stored: set[int] = set()  # update ids with a row (waiting or handled)
        self._handled: set[int] = set()  # ... of which handled (payload erased)
        self._volatile: dict[int, asyncio.Future[None]] = {}  # not stored: done once handled
        self._recent: collections.OrderedDict[int, None] = collections.OrderedDict()
        self._room = asyncio.Event()
        self._room.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._tidied = 0.0  # when handled rows were last deleted
        self._recovered = False
        self.handled_count = 0

    # ------------------------------------------------------------------ taking updates

    async def recover(self) -> int:
        """Handle what the last run stored and did not finish (oldest first); how many."""
        if self._recovered:
            return 0
        rows = await self.svc.store(lambda s: s.inbox_rows())
        if rows is None:
            return 0  # no database (yet): Services retries it; nothing to recover meanwhile
        self._recovered = True
        count = 0
        for update_id, blob in rows:
            self._stored.add(update_id)
            if blob is None:
                self._handled.add(update_id)
                continue
            data = open_sealed(blob, self.svc.secret)
            update: Update | int | None = None
            if data is not None:
                with contextlib.suppress(ValueError):
                    update = read_update(json.loads(data), self.app.bot)
            if not isinstance(update, Update):
                log.error("a stored update cannot be read (another KOMEK_SECRET?): skipped")
                self._handled.add(update_id)
                await self.svc.store(lambda s, u=update_id: s.inbox_done(u))  # type: ignore[misc]
                continue
            self._queue(update, None)
            count += 1
        if count:
            log.info("%d update(s) received before the restart and not handled yet: handling them now", count)
        return count

    def known(self, update_id: int) -> bool:
        return update_id in self._stored or update_id in self._volatile or update_id in self._recent

    async def take(self, raw: list[Any]) -> dict[int, asyncio.Future[None]]:
        """Updates as Telegram sent them (decoded JSON, in update_id order): stored, then queued.
        Returns, by update id, the futures of those that could not be stored (volatile): confirm
        them to Telegram only once done. The others (and those already taken, and unreadable ones,
        skipped with one log line) may be confirmed at once."""
        if not self._recovered:
            await self.recover()
        fresh: list[tuple[dict[str, Any], Update]] = []
        waits: dict[int, asyncio.Future[None]] = {}
        for data in raw:
            update_id = data.get("update_id") if isinstance(data, dict) else None
            if isinstance(update_id, int) and self.known(update_id):
                running = self._volatile.get(update_id)
                if running is not None:
                    waits[update_id] = running
                continue
            update = read_update(data, self.app.bot)  # raises on an update without an id
            if isinstance(update, int):
                self._remember(update)
                continue
            fresh.append((data, update))
        if not fresh:
            return waits
        secret = self.svc.secret
        rows = [
            (u.update_id, seal_bytes(json.dumps(d, ensure_ascii=False, separators=(",", ":")).encode(), secret))
            for d, u in fresh
        ]
        now = dt.datetime.now(dt.UTC)
        stored = await self.svc.store(lambda s: s.inbox_add(rows, now))
        for _data, update in fresh:
            if stored:
                self._stored.add(update.update_id)
                self._queue(update, None)
            else:
                future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self._volatile[update.update_id] = future
                self._queue(update, future)
                waits[update.update_id] = future
        return waits

    def _queue(self, update: Update, future: asyncio.Future[None] | None) -> None:
        key: Hashable = chat_key(update)
        if key is None:
            key = ("update", update.update_id)  # no chat: nothing to keep in order with
        self._queues.setdefault(key, collections.deque()).append((update, future))
        self.waiting += 1
        self._idle.clear()
        if self.waiting >= self.max_waiting:
            self._room.clear()
        worker = self._workers.get(key)
        if worker is None or worker.done():
            self._workers[key] = asyncio.create_task(self._work(key), name=f"chat-{update.update_id}")

    # ------------------------------------------------------------------ handling

    async def _work(self, key: Hashable) -> None:
        queue = self._queues[key]
        try:
            while queue:
                update, future = queue[0]
                async with self._slots:
                    try:
                        await self.app.process_update(update)  # handler errors go to the error handler
                    except Exception:
                        log.exception("update %d could not be processed", update.update_id)
                queue.popleft()
                await self._handled_now(update.update_id, future)
        finally:
            for update, future in queue:  # cancelled (shutdown): they stay stored for the next start
                if future is not None and not future.done():
                    future.cancel()
                self._volatile.pop(update.update_id, None)
            self.waiting -= len(queue)
            queue.clear()
            if self._queues.get(key) is queue:
                del self._queues[key]
            if self._workers.get(key) is asyncio.current_task():
                del self._workers[key]
            self._update_events()

    async def _handled_now(self, update_id: int, future: asyncio.Future[None] | None) -> None:
        self.waiting -= 1
        self.handled_count += 1
        if future is not None:
            self._volatile.pop(update_id, None)
            self._remember(update_id)
            if not future.done():
                future.set_result(None)
        elif update_id in self._stored and await self.svc.store(lambda s: s.inbox_done(update_id)):
            self._handled.add(update_id)
        self._update_events()

    def _update_events(self) -> None:
        if self.waiting < self.max_waiting:
            self._room.set()
        if self.waiting <= 0:
            self._idle.set()

    def _remember(self, update_id: int) -> None:
        self._recent[update_id] = None
        while len(self._recent) > RECENT:
            self._recent.popitem(last=False)

    async def room(self) -> None:
        """Returns once fewer than max_waiting updates wait."""
        await self._room.wait()

    async def idle(self, timeout: float) -> None:  # noqa: ASYNC109 - a bound for waiting, not one call
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)

    # ------------------------------------------------------------------ tidying

    async def confirmed(self, offset: int) -> None:
        """Telegram was told to forget every update below `offset` (polling): their handled rows go.
        At most once a second, so a busy poll loop does not write for each poll."""
        below = [u for u in self._handled if u < offset]
        if not below or (len(below) < 1000 and time.monotonic() - self._tidied < 1.0):
            return
        self._tidied = time.monotonic()
        if await self.svc.store(lambda s: s.inbox_forget_handled(below_update_id=offset)) is not None:
            self._handled.difference_update(below)
            self._stored.difference_update(below)

    async def tidy_by_age(self) -> None:
        """Webhook mode (no offset): handled rows older than KEEP_HANDLED_SECONDS go, every minute."""
        if time.monotonic() - self._tidied < 60.0 or not self._handled:
            return
        self._tidied = time.monotonic()
        before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=KEEP_HANDLED_SECONDS)
        if await self.svc.store(lambda s: s.inbox_forget_handled(before=before)) is not None:
            rows = await self.svc.store(lambda s: s.inbox_rows())
            if rows is not None:
                kept = {u for u, _ in rows}
                self._handled.intersection_update(kept)
                self._stored.intersection_update(kept)

    # ------------------------------------------------------------------ shutdown

    async def drain(self, seconds: float) -> int:
        """Let the updates being handled (and those queued behind them) finish for up to `seconds`,
        then cancel the rest: stored ones are handled after the restart, volatile ones are not
        confirmed. How many were left."""
        if self._workers:
            await asyncio.wait(list(self._workers.values()), timeout=seconds)
        left = self.waiting
        workers = list(self._workers.values())
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        if left:
            log.warning("%d update(s) not handled at shutdown: they will be handled after the restart", left)
        return left

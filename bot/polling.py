"""Long polling with a durable inbox: an update is confirmed to Telegram once it is stored.

PTB's own Updater advances getUpdates' `offset` (which tells Telegram to forget every update below
it) as soon as a batch is *queued*, before the handlers run: a crash (kill -9, out of memory, power
cut) then silently loses every queued question. Holding the offset until each update is handled
(what this loop did before) loses nothing, but the offset is one for all chats, so one slow update
(a send Telegram answers with 429, a long /announce, one person's backlog) held back everyone.

So each batch is first stored in the inbox (bot/inbox.py: SQLite, sealed) and then confirmed by the
next getUpdates; the inbox hands the updates to their chats' workers (each chat in order, chats
concurrently) and erases each one once handled. After a crash or a restart the stored updates that
were not handled yet are handled first. An update handled just before a crash, whose "handled" mark
was not committed yet, is handled again (at most the SLOTS being handled at once).

When the database cannot store a batch, those updates are handled from memory and the offset stays
below them until they are handled (the old rule), with at most WINDOW of them taken at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
from collections.abc import AsyncIterator
from typing import Any

from telegram import Update
from telegram.error import InvalidToken, RetryAfter, TelegramError, TimedOut

from bot.handlers import Services
from bot.inbox import AnyApp, Inbox, read_update

log = logging.getLogger("komek")
WINDOW = 32  # updates taken at once when the inbox cannot store them (and handled concurrently)
BATCH = 100  # updates asked for per getUpdates (Telegram's maximum)
GET_UPDATES_READ_TIMEOUT = 5.0  # PTB's read timeout for getUpdates, on top of the long-poll time
__all__ = ["WINDOW", "AnyApp", "Poller", "read_update", "serve_polling", "started"]


class Poller:
    """`await Poller(app).run(stop)` polls until `stop` is set, then finishes what it took."""

    def __init__(
        self,
        app: AnyApp,
        inbox: Inbox | None = None,
        *,
        timeout: int = 10,
        idle_wait: float = 0.5,
        drain_seconds: float = 10.0,
    ):
        self.app = app
        self.inbox = inbox or Inbox(app, app.bot_data["services"])
        self.timeout = timeout
        self.idle_wait = idle_wait
        self.drain_seconds = drain_seconds
        self.next_new = 0  # the smallest update_id not taken yet
        self.volatile: dict[int, asyncio.Future[None]] = {}  # taken, not stored: confirm once handled

    @property
    def offset(self) -> int:
        """Everything below this is stored or handled, and may be confirmed."""
        return min(self.volatile) if self.volatile else self.next_new

    async def _get_updates(self, wait: int) -> tuple[int, list[Any]]:
        """(the offset asked with, the updates not taken yet, as decoded JSON).

        This calls what Bot.get_updates calls before it parses (Bot._post, PTB 22), with the same
        parameters and read timeout: the inbox stores them as Telegram sent them and parses them once.
        """
        offset = self.offset
        bot = self.app.bot
        params = {"offset": offset, "limit": BATCH, "timeout": wait, "allowed_updates": Update.ALL_TYPES}
        raw = await bot._post("getUpdates", params, read_timeout=GET_UPDATES_READ_TIMEOUT + wait)
        new = [
            data
            for data in raw
            if not (
                isinstance(data, dict) and isinstance(data.get("update_id"), int) and data["update_id"] < self.next_new
            )
        ]
        return offset, new

    async def _take(self, new: list[Any]) -> int:
        ids = [d["update_id"] for d in new if isinstance(d, dict) and isinstance(d.get("update_id"), int)]
        if len(ids) < len(new):
            # An update without an id cannot be skipped: the poll fails (read_update raises) and
            # is retried, as PTB would.
            for data in new:
                read_update(data, self.app.bot)
        if ids:
            self.next_new = max(self.next_new, max(ids) + 1)
        for update_id, future in (await self.inbox.take(new)).items():
            if update_id not in self.volatile:
                self.volatile[update_id] = future
                future.add_done_callback(functools.partial(self._confirmable, update_id))
        return len(ids)

    def _confirmable(self, update_id: int, _future: asyncio.Future[None]) -> None:
        self.volatile.pop(update_id, None)

    async def run(self, stop: asyncio.Event) -> None:
        stopping = asyncio.ensure_future(stop.wait())
        backoff = 0.5
        try:
            await self.inbox.recover()
            while not stop.is_set():
                if len(self.volatile) >= WINDOW or self.inbox.waiting >= self.inbox.max_waiting:
                    # Full: wait for room (or a moment) before taking more.
                    room = asyncio.ensure_future(self.inbox.room())
                    waits: list[asyncio.Future[Any]] = [room, stopping, *self.volatile.values()]
                    await asyncio.wait(
                        waits,
                        timeout=self.idle_wait,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    room.cancel()
                    continue
                poll = asyncio.ensure_future(self._get_updates(0 if self.volatile else self.timeout))
                await asyncio.wait([poll, stopping], return_when=asyncio.FIRST_COMPLETED)
                if not poll.done():
                    poll.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await poll
                    break
                try:
                    asked, new = poll.result()
                    await self.inbox.confirmed(asked)
                    fresh = await self._take(new)
                except InvalidToken:
                    raise
                except RetryAfter as exc:
                    wait = exc.retry_after
                    await self._pause(stop, wait if isinstance(wait, int | float) else wait.total_seconds())
                    continue
                except TimedOut:
                    continue
                except Exception as exc:  # network trouble, 5xx, a 409 conflict, an update without an id
                    level = logging.WARNING if isinstance(exc, TelegramError) else logging.ERROR
                    log.log(level, "polling failed (%s); trying again in %.1f s", exc, backoff)
                    await self._pause(stop, backoff)
                    backoff = min(backoff * 2, 30.0)
                    continue
                backoff = 0.5
                if not fresh and self.volatile:
                    # Nothing new, and unconfirmed updates keep getUpdates from long-polling (it
                    # answers at once while they exist): let them finish, or a moment pass.
                    await asyncio.wait([*self.volatile.values()], timeout=self.idle_wait)
        finally:
            stopping.cancel()
            await self._drain()

    async def _pause(self, stop: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)

    async def _drain(self) -> None:
        """On the way out: let running updates finish (bounded), then confirm what is stored or handled."""
        await self.inbox.drain(self.drain_seconds)
        offset = self.offset  # a volatile update cancelled unhandled stays above it
        if self.next_new:
            with contextlib.suppress(Exception):
                await self.app.bot.get_updates(offset=offset, timeout=0, allowed_updates=Update.ALL_TYPES)


@contextlib.asynccontextmanager
async def started(app: AnyApp, stop: asyncio.Event) -> AsyncIterator[None]:
    """PTB's life of an Application around the caller's serving: initialize, SIGINT/SIGTERM set
    `stop`, post_init, start; on the way out stop, shutdown and post_shutdown, as PTB's run_polling
    and run_webhook do. Shared by serve_polling and bot.webhook.serve_webhook."""
    loop = asyncio.get_running_loop()
    await app.initialize()
    signals = []
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
                signals.append(sig)
        if app.post_init is not None:
            await app.post_init(app)
        await app.start()
        try:
            yield
        finally:
            await app.stop()
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        await app.shutdown()
        if app.post_shutdown is not None:
            await app.post_shutdown(app)


async def serve_polling(app: AnyApp, stop: asyncio.Event | None = None, drain_seconds: float = 10.0) -> None:
    """The whole life of a polling bot: initialize, post_init, start, poll until SIGINT/SIGTERM (or
    `stop`), then stop, shutdown and post_shutdown, as PTB's run_polling does."""
    stop = stop or asyncio.Event()
    async with started(app, stop):
        await app.bot.delete_webhook(drop_pending_updates=False)
        svc: Services = app.bot_data["services"]
        await Poller(app, Inbox(app, svc), drain_seconds=drain_seconds).run(stop)

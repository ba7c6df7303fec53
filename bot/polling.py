"""Long polling that confirms an update to Telegram only after it has been handled (at-least-once).

PTB's own Updater advances getUpdates' `offset` (which tells Telegram to forget every update below
it) as soon as a batch is *queued*, before the handlers run: a crash (kill -9, out of memory, power
cut) then silently loses every queued question. Here the offset moves past an update only once its
handler has finished, so after a crash the unfinished updates come again. The price is that an
update handled just before the crash can be handled twice; nothing is lost.

Updates of one chat are handled in order, different chats concurrently: a send that Telegram
slows down (429) or that times out delays only that person, not everyone behind them. The window
of unconfirmed updates is at most WINDOW long (taken but not confirmed: running, or done behind
one that still runs); it bounds both the work in flight and how many updates a crash can repeat.
A send stuck at the head of a full window holds up newer updates until it ends.

ChatOrder (the per-chat ordering) and read_update (parsing, skipping what PTB cannot read) are
shared with the webhook server (bot/webhook.py).
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
from telegram.ext import Application, ExtBot

log = logging.getLogger("komek")
WINDOW = 32
GET_UPDATES_READ_TIMEOUT = 5.0  # PTB's read timeout for getUpdates, on top of the long-poll time
AnyApp = Application[Any, Any, Any, Any, Any, Any]


def _chat_key(update: Update) -> int | None:
    if update.effective_chat is not None:
        return update.effective_chat.id
    if update.effective_user is not None:
        return update.effective_user.id
    return None


class ChatOrder:
    """`await ChatOrder(app).handle(update)` runs the update through app.process_update: updates of
    one chat one after another, in the order they reach `handle`; different chats concurrently."""

    def __init__(self, app: AnyApp):
        self.app = app
        self._locks: dict[int, tuple[asyncio.Lock, list[int]]] = {}

    async def handle(self, update: Update) -> None:
        key = _chat_key(update)
        if key is None:
            await self._process(update)
            return
        lock, users = self._locks.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                await self._process(update)
        finally:
            users[0] -= 1
            if users[0] == 0:
                self._locks.pop(key, None)

    async def _process(self, update: Update) -> None:
        try:
            await self.app.process_update(update)  # handler errors go to the error handler
        except Exception:
            log.exception("update %d could not be processed", update.update_id)


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


class Poller:
    """`await Poller(app).run(stop)` polls until `stop` is set, then finishes what it took."""

    def __init__(self, app: AnyApp, *, timeout: int = 10, idle_wait: float = 0.5, drain_seconds: float = 10.0):
        self.app = app
        self.timeout = timeout
        self.idle_wait = idle_wait
        self.drain_seconds = drain_seconds
        self.next_new = 0  # the smallest update_id not taken yet
        self.in_flight: dict[int, asyncio.Task[None]] = {}
        self.chats = ChatOrder(app)

    @property
    def offset(self) -> int:
        """Everything below this is handled and may be confirmed."""
        return min(self.in_flight) if self.in_flight else self.next_new

    def _take(self, updates: list[Update | int]) -> int:
        """Start the new updates; an unreadable one (its bare id) only moves past it."""
        fresh = 0
        for update in updates:
            update_id = update if isinstance(update, int) else update.update_id
            if update_id < self.next_new:
                continue  # already taken (in flight or handled, not yet confirmed)
            self.next_new = update_id + 1
            if isinstance(update, int):
                continue
            task = asyncio.create_task(self.chats.handle(update), name=f"update-{update.update_id}")
            self.in_flight[update.update_id] = task
            task.add_done_callback(functools.partial(self._done, update.update_id))
            fresh += 1
        return fresh

    def _done(self, update_id: int, _task: asyncio.Task[None]) -> None:
        self.in_flight.pop(update_id, None)

    async def _get_updates(self, wait: int) -> list[Update | int]:
        """The updates from `offset` on, parsed only where not taken yet.

        Every poll returns the whole unconfirmed window again (up to WINDOW updates, most of them
        taken and still running), and turning them into Update objects is most of a poll's cost.
        So this calls what Bot.get_updates calls before it parses (Bot._post, PTB 22), with the
        same parameters and read timeout, and parses only what is new. An update that cannot be
        parsed comes back as its bare id, to be skipped.
        """
        bot = self.app.bot
        params = {"offset": self.offset, "limit": WINDOW, "timeout": wait, "allowed_updates": Update.ALL_TYPES}
        raw = await bot._post("getUpdates", params, read_timeout=GET_UPDATES_READ_TIMEOUT + wait)
        new = [
            data
            for data in raw
            if not (
                isinstance(data, dict) and isinstance(data.get("update_id"), int) and data["update_id"] < self.next_new
            )
        ]
        updates: list[Update | int] = []
        for data in new:
            # An update PTB cannot read would otherwise fail every poll, for ever, and stop the bot
            # for everyone: read_update turns it into its bare id, skipped. Without an id the poll
            # fails and is retried.
            updates.append(read_update(data, bot))
        return updates

    async def run(self, stop: asyncio.Event) -> None:
        stopping = asyncio.ensure_future(stop.wait())
        backoff = 0.5
        try:
            while not stop.is_set():
                poll = asyncio.ensure_future(self._get_updates(0 if self.in_flight else self.timeout))
                await asyncio.wait([poll, stopping], return_when=asyncio.FIRST_COMPLETED)
                if not poll.done():
                    poll.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await poll
                    break
                try:
                    updates = poll.result()
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
                if not self._take(updates) and self.in_flight:
                    # Nothing new, and what runs keeps getUpdates from long-polling (it answers at once
                    # while unconfirmed updates exist): let the running ones finish, or a moment pass,
                    # before asking again. Asking after every finished update would re-read the whole
                    # window each time, which costs more CPU than handling the updates.
                    await asyncio.wait([*self.in_flight.values()], timeout=self.idle_wait)
        finally:
            stopping.cancel()
            await self._drain()

    async def _pause(self, stop: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)

    async def _drain(self) -> None:
        """On the way out: let running updates finish (bounded), then confirm what is handled."""
        if self.in_flight:
            await asyncio.wait(list(self.in_flight.values()), timeout=self.drain_seconds)
        offset = self.offset  # before cancelling: a cancelled update leaves in_flight, unhandled
        unfinished = list(self.in_flight.values())
        for task in unfinished:
            task.cancel()  # not confirmed: Telegram sends it again after the restart
        await asyncio.gather(*unfinished, return_exceptions=True)
        if unfinished:
            log.warning(
                "%d update(s) still running at shutdown: they will be handled after the restart", len(unfinished)
            )
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
        await Poller(app, drain_seconds=drain_seconds).run(stop)

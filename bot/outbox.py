"""Every message the bot sends to a chat goes through the Outbox, so that no answer is lost while
Telegram cannot take it, and no chat's trouble holds up anyone else.

A message is sent at once when nothing waits for its chat. When Telegram does not take it for a
passing reason (429 "retry after", a 5xx, a timeout, the network or the API down), it is queued
behind that chat's other waiting messages, kept in SQLite (sealed: the chat id and text are inside
the seal, see bot/vault.py) and the caller goes on: the message is retried by that chat's own
worker, 429s after exactly the time Telegram asks for, other failures with a doubling pause up to
`max_backoff`, until it is delivered, refused for good (400: dropped and logged; 403: the person
blocked the bot, so everything queued for them is dropped and they are unsubscribed), or older than
`max_age` (dropped and logged). Queued messages survive a restart: `recover()` sends them.

Other chats never wait for a chat's queue: each chat has its own worker, and queued retries use at
most RETRY_SLOTS of the send connections, so fresh answers keep the others.

What is not guaranteed: Telegram has no idempotent send, so a send whose answer was lost (the
request reached Telegram, the response did not come back: a timeout or a dropped connection) is
sent again and the person may get that message twice. A message queued while the database was
unavailable is kept in memory only (lost if the process stops before it is delivered).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import html
import json
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from telegram import Bot, InlineKeyboardMarkup
from telegram.constants import ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, RetryAfter, TelegramError
from telegram.request import BaseRequest

from bot.storage import Storage
from bot.vault import open_sealed, seal_bytes

log = logging.getLogger("komek")
T = TypeVar("T")
DEFAULT_NONE = BaseRequest.DEFAULT_NONE  # PTB's "not given": ExtBot puts the app's Defaults in its place
MAX_AGE = 24 * 3600.0  # a message Telegram would not take for a whole day is dropped (logged)
MAX_BACKOFF = 30.0  # the longest pause between two tries of a message (429s wait as long as told)
FIRST_BACKOFF = 0.5
RETRY_SLOTS = 2  # queued retries in flight at once, all chats together (SEND_CONNECTIONS is 4)
_TAG = re.compile(r"<[^>]*>")


class Store(Protocol):
    """What the Outbox needs of Services (bot/handlers.py): storage actions that log and swallow
    StorageError, answering None then."""

    async def store(self, action: Callable[[Storage], Awaitable[T]]) -> T | None: ...


# What to do once a queued message was delivered or given up: (kind, details), handled by the
# `after` callback given to the Outbox (staff hand-offs: record the operators' message id; tell the
# operator whether their reply reached the person).
Then = dict[str, Any]


async def post_message(
    bot: Bot,
    chat_id: int,
    text: str,
    markup: InlineKeyboardMarkup | dict[str, Any] | None,
    *,
    reply_to: int | None = None,
    html_mode: bool = True,
) -> int:
    """`bot.send_message(chat_id, text, parse_mode=HTML, reply_markup=markup)` without turning
    Telegram's answer into a Message nobody reads here: with an answer's entities and keyboard,
    that parsing cost about a tenth of a message's CPU. Same request (Bot._post is what
    send_message calls, PTB 22; the app's Defaults still fill link_preview_options), same errors.
    Returns the id of the message sent."""
    data: dict[str, Any] = {
        "chat_id": chat_id,
        "text": text,
        "parse_mode": ParseMode.HTML if html_mode else None,
        "reply_markup": markup,
        "link_preview_options": DEFAULT_NONE,
        "disable_notification": DEFAULT_NONE,
        "protect_content": DEFAULT_NONE,
    }
    if reply_to is not None:
        data["reply_parameters"] = {"message_id": reply_to, "allow_sending_without_reply": True}
    result = await bot._post("sendMessage", data)
    return int(result.get("message_id", 0)) if isinstance(result, dict) else 0


def plain(text: str) -> str:
    """An HTML text as plain text (tags out, entities decoded): what is sent when Telegram refuses
    the markup, so the person still gets the words."""
    return html.unescape(_TAG.sub("", text))


def retry_wait(exc: TelegramError, attempts: int, max_backoff: float = MAX_BACKOFF) -> float:
    """Seconds to wait before the next try after `exc` (the `attempts`-th failure in a row): a 429
    waits exactly as long as Telegram asks, however long that is; anything else doubles from
    FIRST_BACKOFF up to `max_backoff`."""
    if isinstance(exc, RetryAfter):
        wait: dt.timedelta | int = exc.retry_after
        return float(wait.total_seconds() if isinstance(wait, dt.timedelta) else wait)
    return min(FIRST_BACKOFF * 2.0 ** max(0, attempts - 1), max_backoff)


def permanent(exc: BaseException) -> bool:
    """Telegram refused this message for good (bad request, blocked): trying again cannot help."""
    return isinstance(exc, BadRequest | Forbidden | ChatMigrated)


@dataclass
class Outgoing:
    """One message for one chat."""

    chat_id: int
    text: str
    markup: dict[str, Any] | None = None
    pid: str | None = None  # whose chat it is (pseudonym): /forget deletes it, a 403 unsubscribes them
    reply_to: int | None = None
    then: Then | None = None
    created: float = field(default_factory=time.time)  # wall clock: the age counts across restarts
    row: int | None = None  # its outbox row, once stored
    attempts: int = 0
    not_before: float = 0.0  # monotonic
    finished: bool = False

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "chat": self.chat_id,
                "text": self.text,
                "markup": self.markup,
                "pid": self.pid,
                "reply_to": self.reply_to,
                "then": self.then,
                "created": self.created,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_json(cls, data: bytes, row: int) -> Outgoing:
        d = json.loads(data)
        return cls(
            chat_id=int(d["chat"]),
            text=str(d["text"]),
            markup=d.get("markup"),
            pid=d.get("pid"),
            reply_to=d.get("reply_to"),
            then=d.get("then"),
            created=float(d.get("created", time.time())),
            row=row,
        )


class Outbox:
    """`await outbox.send(chat_id, text, markup)`: (chat id, message id) when Telegram took it at
    once, None when it was queued (it will be delivered later); raises the Telegram error when the
    message was refused for good (BadRequest, Forbidden)."""

    def __init__(
        self,
        bot: Bot,
        store: Store,
        secret: bytes,
        *,
        max_age: float = MAX_AGE,
        max_backoff: float = MAX_BACKOFF,
        after: Callable[[Outgoing, int | None, BaseException | None], Awaitable[None]] | None = None,
        on_blocked: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.bot = bot
        self.store = store
        self.secret = secret
        self.max_age = max_age
        self.max_backoff = max_backoff
        self.after = after
        self.on_blocked = on_blocked
        self._queues: dict[int, deque[Outgoing]] = {}
        self._workers: dict[int, asyncio.Task[None]] = {}
        self._retry_slots = asyncio.Semaphore(RETRY_SLOTS)
        self._closed = False

    # ------------------------------------------------------------------ sending

    def waiting(self, chat_id: int | None = None) -> int:
        """Messages queued (for one chat, or for all)."""
        if chat_id is not None:
            return len(self._queues.get(chat_id, ()))
        return sum(len(q) for q in self._queues.values())

    async def send(
        self,
        chat_id: int,
        text: str,
        markup: InlineKeyboardMarkup | None = None,
        *,
        pid: str | None = None,
        reply_to: int | None = None,
        then: Then | None = None,
    ) -> tuple[int, int] | None:
        """(chat id, message id) when Telegram took it at once (the chat id is a group's new one
        when it became a supergroup), None when it was queued: it will be delivered later, and
        `then` is handled by `after` once it was (or was given up). Refusals for good raise."""
        entry = Outgoing(
            chat_id,
            text,
            markup.to_dict() if markup is not None else None,
            pid,
            reply_to,
            then,
        )
        if self._queues.get(chat_id):  # earlier messages wait for this chat: keep the order
            await self._enqueue(entry)
            return None
        for _moves in range(2):
            try:
                return entry.chat_id, await self._post(entry, markup)
            except ChatMigrated as exc:
                log.warning("a chat moved to a new id (a group became a supergroup): sending there")
                entry.chat_id = exc.new_chat_id
            except TelegramError as exc:
                if permanent(exc):
                    raise
                entry.attempts = 1
                entry.not_before = time.monotonic() + retry_wait(exc, 1, self.max_backoff)
                log.warning("a message was not accepted (%s); queued, next try in %.1f s", _reason(exc), _wait(entry))
                await self._enqueue(entry)
                return None
        raise BadRequest("the chat moved twice")

    async def _post(self, entry: Outgoing, markup: InlineKeyboardMarkup | None = None) -> int:
        """One try. Markup Telegram refuses ("can't parse entities") is sent once more as plain text."""
        try:
            return await post_message(
                self.bot, entry.chat_id, entry.text, markup or entry.markup, reply_to=entry.reply_to
            )
        except BadRequest as exc:
            if "parse entities" not in str(exc).lower():
                raise
            log.error("Telegram refused a message's HTML (%s): sent as plain text instead", exc)
            return await post_message(
                self.bot,
                entry.chat_id,
                plain(entry.text),
                markup or entry.markup,
                reply_to=entry.reply_to,
                html_mode=False,
            )

    async def _enqueue(self, entry: Outgoing) -> None:
        """Queued in memory (in order) and kept in SQLite; returns once it is stored (or the storage
        refused it: memory only)."""
        self._queues.setdefault(entry.chat_id, deque()).append(entry)
        self._kick(entry.chat_id)
        blob = seal_bytes(entry.to_json(), self.secret)
        now = dt.datetime.now(dt.UTC)
        row = await self.store.store(lambda s: s.outbox_add(entry.pid, blob, now))
        if row is None:
            return  # storage unavailable (logged by Services.store): kept in memory only
        if entry.finished:  # delivered (or given up) while it was being stored
            await self.store.store(lambda s: s.outbox_done(row))
        else:
            entry.row = row

    def _kick(self, chat_id: int) -> None:
        if self._closed:
            return
        worker = self._workers.get(chat_id)
        if worker is None or worker.done():
            self._workers[chat_id] = asyncio.create_task(self._work(chat_id), name=f"outbox-{chat_id}")

    async def _work(self, chat_id: int) -> None:
        """One chat's queue, oldest first, until it is empty."""
        queue = self._queues.get(chat_id)
        try:
            while queue:
                entry = queue[0]
                pause = entry.not_before - time.monotonic()
                if pause > 0:
                    await asyncio.sleep(pause)
                if time.time() - entry.created > self.max_age:
                    log.error(
                        "a message waited %.0f s without Telegram taking it (%d tries): given up",
                        time.time() - entry.created,
                        entry.attempts,
                    )
                    await self._finish(queue.popleft(), None, TimeoutError("given up"))
                    continue
                try:
                    async with self._retry_slots:
                        message_id = await self._post(entry)
                except ChatMigrated as exc:
                    log.warning("a chat moved to a new id (a group became a supergroup): sending there")
                    for waiting in queue:
                        if waiting.chat_id == chat_id:
                            waiting.chat_id = exc.new_chat_id
                    continue
                except Forbidden as exc:
                    log.info("a person blocked the bot: %d queued message(s) dropped", len(queue))
                    pids = {e.pid for e in queue if e.pid}
                    while queue:
                        await self._finish(queue.popleft(), None, exc)
                    for pid in pids:
                        if self.on_blocked is not None:
                            await self.on_blocked(pid)
                    break
                except BadRequest as exc:
                    log.error("Telegram refused a queued message for good (%s): dropped", exc)
                    await self._finish(queue.popleft(), None, exc)
                except TelegramError as exc:
                    entry.attempts += 1
                    entry.not_before = time.monotonic() + retry_wait(exc, entry.attempts, self.max_backoff)
                    if entry.attempts in (2, 5) or entry.attempts % 20 == 0:
                        log.warning(
                            "a queued message is still not accepted after %d tries (%s); next in %.1f s",
                            entry.attempts,
                            _reason(exc),
                            _wait(entry),
                        )
                else:
                    if entry.attempts >= 2:
                        log.info("a queued message was delivered after %d tries", entry.attempts + 1)
                    await self._finish(queue.popleft(), message_id, None)
        finally:
            if queue is not None and not queue and self._queues.get(chat_id) is queue:
                del self._queues[chat_id]
            if self._workers.get(chat_id) is asyncio.current_task():
                del self._workers[chat_id]

    async def _finish(self, entry: Outgoing, message_id: int | None, error: BaseException | None) -> None:
        entry.finished = True
        if entry.row is not None:
            row = entry.row
            await self.store.store(lambda s: s.outbox_done(row))
        if entry.then is not None and self.after is not None:
            try:
                await self.after(entry, message_id, error)
            except Exception:
                log.exception("the follow-up of a queued message failed")

    # ------------------------------------------------------------------ life cycle

    async def recover(self) -> int:
        """Queue again what the last run left in SQLite (oldest first); how many."""
        rows = await self.store.store(lambda s: s.outbox_rows())
        count = 0
        for row, _ts, blob in rows or []:
            data = open_sealed(blob, self.secret)
            entry = None
            if data is not None:
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    entry = Outgoing.from_json(data, row)
            if entry is None:
                log.error("a queued message cannot be read (another KOMEK_SECRET?): dropped")
                await self.store.store(lambda s, row=row: s.outbox_done(row))  # type: ignore[misc]
                continue
            if any(e.row == row for q in self._queues.values() for e in q):
                continue
            self._queues.setdefault(entry.chat_id, deque()).append(entry)
            count += 1
        for chat_id in list(self._queues):
            self._kick(chat_id)
        if count:
            log.info("%d message(s) queued before the restart will be sent", count)
        return count

    async def close(self) -> None:
        """Stop the workers; what is queued stays in SQLite for the next start."""
        self._closed = True
        workers = list(self._workers.values())
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        memory_only = sum(1 for q in self._queues.values() for e in q if e.row is None and not e.finished)
        if memory_only:
            log.error("%d queued message(s) could not be stored and are lost at shutdown", memory_only)


def _reason(exc: TelegramError) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]


def _wait(entry: Outgoing) -> float:
    return max(0.0, entry.not_before - time.monotonic())

"""Thin Telegram callbacks: read the update → dialogue → render → reply, then record (privately).

Every callback tolerates missing fields (edits, channel posts and button presses have no `message`),
and the user never sees a traceback: errors end in the error handler, which replies kindly.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from telegram import Chat, Message, Update, User
from telegram.constants import ChatType, ParseMode
from telegram.error import Forbidden, TelegramError
from telegram.ext import ContextTypes

from bot.dialogue import (
    FALLBACK,
    MENU,
    SECTION,
    SUGGEST,
    Knowledge,
    Reply,
    contacts_reply,
    forget_prompt,
    info_reply,
    language_picker,
    menu_reply,
    reply_to_button,
    reply_to_text,
    split_message,
    start_reply,
)
from bot.flood import FloodGuard
from bot.i18n import choose_language
from bot.keyboards import inline_keyboard
from bot.outbox import Outbox, Then, post_message
from bot.privacy import pseudonym, scrub
from bot.storage import Storage, StorageError

# RetryAfter.retry_after becomes a timedelta in the next PTB major version; the outbox handles both,
# so opt in now (this also silences PTB's deprecation warning on every 429).
os.environ.setdefault("PTB_TIMEDELTA", "1")
log = logging.getLogger("komek")
T = TypeVar("T")
__all__ = ["Services", "post_message", "send_reply", "services"]
STORAGE_QUIET_SECONDS = 60.0
STORAGE_REOPEN_SECONDS = 30.0  # a database that could not be opened is tried again this often
CONSENT_SECONDS = 300.0  # "ask a person": the next message within this time goes to the operators


class Consents:
    """Who agreed to "ask a person" and until when: pseudonym -> (monotonic deadline, chat id).

    The consent covers the next message in that chat within CONSENT_SECONDS; any other step
    (a command, a button, an edit, a photo) withdraws it. Kept here, not in PTB's user_data (which
    keeps a dict per user for ever); expired entries are dropped as new ones come, so it holds at
    most the consents of the last CONSENT_SECONDS."""

    def __init__(self, seconds: float = CONSENT_SECONDS) -> None:
        self.seconds = seconds
        self._given: dict[str, tuple[float, int]] = {}  # insertion order = deadline order

    def __len__(self) -> int:
        return len(self._given)

    def give(self, pid: str, chat_id: int, now: float) -> None:
        self._given.pop(pid, None)
        self._given[pid] = (now + self.seconds, chat_id)
        self._expire(now)

    def withdraw(self, pid: str) -> None:
        self._given.pop(pid, None)

    def take(self, pid: str, chat_id: int, now: float) -> bool:
        """True (and used up) when `pid` agreed, in this chat, less than `seconds` ago."""
        self._expire(now)
        given = self._given.pop(pid, None)
        return given is not None and given[0] > now and given[1] == chat_id

    def _expire(self, now: float) -> None:
        while self._given:
            pid, (deadline, _) = next(iter(self._given.items()))
            if deadline > now:
                break
            del self._given[pid]


@dataclass
class Services:
    """Everything the callbacks need, in one typed object kept in bot_data."""

    knowledge: Knowledge
    secret: bytes
    flood: FloodGuard
    db_path: Path
    config_path: Path
    faq_dir: Path | None
    storage: Storage | None = None
    storage_down: bool = False
    outbox: Outbox | None = None
    consents: Consents = field(default_factory=Consents)
    operator_chats: set[int] = field(default_factory=set)  # chats hand-offs went to (replies come from there)
    extra: dict[str, Any] = field(default_factory=dict)
    _storage_failed_at: float = field(default=0.0, init=False, repr=False)
    _storage_failures: int = field(default=0, init=False, repr=False)
    _opened_at: float = field(default=0.0, init=False, repr=False)
    _opening: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)

    async def open_storage(self, force: bool = False) -> Storage | None:
        """The database, opened now if it could not be before (at most every STORAGE_REOPEN_SECONDS
        unless `force`: /forget must know whether it can delete). None while it cannot be opened."""
        if self.storage is not None:
            return self.storage
        if not force and time.monotonic() - self._opened_at < STORAGE_REOPEN_SECONDS:
            return None
        async with self._opening:
            if self.storage is None:
                self._opened_at = time.monotonic()
                try:
                    storage = await Storage.open(self.db_path)
                except StorageError as exc:
                    if not self.storage_down:
                        log.error("storage unavailable, answering without recording: %s", exc)
                    self.storage_down = True
                    self._storage_failed_at = time.monotonic()
                    return None
                self.storage = storage
                if self._opened_at and self.storage_down:
                    log.warning("storage opened: recording again")
                    self.storage_down = False
                    if self.outbox is not None:
                        asyncio.get_running_loop().create_task(self.outbox.recover())
        return self.storage

    async def store(self, action: Callable[[Storage], Awaitable[T]]) -> T | None:
        """Run a storage action; on failure log once per outage (not once per message) and carry on.

        An outage ends only after STORAGE_QUIET_SECONDS without a failure: on a read-only database
        reads still work, and on a full disk an UPDATE may fit where an INSERT does not, so one
        success between failures does not mean the storage is back (that flapping used to log one
        error per message). A database that could not be opened is tried again now and then.
        """
        if self.storage is None and await self.open_storage() is None:
            return None
        assert self.storage is not None
        try:
            result = await action(self.storage)
        except StorageError as exc:
            self._storage_failed_at = time.monotonic()
            self._storage_failures += 1
            if not self.storage_down:
                log.error("storage unavailable, answering without recording until it works again: %s", exc)
            self.storage_down = True
            return None
        if self.storage_down and time.monotonic() - self._storage_failed_at >= STORAGE_QUIET_SECONDS:
            log.warning("storage works again (%d storage action(s) failed meanwhile)", self._storage_failures)
            self.storage_down = False
            self._storage_failures = 0
        return result


def services(context: ContextTypes.DEFAULT_TYPE) -> Services:
    return cast(Services, context.bot_data["services"])


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# ---------------------------------------------------------------- sending


async def send_text(
    context: ContextTypes.DEFAULT_TYPE,
    chat_id: int,
    text: str,
    reply: Reply | None = None,
    *,
    pid: str | None = None,
    reply_to: int | None = None,
    then: Then | None = None,
) -> bool:
    """Send `text` (HTML, split at Telegram's limit; `reply`'s buttons under the last part) through
    the outbox: True when all of it was delivered now, False when some is queued for later (it is
    kept and retried until delivered; `then` is done after the last part, see bot/outbox.py).
    Refusals for good (blocked, bad request) raise."""
    svc = services(context)
    parts = split_message(text) if text else []
    markup = inline_keyboard(reply.buttons) if reply is not None else None
    delivered = True
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if svc.outbox is None:  # not started (a bare Application in a test): one plain try
            await post_message(context.bot, chat_id, part, markup if last else None, reply_to=reply_to)
            continue
        sent = await svc.outbox.send(
            chat_id, part, markup if last else None, pid=pid, reply_to=reply_to, then=then if last else None
        )
        delivered = delivered and sent is not None
    return delivered


async def send_reply(context: ContextTypes.DEFAULT_TYPE, chat_id: int, reply: Reply, pid: str | None = None) -> bool:
    """A Reply to a chat (see send_text): True when delivered now, False when queued for later."""
    return await send_text(context, chat_id, reply.text, reply, pid=pid)


async def edit_or_send(
    context: ContextTypes.DEFAULT_TYPE, message: Message | None, chat_id: int, reply: Reply, pid: str
) -> None:
    """Menu navigation edits the menu in place; anything else (or a failed edit) is a new message."""
    svc = services(context)
    if message is not None and len(reply.text) <= 4096 and not (svc.outbox and svc.outbox.waiting(chat_id)):
        try:
            await message.edit_text(reply.text, parse_mode=ParseMode.HTML, reply_markup=inline_keyboard(reply.buttons))
            return
        except Forbidden:
            raise
        except TelegramError:
            pass  # too old to edit, unchanged, or Telegram busy: a new message (queued if need be)
    await send_reply(context, chat_id, reply, pid)


# ---------------------------------------------------------------- helpers


def _who(update: Update) -> tuple[User, Chat] | None:
    user, chat = update.effective_user, update.effective_chat
    if user is None or chat is None:
        return None
    return user, chat


async def _language(svc: Services, pid: str, user: User, text: str) -> str:
    stored = await svc.store(lambda s: s.get_language(pid))
    k = svc.knowledge
    return choose_language(stored, user.language_code, text, k.config.languages, k.config.default_language)


async def _record(svc: Services, pid: str, reply: Reply, text: str | None) -> None:
    """The user was here, the reply's event, and the question when the FAQ could not answer it
    (scrubbed): one transaction."""
    unanswered = None
    if text is not None and reply.kind in (FALLBACK, SUGGEST):
        unanswered = (scrub(text), [(c.entry_id, c.score) for c in reply.candidates[:3]])
    now = _now()
    await svc.store(
        lambda s: s.record_turn(pid, reply.kind, reply.entry_id, reply.score, reply.lang, now, unanswered, reply.crisis)
    )


def _addressed(message: Message, chat: Chat, bot_username: str, bot_id: int) -> tuple[bool, str]:
    """In groups the bot answers only messages that mention it or reply to it."""
    text = message.text or ""
    if chat.type == ChatType.PRIVATE:
        return True, text
    # Searched in the text itself, not in text.lower(): lowering can change the length ("İ" becomes
    # two characters), and an index into the lowered text then cut the question in the wrong place.
    found = re.search(re.escape(f"@{bot_username}"), text, re.IGNORECASE) if bot_username else None
    if found is not None:
        return True, (text[: found.start()] + text[found.end() :]).strip()
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == bot_id:
        return True, text
    return False, text


def _in_group(chat: Chat) -> bool:
    return chat.type in (ChatType.GROUP, ChatType.SUPERGROUP)


def _with_group_hint(svc: Services, reply: Reply, chat: Chat) -> Reply:
    if not _in_group(chat):
        return reply
    hint = svc.knowledge.t("group_hint", reply.lang)
    return Reply(**{**reply.__dict__, "text": f"{reply.text}\n\n<i>{hint}</i>"})


@dataclass(frozen=True)
class _Turn:
    message: Message
    user: User
    chat: Chat
    svc: Services
    pid: str


def _turn(update: Update, context: ContextTypes.DEFAULT_TYPE, need_text: bool) -> _Turn | None:
    """The parts every message callback needs, or None for updates without them (e.g. channel posts)."""
    message, who = update.effective_message, _who(update)
    if message is None or who is None or (need_text and message.text is None):
        return None
    svc = services(context)
    return _Turn(message, who[0], who[1], svc, pseudonym(who[0].id, svc.secret))


# ---------------------------------------------------------------- callbacks


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A free-text question (new or edited)."""
    turn = _turn(update, context, need_text=True)
    if turn is None:
        return
    user, chat, svc, pid = turn.user, turn.chat, turn.svc, turn.pid
    ok, text = _addressed(turn.message, chat, context.bot.username or "", context.bot.id)
    if not ok:
        return
    edited = update.edited_message is not None
    if edited:
        svc.consents.withdraw(pid)  # an edit is never the question for a person
    verdict = svc.flood.hit(pid, time.monotonic())
    if verdict == "drop":
        return
    lang = await _language(svc, pid, user, text)
    k = svc.knowledge
    if verdict == "warn":
        await send_reply(context, chat.id, info_reply(k, "slow_down", lang), pid)
        return
    if not edited and not _in_group(chat) and svc.consents.take(pid, chat.id, time.monotonic()):
        from bot.staff import forward_to_operators  # staff imports this module

        await forward_to_operators(context, svc, pid, chat.id, lang, text)
        await _record(svc, pid, info_reply(k, "ask_sent", lang), None)
        return
    reply = _with_group_hint(svc, reply_to_text(k, text, lang), chat)
    await send_reply(context, chat.id, reply, pid)
    await _record(svc, pid, reply, text)


async def on_non_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stickers, photos, voice, video, files, locations, contacts: the bot reads text only."""
    turn = _turn(update, context, need_text=False)
    if turn is None:
        return
    turn.svc.consents.withdraw(turn.pid)  # the next message was not the question: consent ends
    if _in_group(turn.chat):
        return  # never chatter in a group about someone's photo
    message, user, chat, svc, pid = turn.message, turn.user, turn.chat, turn.svc, turn.pid
    if svc.flood.hit(pid, time.monotonic()) != "ok":
        return
    lang = await _language(svc, pid, user, "")
    k = svc.knowledge
    reply = info_reply(k, "non_text", lang)
    if message.voice is not None or message.audio is not None or message.video_note is not None:
        reply = Reply(**{**reply.__dict__, "text": f"{reply.text}\n\n{k.t('voice_extra', lang)}"})
    await send_reply(context, chat.id, reply, pid)
    await _record(svc, pid, Reply(**{**reply.__dict__, "kind": "non_text"}), None)


async def on_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start /menu /language /contacts /help /forget."""
    turn = _turn(update, context, need_text=True)
    if turn is None:
        return
    user, chat, svc, pid = turn.user, turn.chat, turn.svc, turn.pid
    svc.consents.withdraw(pid)  # a command is another step: "ask a person" is off
    k = svc.knowledge
    if svc.flood.hit(pid, time.monotonic()) == "drop":
        return
    command = (turn.message.text or "").split()[0].lstrip("/").split("@")[0].lower()
    payload = " ".join(context.args or [])
    stored = await svc.store(lambda s: s.get_language(pid))
    lang = choose_language(stored, user.language_code, "", k.config.languages, k.config.default_language)
    if command == "start":
        reply = start_reply(k, payload, lang)
        if stored is None and reply.set_language is None and reply.entry_id is None:
            reply = language_picker(k, lang)
    elif command == "menu":
        reply = menu_reply(k, lang)
    elif command == "language":
        reply = language_picker(k, lang)
    elif command == "contacts":
        reply = contacts_reply(k, lang, _now())
    elif command == "forget":
        reply = forget_prompt(k, lang)
    else:
        reply = info_reply(k, "help", lang)
    if reply.set_language:
        chosen = reply.set_language
        await svc.store(lambda s: s.set_language(pid, chosen, _now()))
    await send_reply(context, chat.id, reply, pid)
    await _record(svc, pid, Reply(**{**reply.__dict__, "kind": f"cmd_{command}"[:20]}), None)


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Every inline button; every press is answered so the phone stops its spinner."""
    query, who = update.callback_query, _who(update)
    if query is None:
        return
    with contextlib.suppress(TelegramError):  # a very old button, a 429, a blip: still handle the press
        await query.answer()
    if who is None:
        return
    user, chat = who
    svc = services(context)
    k = svc.knowledge
    pid = pseudonym(user.id, svc.secret)
    svc.consents.withdraw(pid)  # any press but "yes, ask a person" (below) ends a consent
    if svc.flood.hit(pid, time.monotonic()) == "drop":
        return
    lang = await _language(svc, pid, user, "")
    now = _now()
    reply = reply_to_button(k, query.data or "", lang, now)
    if reply.set_language:
        chosen = reply.set_language
        await svc.store(lambda s: s.set_language(pid, chosen, now))
    if reply.await_question and not _in_group(chat):
        svc.consents.give(pid, chat.id, time.monotonic())
    if reply.feedback:
        entry_id, helpful = reply.feedback
        await svc.store(lambda s: s.record_feedback(pid, entry_id, helpful, now))
    if reply.forget:
        await _forget(context, svc, pid, chat.id, reply.lang)
        return  # nothing is recorded after an erase
    target = query.message if isinstance(query.message, Message) else None
    if reply.kind in (MENU, SECTION) and target is not None:
        await edit_or_send(context, target, chat.id, reply, pid)
    else:
        await send_reply(context, chat.id, reply, pid)
    kind = reply.kind if reply.entry_id else f"btn_{reply.kind}"
    await _record(svc, pid, Reply(**{**reply.__dict__, "kind": kind}), None)


async def _forget(context: ContextTypes.DEFAULT_TYPE, svc: Services, pid: str, chat_id: int, lang: str) -> None:
    """Erase everything stored about `pid`, and say exactly that; when the database cannot be opened
    (tried again now) or refuses the delete, say it did not work: never "deleted" then."""
    k = svc.knowledge
    erased = None
    if await svc.open_storage(force=True) is not None:
        erased = await svc.store(lambda s: s.forget_user(pid))
    if erased is None:
        await send_reply(context, chat_id, info_reply(k, "error_reply", lang))
        return
    what = k.t(
        "forget_what",
        lang,
        events=str(erased.get("events", 0)),
        questions=str(erased.get("unanswered", 0)),
        feedback=str(erased.get("feedback", 0)),
    )
    await send_reply(context, chat_id, info_reply(k, "forget_done", lang, what=what))


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log first (scrubbed by the log filter), then tell the user something kind with the contacts."""
    error = context.error
    if isinstance(error, Forbidden):
        user = update.effective_user if isinstance(update, Update) else None
        if user is not None:
            svc = services(context)
            pid = pseudonym(user.id, svc.secret)
            await svc.store(lambda s: s.set_unsubscribed(pid))
        log.info("a user blocked the bot or was deactivated: marked and unsubscribed, no reply sent")
        return
    log.error("error while handling an update", exc_info=error)
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    svc = services(context)
    lang = svc.knowledge.config.default_language
    if update.effective_user is not None:
        pid = pseudonym(update.effective_user.id, svc.secret)
        lang = await _language(svc, pid, update.effective_user, "")
    try:
        await send_reply(context, update.effective_chat.id, info_reply(svc.knowledge, "error_reply", lang))
    except Exception:  # the kind message itself failed: nothing more to do but log
        log.warning("could not send the error reply either")

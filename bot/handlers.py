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

from telegram import Bot, Chat, InlineKeyboardMarkup, Message, Update, User
from telegram.constants import ChatType, ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut
from telegram.ext import ContextTypes
from telegram.request import BaseRequest

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
from bot.privacy import pseudonym, scrub
from bot.storage import Storage, StorageError

# RetryAfter.retry_after becomes a timedelta in the next PTB major version; _with_retries handles both,
# so opt in now (this also silences PTB's deprecation warning on every 429).
os.environ.setdefault("PTB_TIMEDELTA", "1")
log = logging.getLogger("komek")
T = TypeVar("T")
DEFAULT_NONE = BaseRequest.DEFAULT_NONE  # PTB's "not given": ExtBot puts the app's Defaults in its place
SEND_ATTEMPTS = 4
RETRY_AFTER_CAP = 30.0
STORAGE_QUIET_SECONDS = 60.0


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
    extra: dict[str, Any] = field(default_factory=dict)
    _storage_failed_at: float = field(default=0.0, init=False, repr=False)
    _storage_failures: int = field(default=0, init=False, repr=False)

    async def store(self, action: Callable[[Storage], Awaitable[T]]) -> T | None:
        """Run a storage action; on failure log once per outage (not once per message) and carry on.

        An outage ends only after STORAGE_QUIET_SECONDS without a failure: on a read-only database
        reads still work, and on a full disk an UPDATE may fit where an INSERT does not, so one
        success between failures does not mean the storage is back (that flapping used to log one
        error per message).
        """
        if self.storage is None:
            return None
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


async def _with_retries(call: Callable[[], Awaitable[T]]) -> T:
    """Telegram flood limits (429) and network blips: wait as told and try again, a few times."""
    delay = 0.5
    for attempt in range(SEND_ATTEMPTS):
        try:
            return await call()
        except RetryAfter as exc:
            if attempt == SEND_ATTEMPTS - 1:
                raise
            wait = exc.retry_after
            seconds = wait.total_seconds() if isinstance(wait, dt.timedelta) else float(wait)
            await asyncio.sleep(min(seconds, RETRY_AFTER_CAP))
        except (TimedOut, NetworkError) as exc:
            if isinstance(exc, BadRequest | Forbidden) or attempt == SEND_ATTEMPTS - 1:
                raise
            await asyncio.sleep(delay)
            delay *= 2
    raise RuntimeError("unreachable")


async def post_message(bot: Bot, chat_id: int, text: str, markup: InlineKeyboardMarkup | None) -> None:
    """`bot.send_message(chat_id, text, parse_mode=HTML, reply_markup=markup)` without turning
    Telegram's answer into a Message nobody reads here: with an answer's entities and keyboard,
    that parsing cost about a tenth of a message's CPU. Same request (Bot._post is what
    send_message calls, PTB 22; the app's Defaults still fill link_preview_options), same errors."""
    await bot._post(
        "sendMessage",
        {
            "chat_id": chat_id,
            "text": text,
            "parse_mode": ParseMode.HTML,
            "reply_markup": markup,
            "link_preview_options": DEFAULT_NONE,
            "disable_notification": DEFAULT_NONE,
            "protect_content": DEFAULT_NONE,
        },
    )


async def send_reply(context: ContextTypes.DEFAULT_TYPE, chat_id: int, reply: Reply) -> None:
    parts = split_message(reply.text) if reply.text else []
    markup = inline_keyboard(reply.buttons)
    for i, part in enumerate(parts):
        last = i == len(parts) - 1

        async def call(part: str = part, last: bool = last) -> None:
            await post_message(context.bot, chat_id, part, markup if last else None)

        await _with_retries(call)


async def edit_or_send(context: ContextTypes.DEFAULT_TYPE, message: Message | None, chat_id: int, reply: Reply) -> None:
    """Menu navigation edits the menu in place; anything else (or a failed edit) is a new message."""
    if message is not None and len(reply.text) <= 4096:
        try:
            await _with_retries(
                lambda: message.edit_text(
                    reply.text, parse_mode=ParseMode.HTML, reply_markup=inline_keyboard(reply.buttons)
                )
            )
            return
        except BadRequest:
            pass  # too old to edit, or unchanged: fall back to a new message
    await send_reply(context, chat_id, reply)


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
    verdict = svc.flood.hit(pid, time.monotonic())
    if verdict == "drop":
        return
    lang = await _language(svc, pid, user, text)
    k = svc.knowledge
    if verdict == "warn":
        await send_reply(context, chat.id, info_reply(k, "slow_down", lang))
        return
    if context.user_data is not None and context.user_data.pop("await_question", False) and not _in_group(chat):
        from bot.staff import forward_to_operators  # staff imports this module

        await forward_to_operators(context, svc, pid, chat.id, lang, text)
        await _record(svc, pid, info_reply(k, "ask_sent", lang), None)
        return
    reply = _with_group_hint(svc, reply_to_text(k, text, lang), chat)
    await send_reply(context, chat.id, reply)
    await _record(svc, pid, reply, text)


async def on_non_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stickers, photos, voice, video, files, locations, contacts: the bot reads text only."""
    turn = _turn(update, context, need_text=False)
    if turn is None or _in_group(turn.chat):
        return  # never chatter in a group about someone's photo
    message, user, chat, svc, pid = turn.message, turn.user, turn.chat, turn.svc, turn.pid
    if svc.flood.hit(pid, time.monotonic()) != "ok":
        return
    lang = await _language(svc, pid, user, "")
    k = svc.knowledge
    reply = info_reply(k, "non_text", lang)
    if message.voice is not None or message.audio is not None or message.video_note is not None:
        reply = Reply(**{**reply.__dict__, "text": f"{reply.text}\n\n{k.t('voice_extra', lang)}"})
    await send_reply(context, chat.id, reply)
    await _record(svc, pid, Reply(**{**reply.__dict__, "kind": "non_text"}), None)


async def on_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start /menu /language /contacts /help /forget."""
    turn = _turn(update, context, need_text=True)
    if turn is None:
        return
    user, chat, svc, pid = turn.user, turn.chat, turn.svc, turn.pid
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
    await send_reply(context, chat.id, reply)
    await _record(svc, pid, Reply(**{**reply.__dict__, "kind": f"cmd_{command}"[:20]}), None)


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Every inline button; every press is answered so the phone stops its spinner."""
    query, who = update.callback_query, _who(update)
    if query is None:
        return
    with contextlib.suppress(BadRequest, NetworkError):  # a very old button: still handle the press
        await query.answer()
    if who is None:
        return
    user, chat = who
    svc = services(context)
    k = svc.knowledge
    pid = pseudonym(user.id, svc.secret)
    if svc.flood.hit(pid, time.monotonic()) == "drop":
        return
    lang = await _language(svc, pid, user, "")
    now = _now()
    reply = reply_to_button(k, query.data or "", lang, now)
    if reply.set_language:
        chosen = reply.set_language
        await svc.store(lambda s: s.set_language(pid, chosen, now))
    if reply.await_question and context.user_data is not None:
        context.user_data["await_question"] = True
    if reply.feedback:
        entry_id, helpful = reply.feedback
        await svc.store(lambda s: s.record_feedback(pid, entry_id, helpful, now))
    if reply.forget:
        erased = await svc.store(lambda s: s.forget_user(pid))
        if erased is None and svc.storage is not None:
            # The database refused the delete (read-only, disk full): never say "deleted" then.
            await send_reply(context, chat.id, info_reply(k, "error_reply", reply.lang))
            return
        counts = erased or {}
        what = k.t(
            "forget_what",
            reply.lang,
            events=str(counts.get("events", 0)),
            questions=str(counts.get("unanswered", 0)),
            feedback=str(counts.get("feedback", 0)),
        )
        await send_reply(context, chat.id, info_reply(k, "forget_done", reply.lang, what=what))
        return  # nothing is recorded after an erase
    target = query.message if isinstance(query.message, Message) else None
    if reply.kind in (MENU, SECTION) and target is not None:
        await edit_or_send(context, target, chat.id, reply)
    else:
        await send_reply(context, chat.id, reply)
    kind = reply.kind if reply.entry_id else f"btn_{reply.kind}"
    await _record(svc, pid, Reply(**{**reply.__dict__, "kind": kind}), None)


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log first (scrubbed by the log filter), then tell the user something kind with the contacts."""
    error = context.error
    if isinstance(error, Forbidden):
        user = update.effective_user if isinstance(update, Update) else None
        if user is not None:
            svc = services(context)
            pid = pseudonym(user.id, svc.secret)
            await svc.store(lambda s: s.mark_blocked(pid))
        log.info("a user blocked the bot or was deactivated: marked, no reply sent")
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

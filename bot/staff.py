"""Staff side of the bot: live content reload, admin commands, operators' replies, announcements.

Admin commands answer only the Telegram ids listed in config.yaml → telegram.admins; anyone else
gets the ordinary help reply, so nothing reveals that staff commands exist.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import html
import logging
from pathlib import Path

from telegram import Message, Update
from telegram.constants import ParseMode
from telegram.error import Forbidden, TelegramError
from telegram.ext import ContextTypes

from bot.content import load_knowledge, resolve_faq_dir
from bot.dialogue import info_reply, office_open, split_message
from bot.handlers import Services, send_reply, services
from bot.privacy import pseudonym, scrub, seal, unseal
from bot.yamlio import file_signature

log = logging.getLogger("komek")
RELOAD_SECONDS = 30  # "within a minute" of a saved edit
QUESTION_KINDS = ("answer", "did_you_mean", "fallback", "urgent", "smalltalk")


# ---------------------------------------------------------------- live reload


def content_fingerprint(config_path: Path, faq_dir: Path) -> str:
    """A hash of config.yaml and every FAQ file: changes when staff save any of them. Read as safely
    as the files themselves (capped, never blocking on a pipe or a device named *.yaml)."""
    digest = hashlib.sha256()
    for path in [config_path, *sorted(faq_dir.glob("*.yaml"))]:
        digest.update(path.name.encode())
        digest.update(file_signature(path))
    return digest.hexdigest()


def _faq_dir(svc: Services) -> Path:
    return resolve_faq_dir(svc.knowledge.config, svc.config_path, svc.faq_dir)


async def reload_content(context: ContextTypes.DEFAULT_TYPE, force: bool = False) -> str:
    """Load the files again if they changed. A broken edit keeps the last good content and sends the
    `check` output to the admins (once per broken version, not every 30 seconds)."""
    svc = services(context)
    fingerprint = await asyncio.to_thread(content_fingerprint, svc.config_path, _faq_dir(svc))
    if not force and fingerprint == svc.extra.get("fingerprint"):
        return "unchanged"
    svc.extra["fingerprint"] = fingerprint
    today = dt.datetime.now(dt.UTC).date()
    try:
        loaded = await asyncio.to_thread(load_knowledge, svc.config_path, svc.faq_dir, today)
    except Exception as exc:  # ContentError, or anything a hostile file could cause: keep serving
        problems = getattr(exc, "problems", None)
        lines = [str(p) for p in problems] if problems else [f"{type(exc).__name__}: {exc}"]
        text = "⚠️ FAQ not reloaded, the bot keeps the last good version:\n" + "\n".join(lines[:30])
        log.error("content reload refused: %d problem(s); keeping the last good version", len(lines))
        await _tell_admins(context, svc, text)
        return "refused:\n" + "\n".join(lines)
    svc.knowledge = loaded.knowledge  # one assignment: every later message sees the new version whole
    log.info("content reloaded: %d entries", len(loaded.knowledge.faq.entries))
    return f"reloaded: {len(loaded.knowledge.faq.entries)} entries"


async def reload_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    await reload_content(context)


async def _tell_admins(context: ContextTypes.DEFAULT_TYPE, svc: Services, text: str) -> None:
    for admin in svc.knowledge.config.telegram.admins:
        for part in split_message(html.escape(text)):
            try:
                await context.bot.send_message(admin, part, parse_mode=ParseMode.HTML)
            except TelegramError as exc:
                log.warning("could not alert an admin: %s", exc)


# ---------------------------------------------------------------- admin commands


def is_admin(svc: Services, update: Update) -> bool:
    user = update.effective_user
    return user is not None and user.id in svc.knowledge.config.telegram.admins


async def _not_for_you(update: Update, context: ContextTypes.DEFAULT_TYPE, svc: Services) -> None:
    """The ordinary help reply: a non-admin learns nothing about staff commands."""
    chat = update.effective_chat
    if chat is not None:
        await send_reply(context, chat.id, info_reply(svc.knowledge, "help", svc.knowledge.config.default_language))


async def on_admin(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/reload /stats /unanswered /announce (admins only)."""
    svc = services(context)
    message, chat = update.effective_message, update.effective_chat
    if message is None or chat is None or message.text is None:
        return
    if not is_admin(svc, update):
        await _not_for_you(update, context, svc)
        return
    command = message.text.split()[0].lstrip("/").split("@")[0].lower()
    if command == "reload":
        text = await reload_content(context, force=True)
    elif command == "stats":
        text = await stats_text(svc, dt.datetime.now(dt.UTC))
    elif command == "unanswered":
        rows = await svc.store(lambda s: s.latest_unanswered(15)) or []
        text = "Latest unanswered questions (scrubbed):\n" + "\n".join(
            f"• {ts[:16]} [{lang} {kind}] {q}" for ts, lang, kind, q in rows
        )
        if not rows:
            text = "No unanswered questions stored."
    elif command == "announce":
        body = message.text.partition(" ")[2].strip()
        text = await announce(context, svc, body) if body else ANNOUNCE_HELP
    else:
        text = "Admin commands: /reload /stats /unanswered /announce"
    for part in split_message(html.escape(text)):
        await context.bot.send_message(chat.id, part, parse_mode=ParseMode.HTML)


async def stats_text(svc: Services, now: dt.datetime) -> str:
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    out = []
    for label, since in (("Today", today), ("Last 7 days", now - dt.timedelta(days=7))):
        stats = await svc.store(lambda s, since=since: s.stats(since))  # type: ignore[misc]
        if stats is None:
            return "Statistics are unavailable: the database cannot be read."
        kinds = stats["kinds"]
        total = sum(kinds.get(k, 0) for k in QUESTION_KINDS)

        def pct(kind: str, kinds: dict[str, int] = kinds, total: int = total) -> str:
            return f"{100 * kinds.get(kind, 0) / total:.0f}%" if total else "–"

        top = ", ".join(f"{e} ({n})" for e, n in stats["top"]) or "–"
        out.append(
            f"{label}: {total} questions; answered {pct('answer')}, did-you-mean {pct('did_you_mean')}, "
            f"fallback {pct('fallback')}; urgent {kinds.get('urgent', 0)}; "
            f"👍 {stats['helpful']} / 👎 {stats['not_helpful']}\n  top: {top}"
        )
    return "\n".join(out)


# ---------------------------------------------------------------- a person to talk to


async def forward_to_operators(
    context: ContextTypes.DEFAULT_TYPE, svc: Services, pid: str, chat_id: int, lang: str, text: str
) -> None:
    """The user consented: their question goes to the operators' chat; the mapping lives in SQLite."""
    k = svc.knowledge
    ops = k.config.telegram.operators_chat
    if ops is None:
        return
    header = f"🙋 Question [{lang}] — reply to this message to answer the person"
    sent: Message = await context.bot.send_message(ops, f"{header}\n\n{text[:3500]}")
    now = dt.datetime.now(dt.UTC)
    sealed = seal(chat_id, svc.secret)
    await svc.store(lambda s: s.record_handoff(pid, sealed, sent.message_id, lang, now))
    key = "ask_sent" if office_open(k.config, now) else "ask_sent_closed"
    await send_reply(context, chat_id, info_reply(k, key, lang))


async def on_operator_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """In the operators' chat: a reply to a forwarded question goes back to that person."""
    svc = services(context)
    message = update.effective_message
    if message is None or message.text is None or message.reply_to_message is None:
        return
    handoff = await svc.store(lambda s: s.handoff_for(message.reply_to_message.message_id))  # type: ignore[union-attr]
    if handoff is None:
        return  # staff talking among themselves
    _, sealed, lang = handoff
    chat_id = unseal(sealed, svc.secret)
    if chat_id is None:
        await message.reply_text("Could not deliver: this question's address is no longer readable.")
        return
    k = svc.knowledge
    reply = info_reply(k, "operator_reply", lang or k.config.default_language, text=html.escape(message.text))
    try:
        await send_reply(context, chat_id, reply)
        await message.reply_text("✓ delivered")
    except Forbidden:
        await message.reply_text("Not delivered: the person has blocked the bot.")


# ---------------------------------------------------------------- announcements

ANNOUNCE_HELP = (
    "Usage: /announce text for everyone\n"
    "or one line per language:\n/announce\nru: Офис закрыт 1 мая\n"
    "kk: 1 мамырда кеңсе жабық\nen: The office is closed on 1 May"
)


def parse_announcement(body: str, languages: tuple[str, ...]) -> dict[str, str]:
    """'ru: …' lines per language; text without language prefixes goes to every language."""
    per_lang: dict[str, list[str]] = {}
    current: str | None = None
    loose: list[str] = []
    for line in body.splitlines():
        head, sep, rest = line.partition(":")
        if sep and head.strip().lower() in languages:
            current = head.strip().lower()
            per_lang.setdefault(current, []).append(rest.strip())
        elif current is not None:
            per_lang[current].append(line)
        else:
            loose.append(line)
    if not per_lang:
        text = "\n".join(loose).strip()
        return {lang: text for lang in languages} if text else {}
    return {lang: "\n".join(lines).strip() for lang, lines in per_lang.items() if "\n".join(lines).strip()}


async def announce(context: ContextTypes.DEFAULT_TYPE, svc: Services, body: str) -> str:
    """Send to subscribers only, each in their language, within Telegram's rate limits."""
    k = svc.knowledge
    texts = parse_announcement(body, k.config.languages)
    if not texts:
        return ANNOUNCE_HELP
    fallback_text = texts.get(k.config.default_language) or next(iter(texts.values()))
    subscribers = await svc.store(lambda s: s.subscribers()) or []
    bot = svc.extra.get("broadcaster") or context.bot  # the rate-limited bot when running
    delivered = blocked = failed = 0
    for pid, lang, sealed in subscribers:
        chat_id = unseal(sealed, svc.secret)
        if chat_id is None:
            failed += 1
            continue
        text = texts.get(lang or "", fallback_text)
        try:
            await bot.send_message(chat_id, f"📢 {html.escape(text)}", parse_mode=ParseMode.HTML)
            delivered += 1
        except Forbidden:
            blocked += 1
            await svc.store(lambda s, pid=pid: s.mark_blocked(pid))  # type: ignore[misc]
        except TelegramError as exc:
            failed += 1
            log.warning("announcement not delivered: %s", scrub(str(exc)))
    return f"Announcement: {delivered} delivered, {blocked} blocked, {failed} failed (of {len(subscribers)})."


async def on_subscription(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/subscribe and /unsubscribe: news is opt-in; the chat reference is sealed and kept only while on."""
    svc = services(context)
    message, user, chat = update.effective_message, update.effective_user, update.effective_chat
    if message is None or message.text is None or user is None or chat is None:
        return
    on = message.text.split()[0].lstrip("/").split("@")[0].lower() == "subscribe"
    pid = pseudonym(user.id, svc.secret)
    k = svc.knowledge
    stored = await svc.store(lambda s: s.get_language(pid))
    from bot.i18n import choose_language

    lang = choose_language(stored, user.language_code, "", k.config.languages, k.config.default_language)
    now = dt.datetime.now(dt.UTC)
    sealed = seal(chat.id, svc.secret) if on else None
    await svc.store(lambda s: s.set_subscription(pid, on, sealed, now))
    await send_reply(context, chat.id, info_reply(k, "subscribed" if on else "unsubscribed", lang))

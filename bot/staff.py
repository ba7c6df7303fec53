"""Staff side of the bot: live content reload, admin commands, operators' replies, announcements.

Admin commands answer only the Telegram ids listed in config.yaml → telegram.admins, and only in a
private chat with the bot or in the operators' chat (in any other group they are ignored, so
nothing staff-only is ever posted there); anyone else gets the ordinary help reply in a private
chat, so nothing reveals that staff commands exist. They pass the flood guard like everything else.

Everything a user wrote is text, never markup, wherever staff see it: it is escaped where it is put
into the HTML message for the operators' chat. A hand-off is found again by the operators' chat
*and* the message id; a reply to a question whose record is gone is answered "not delivered".
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import hashlib
import html
import logging
import time
from pathlib import Path
from typing import Any

from telegram import Bot, Message, Update
from telegram.constants import ChatType, ParseMode
from telegram.error import Forbidden, TelegramError
from telegram.ext import ContextTypes, filters

from bot.content import Loaded, load_knowledge, resolve_faq_dir, trained
from bot.dialogue import info_reply, office_open
from bot.handlers import Services, send_reply, send_text, services
from bot.i18n import choose_language
from bot.outbox import Outgoing
from bot.privacy import pseudonym, scrub, seal, unseal
from bot.yamlio import file_signature

log = logging.getLogger("komek")
RELOAD_SECONDS = 30  # "within a minute" of a saved edit
BUILD_DELAY = 2.0  # seconds after start-up before the ranker's build starts (train_after_start)
QUESTION_KINDS = ("answer", "did_you_mean", "fallback", "urgent", "smalltalk")
QUESTION_HEADER = "🙋 Question"
UNRECORDED_HANDOFFS = 1000  # hand-offs the database could not take, kept in memory (oldest dropped)
BROADCAST_RATE = 20  # announcements per second: Telegram allows about 30, the rest is for answers


# ---------------------------------------------------------------- live reload


ALERT_PROBLEMS = 10  # problems listed in a failed reload's alert: it stays one Telegram message


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


def staff_faq_dir(svc: Services) -> Path:
    """The FAQ folder the bot loads (and /unanswered's teaching writes taught.yaml into)."""
    return _faq_dir(svc)


def _content_lock(svc: Services) -> asyncio.Lock:
    """One new version at a time (start-up's training, reloads): never two training children."""
    lock: asyncio.Lock = svc.extra.setdefault("content_lock", asyncio.Lock())
    return lock


async def with_ranker(svc: Services, loaded: Loaded) -> Loaded:
    """`loaded` with its learned ranker trained in a child process (bot/content.py → trained), when
    it is not cached; the version serving now keeps serving meanwhile. Raises ContentError."""
    if loaded.pending is None:
        return loaded
    builds = svc.extra.setdefault("builds", set())
    started = time.monotonic()
    done = await asyncio.to_thread(trained, loaded, builds)
    if done.build is not None:
        b = done.build
        log.info(
            "ranker ready after %.1f s: the build process took %.1f s (training %.1f s; %.1f s of CPU), peak %.0f MB",
            time.monotonic() - started,
            b.wall_seconds,
            b.seconds,
            b.cpu_seconds,
            b.peak_rss_mb,
        )
    return done


def _refusal(exc: Exception) -> tuple[list[str], str]:
    """A refused version's problems, and the admins' alert (the `check` output, capped)."""
    problems = getattr(exc, "problems", None)
    lines = [str(p) for p in problems] if problems else [f"{type(exc).__name__}: {exc}"]
    shown = lines[:ALERT_PROBLEMS]
    more = ""
    if len(lines) > len(shown):
        more = f"\n… and {len(lines) - len(shown)} more (python -m bot check lists them all)"
    return lines, "\n".join(shown) + more


async def train_after_start(context: ContextTypes.DEFAULT_TYPE, loaded: Loaded) -> None:
    """The bot started without this FAQ version's model cached: the matcher answers alone from the
    first message while a child process trains the ranker; then the same version with its ranker is
    swapped in. When training fails the matcher keeps answering alone and the admins are told, as
    for a broken FAQ. The build starts BUILD_DELAY seconds after start-up: it takes both cores (two
    training processes), and the first messages are answered sooner without it."""
    svc = services(context)
    await asyncio.sleep(BUILD_DELAY)
    async with _content_lock(svc):
        if svc.knowledge is not loaded.knowledge:
            return  # a reload served another version meanwhile
        try:
            done = await with_ranker(svc, loaded)
        except Exception as exc:  # ContentError, or anything else: keep serving with the matcher
            lines, shown = _refusal(exc)
            log.error("%s; the matcher keeps answering alone", "; ".join(lines))
            text = "⚠️ The learned ranker could not be trained; the bot answers with the matcher alone:\n" + shown
            await _tell_admins(context, svc, text)
            return
        if svc.knowledge is loaded.knowledge:
            svc.knowledge = done.knowledge  # one assignment, as a reload


async def reload_content(
    context: ContextTypes.DEFAULT_TYPE, force: bool = False, requested_by: int | None = None
) -> str:
    """Load the files again if they changed. A broken edit keeps the last good content and sends the
    `check` output to the admins (once per broken version, not every 30 seconds); the admin who
    asked with /reload gets it once, as the answer to the command. A version whose learned ranker is
    not cached is swapped in once a child process has trained it (the old one serves meanwhile); a
    version whose ranker cannot be trained is refused like a broken file."""
    svc = services(context)
    async with _content_lock(svc):
        fingerprint = await asyncio.to_thread(content_fingerprint, svc.config_path, _faq_dir(svc))
        if not force and fingerprint == svc.extra.get("fingerprint"):
            return "unchanged"
        svc.extra["fingerprint"] = fingerprint
        today = dt.datetime.now(dt.UTC).date()
        try:
            loaded = await asyncio.to_thread(load_knowledge, svc.config_path, svc.faq_dir, today, train="later")
            loaded = await with_ranker(svc, loaded)
        except Exception as exc:  # ContentError, or anything a hostile file could cause: keep serving
            lines, shown = _refusal(exc)
            text = "⚠️ FAQ not reloaded, the bot keeps the last good version:\n" + shown
            log.error("content reload refused: %d problem(s); keeping the last good version: %s", len(lines), lines[0])
            await _tell_admins(context, svc, text, but=requested_by)
            return "refused:\n" + "\n".join(lines)
        svc.knowledge = loaded.knowledge  # one assignment: every later message sees the new version whole
    log.info("content reloaded: %d entries", len(loaded.knowledge.faq.entries))
    return f"reloaded: {len(loaded.knowledge.faq.entries)} entries"


def stop_training(svc: Services) -> None:
    """Shutting down: stop every child process still training (it is trained again at the next start)."""
    for build in list(svc.extra.get("builds", ())):
        build.cancel()


async def reload_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    await reload_content(context)


async def _tell_admins(context: ContextTypes.DEFAULT_TYPE, svc: Services, text: str, but: int | None = None) -> None:
    for admin in svc.knowledge.config.telegram.admins:
        if admin == but:
            continue
        try:
            await send_text(context, admin, html.escape(text))
        except TelegramError as exc:
            log.warning("could not alert an admin: %s", exc)


# ---------------------------------------------------------------- admin commands


def is_admin(svc: Services, update: Update) -> bool:
    user = update.effective_user
    return user is not None and user.id in svc.knowledge.config.telegram.admins


def operator_chats(svc: Services) -> set[int]:
    """The operators' chat now, and every chat hand-offs went to before (a live reload may have
    changed it; staff may still answer there)."""
    ops = svc.knowledge.config.telegram.operators_chat
    return svc.operator_chats | ({ops} if ops is not None else set())


class OperatorsChat(filters.MessageFilter):
    """Messages in an operators' chat, as configured *now* (a filter built with the chat id at
    start-up would miss a change made by live reload)."""

    def __init__(self, svc: Services) -> None:
        super().__init__(name="OperatorsChat")
        self.svc = svc

    def filter(self, message: Message) -> bool:
        return message.chat.id in operator_chats(self.svc)


async def _not_for_you(update: Update, context: ContextTypes.DEFAULT_TYPE, svc: Services) -> None:
    """The ordinary help reply: a non-admin learns nothing about staff commands."""
    chat = update.effective_chat
    if chat is not None:
        await send_reply(context, chat.id, info_reply(svc.knowledge, "help", svc.knowledge.config.default_language))


async def on_admin(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/reload /stats /unanswered /announce (admins only; in a private chat or the operators' chat)."""
    svc = services(context)
    message, chat, user = update.effective_message, update.effective_chat, update.effective_user
    if message is None or chat is None or message.text is None or user is None:
        return
    private = chat.type == ChatType.PRIVATE
    if not private and chat.id not in operator_chats(svc):
        return  # a group: staff output (unanswered questions, stats) never goes there
    pid = pseudonym(user.id, svc.secret)
    svc.consents.withdraw(pid)
    verdict = svc.flood.hit(pid, time.monotonic())
    if verdict == "drop":
        return
    if verdict == "warn":
        await send_reply(
            context, chat.id, info_reply(svc.knowledge, "slow_down", svc.knowledge.config.default_language)
        )
        return
    if not is_admin(svc, update):
        if private:
            await _not_for_you(update, context, svc)
        return
    command = message.text.split()[0].lstrip("/").split("@")[0].lower()
    if command == "reload":
        text = await reload_content(context, force=True, requested_by=user.id)
    elif command == "stats":
        text = await stats_text(svc, dt.datetime.now(dt.UTC))
    elif command == "unanswered":
        from bot.staff_teach import show_unanswered  # it imports this module

        await show_unanswered(update, context, message.text.partition(" ")[2])
        return
    elif command == "announce":
        body = message.text.partition(" ")[2].strip()
        text = await start_announcement(context, svc, body, chat.id)
    else:
        text = "Admin commands: /reload /stats /unanswered /announce"
    await send_text(context, chat.id, html.escape(text))


async def stats_text(svc: Services, now: dt.datetime) -> str:
    from zoneinfo import ZoneInfo

    from bot.review import stats_text as text_of

    async def read(since: dt.datetime) -> dict[str, Any] | None:
        return await svc.store(lambda s: s.stats(since))

    return await text_of(read, now, ZoneInfo(svc.knowledge.config.contacts.office.hours.timezone))


# ---------------------------------------------------------------- a person to talk to


async def forward_to_operators(
    context: ContextTypes.DEFAULT_TYPE, svc: Services, pid: str, chat_id: int, lang: str, text: str
) -> None:
    """The user consented: their question goes to the operators' chat (as text: escaped), the
    mapping back to them lives in SQLite. When Telegram does not take it now it is queued (the
    outbox delivers it later and records the hand-off then); the person is told either way."""
    k = svc.knowledge
    ops = k.config.telegram.operators_chat
    if ops is None:
        return
    header = f"{QUESTION_HEADER} [{lang}] — reply to this message to answer the person"
    body = f"{header}\n\n{html.escape(text[:3500])}"
    sealed = seal(chat_id, svc.secret)
    then = {"handoff": {"pid": pid, "seal": sealed, "lang": lang}}
    try:
        sent = await svc.outbox.send(ops, body, then=then) if svc.outbox else None
    except TelegramError as exc:  # refused for good (the bot is not in the operators' chat...)
        log.error("a question could not be passed to the operators' chat: %s", exc)
        await send_reply(context, chat_id, info_reply(k, "error_reply", lang), pid)
        return
    if sent is not None:
        await _record_handoff(context.bot, svc, then["handoff"], *sent)
    key = "ask_sent" if office_open(k.config, dt.datetime.now(dt.UTC)) else "ask_sent_closed"
    await send_reply(context, chat_id, info_reply(k, key, lang), pid)


def _unrecorded(svc: Services) -> collections.OrderedDict[tuple[int, int], tuple[str, str, str | None]]:
    memory: collections.OrderedDict[tuple[int, int], tuple[str, str, str | None]]
    memory = svc.extra.setdefault("unrecorded_handoffs", collections.OrderedDict())
    return memory


async def _record_handoff(bot: Bot, svc: Services, handoff: dict[str, Any], ops: int, message_id: int) -> None:
    """Remember where a forwarded question came from; when the database refuses, in memory (so the
    reply still finds its way while the bot runs), and the operators are told."""
    pid, sealed, lang = str(handoff["pid"]), str(handoff["seal"]), str(handoff["lang"])
    now = dt.datetime.now(dt.UTC)
    svc.operator_chats.add(ops)
    if await svc.store(lambda s: s.record_handoff(pid, sealed, ops, message_id, lang, now)):
        return
    memory = _unrecorded(svc)
    memory[(ops, message_id)] = (pid, sealed, lang)
    while len(memory) > UNRECORDED_HANDOFFS:
        memory.popitem(last=False)
    log.error("a hand-off could not be stored: kept in memory until the bot restarts")
    if svc.outbox is not None:
        note = "⚠️ This question could not be stored: a reply to it reaches the person only until the bot restarts."
        await svc.outbox.send(ops, note, reply_to=message_id)


async def after_queued(
    bot: Bot, svc: Services, entry: Outgoing, message_id: int | None, error: BaseException | None
) -> None:
    """The outbox delivered (message_id) or gave up (error) a queued message that had a follow-up."""
    then = entry.then or {}
    if "handoff" in then:
        if message_id is not None:
            await _record_handoff(bot, svc, then["handoff"], entry.chat_id, message_id)
            return
        chat_id = unseal(str(then["handoff"]["seal"]), svc.secret)
        lang = str(then["handoff"].get("lang") or svc.knowledge.config.default_language)
        if chat_id is not None and svc.outbox is not None:  # the question never reached the operators
            await svc.outbox.send(chat_id, info_reply(svc.knowledge, "error_reply", lang).text)
    if "notify" in then and svc.outbox is not None:
        note = then["notify"]
        text = str(note["ok"]) if message_id is not None else str(note["fail"])
        await svc.outbox.send(int(note["chat"]), text, reply_to=note.get("reply_to"))


async def on_operator_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """In the operators' chat: a reply to a forwarded question goes back to that person."""
    svc = services(context)
    message = update.effective_message
    if message is None or message.text is None or message.reply_to_message is None:
        return
    replied = message.reply_to_message
    key = (message.chat.id, replied.message_id)
    handoff = await svc.store(lambda s: s.handoff_for(*key)) or _unrecorded(svc).get(key)
    if handoff is None:
        by_bot = replied.from_user is not None and replied.from_user.id == context.bot.id
        if by_bot and (replied.text or "").startswith(QUESTION_HEADER):
            await _tell_operator(
                context,
                message,
                "Not delivered: this question's record is gone (older than the "
                "retention, or it could not be stored). The person cannot be reached from here.",
            )
        return  # otherwise: staff talking among themselves
    _, sealed, lang = handoff
    chat_id = unseal(sealed, svc.secret)
    if chat_id is None:
        await _tell_operator(context, message, "Could not deliver: this question's address is no longer readable.")
        return
    k = svc.knowledge
    reply = info_reply(k, "operator_reply", lang or k.config.default_language, text=html.escape(message.text))
    note = {
        "notify": {
            "chat": message.chat.id,
            "reply_to": message.message_id,
            "ok": "✓ delivered (late: Telegram did not take it at first)",
            "fail": "Not delivered: Telegram refused it, or the person has blocked the bot.",
        }
    }
    try:
        delivered = await send_text(context, chat_id, reply.text, reply, then=note)
    except Forbidden:
        await _tell_operator(context, message, "Not delivered: the person has blocked the bot.")
        return
    await _tell_operator(
        context,
        message,
        "✓ delivered"
        if delivered
        else "⏳ Telegram is not taking messages right now: it will be delivered "
        "as soon as it does (you will be told).",
    )


async def _tell_operator(context: ContextTypes.DEFAULT_TYPE, message: Message, text: str) -> None:
    svc = services(context)
    if svc.outbox is None:
        await message.reply_text(text, parse_mode=None)
        return
    await svc.outbox.send(message.chat.id, html.escape(text), reply_to=message.message_id)


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


async def start_announcement(context: ContextTypes.DEFAULT_TYPE, svc: Services, body: str, admin_chat: int) -> str:
    """/announce: the broadcast runs on its own (one chat's command must not keep anyone waiting,
    and a restart must not send it twice); the admin gets the report when it is done."""
    texts = parse_announcement(body, svc.knowledge.config.languages) if body else {}
    if not texts:
        return ANNOUNCE_HELP
    bot = context.bot

    async def run() -> None:
        try:
            report = await announce(context, svc, body)
        except Exception:
            log.exception("the announcement failed")
            report = "Announcement failed (see the log)."
        if svc.outbox is not None:
            await svc.outbox.send(admin_chat, html.escape(report))
        else:
            await bot.send_message(admin_chat, report, parse_mode=None)

    running: set[asyncio.Task[None]] = svc.extra.setdefault("announcements", set())
    task = asyncio.get_running_loop().create_task(run(), name="announcement")
    running.add(task)
    task.add_done_callback(running.discard)
    count = len(await svc.store(lambda s: s.subscribers()) or [])
    return f"📢 Sending to {count} subscriber(s); the report follows when it is done."


async def announce(context: ContextTypes.DEFAULT_TYPE, svc: Services, body: str) -> str:
    """Send to subscribers only, each in their language, within Telegram's rate limits. A subscriber
    who blocked the bot is unsubscribed (their sealed chat reference deleted)."""
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
            await svc.store(lambda s, pid=pid: s.set_unsubscribed(pid))  # type: ignore[misc]
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
    svc.consents.withdraw(pid)
    verdict = svc.flood.hit(pid, time.monotonic())
    if verdict == "drop":
        return
    k = svc.knowledge
    stored = await svc.store(lambda s: s.get_language(pid))
    lang = choose_language(stored, user.language_code, "", k.config.languages, k.config.default_language)
    if verdict == "warn":
        await send_reply(context, chat.id, info_reply(k, "slow_down", lang), pid)
        return
    now = dt.datetime.now(dt.UTC)
    sealed = seal(chat.id, svc.secret) if on else None
    await svc.store(lambda s: s.set_subscription(pid, on, sealed, now))
    await send_reply(context, chat.id, info_reply(k, "subscribed" if on else "unsubscribed", lang), pid)

"""/unanswered with teach buttons (admins only): each scrubbed question with its three closest entries,
"new topic" and "ignore"; an entry's button shows exactly what will be added and asks to confirm;
"Add" writes the phrasing to faq/taught.yaml and reloads the content at once.

Callback data (at most 64 bytes) names the question by its short database id:
    st:t:<id>:<entry>  teach to entry (ask to confirm)     st:y:<id>:<entry>  confirmed: add it
    st:n:<id>          new topic for the next review       st:x:<id>          ignore
    st:c:<id>          back to the question's buttons
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import html
import logging
from zoneinfo import ZoneInfo

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, NetworkError
from telegram.ext import ContextTypes

from bot.dialogue import split_message
from bot.handlers import Services, services
from bot.i18n import choose_language
from bot.privacy import pseudonym
from bot.review import (
    Question,
    closest_entries,
    confirm_text,
    decision_text,
    decisions_by_text,
    parse_limit,
    question_text,
    questions_for_review,
    review_header,
    teach,
    title,
)

log = logging.getLogger("komek")
PREFIX = "st:"
CALLBACK_MAX = 64  # bytes, Telegram's limit for callback data
LABEL_MAX = 30


def _tz(svc: Services) -> ZoneInfo:
    return ZoneInfo(svc.knowledge.config.contacts.office.hours.timezone)


def staff_pseudonym(svc: Services, user_id: int) -> str:
    """Who taught a phrasing, as written to taught.yaml: never the Telegram id itself."""
    return "tg-" + pseudonym(user_id, svc.secret)[:10]


async def _staff_lang(svc: Services, update: Update) -> str:
    user = update.effective_user
    k = svc.knowledge
    stored = await svc.store(lambda s: s.get_language(pseudonym(user.id, svc.secret))) if user else None
    code = user.language_code if user else None
    return choose_language(stored, code, "", k.config.languages, k.config.default_language)


def question_keyboard(svc: Services, q: Question, staff_lang: str) -> InlineKeyboardMarkup:
    """Three closest entries, one per row; then new topic and ignore."""
    rows = []
    for c in closest_entries(svc.knowledge, q.text):
        data = f"{PREFIX}t:{q.id}:{c.entry_id}"
        if len(data.encode()) > CALLBACK_MAX:
            continue  # an id too long for a button: `python -m bot teach` can still do it
        label = title(svc.knowledge, c.entry_id, staff_lang)
        label = label if len(label) <= LABEL_MAX else label[: LABEL_MAX - 1] + "…"
        rows.append([InlineKeyboardButton(f"➕ {label}", callback_data=data)])
    rows.append(
        [
            InlineKeyboardButton("🆕 new topic", callback_data=f"{PREFIX}n:{q.id}"),
            InlineKeyboardButton("✖ ignore", callback_data=f"{PREFIX}x:{q.id}"),
        ]
    )
    return InlineKeyboardMarkup(rows)


async def show_unanswered(update: Update, context: ContextTypes.DEFAULT_TYPE, arg: str) -> None:
    """/unanswered [N]: a header (with what was already handled), then one message per open question."""
    svc = services(context)
    chat = update.effective_chat
    if chat is None:
        return
    rows = await svc.store(lambda s: s.recent_unanswered(500))
    decisions = await svc.store(lambda s: s.teaching_decisions())
    if rows is None or decisions is None:
        await context.bot.send_message(chat.id, "Unanswered questions are unavailable: the database cannot be read.")
        return
    tz = _tz(svc)
    items = questions_for_review(rows, decisions_by_text(decisions), parse_limit(arg))
    handled = [(q, q.decision) for q in items if q.decision is not None]
    open_items = [q for q in items if q.decision is None]
    staff_lang = await _staff_lang(svc, update)
    for part in split_message(html.escape(review_header(tz, len(open_items), handled))):
        await context.bot.send_message(chat.id, part, parse_mode=ParseMode.HTML)
    for q in reversed(open_items):  # the newest last, nearest the keyboard
        await context.bot.send_message(
            chat.id,
            html.escape(question_text(q, tz)),
            parse_mode=ParseMode.HTML,
            reply_markup=question_keyboard(svc, q, staff_lang),
        )


async def _edit(message: Message | None, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    if message is None:
        return
    with contextlib.suppress(BadRequest):  # unchanged, or too old to edit
        await message.edit_text(html.escape(text)[:4096], parse_mode=ParseMode.HTML, reply_markup=markup)


async def on_staff_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A press on a /unanswered button. Only admins' presses do anything (forged data is ignored)."""
    from bot.staff import is_admin, reload_content, staff_faq_dir  # staff imports this module

    query = update.callback_query
    if query is None:
        return
    with contextlib.suppress(BadRequest, NetworkError):
        await query.answer()
    svc = services(context)
    user = update.effective_user
    if user is None or not is_admin(svc, update):
        return
    message = query.message if isinstance(query.message, Message) else None
    parts = (query.data or "").split(":", 3)
    if len(parts) < 3 or not parts[2].isdigit():
        return
    op, qid = parts[1], int(parts[2])
    entry_id = parts[3] if len(parts) > 3 else ""
    row = await svc.store(lambda s: s.unanswered_by_id(qid))
    if row is None:
        await _edit(message, f"#{qid} is no longer stored (purged after its retention time, or erased by /forget).")
        return
    decisions = await svc.store(lambda s: s.teaching_decisions()) or []
    [q] = questions_for_review([row], decisions_by_text(decisions), 1)
    tz, k = _tz(svc), svc.knowledge
    staff_lang = await _staff_lang(svc, update)
    now = dt.datetime.now(dt.UTC)
    by = staff_pseudonym(svc, user.id)
    if q.decision is not None:  # decided meanwhile (another admin, the command line, an older message)
        await _edit(message, f"{question_text(q, tz)}\n{decision_text(q.decision, tz)}")
        return
    if op == "t":
        await _edit(
            message,
            confirm_text(k, q, entry_id, staff_lang),
            InlineKeyboardMarkup(
                [
                    [
                        InlineKeyboardButton("✓ Add", callback_data=f"{PREFIX}y:{qid}:{entry_id}"),
                        InlineKeyboardButton("✗ Cancel", callback_data=f"{PREFIX}c:{qid}"),
                    ]
                ]
            ),
        )
    elif op == "c":
        await _edit(message, question_text(q, tz), question_keyboard(svc, q, staff_lang))
    elif op == "y":
        lock: asyncio.Lock = svc.extra.setdefault("teach_lock", asyncio.Lock())
        async with lock:  # one writer of taught.yaml at a time
            today = now.astimezone(tz).date()
            item, said = await asyncio.to_thread(teach, k, staff_faq_dir(svc), q, entry_id, by, today)
            if item is not None:
                await svc.store(lambda s: s.record_teaching(qid, "taught", item.entry_id, item.lang, by, now))
                outcome = await reload_content(context, force=True)
                said += " The bot has learnt it." if outcome.startswith("reloaded") else f"\nReload: {outcome}"
        log.info("/unanswered: question #%d %s", qid, "taught" if item else "not taught")
        await _edit(message, f"{question_text(q, tz)}\n\n{said}")
    elif op in ("n", "x"):
        action = "new_topic" if op == "n" else "ignored"
        await svc.store(lambda s: s.record_teaching(qid, action, None, None, by, now))
        said = (
            "🆕 Kept for the next content review (listed in the report)."
            if op == "n"
            else "✖ Ignored: it will not be offered again."
        )
        await _edit(message, f"{question_text(q, tz)}\n\n{said}")

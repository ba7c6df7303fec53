"""Dialogue buttons → Telegram inline keyboards (the only place that knows both)."""

from __future__ import annotations

from functools import lru_cache

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.dialogue import Keyboard

BUTTON_LABEL_MAX = 64


@lru_cache(maxsize=1024)
def inline_keyboard(buttons: Keyboard) -> InlineKeyboardMarkup | None:
    """The markup for a dialogue keyboard. Cached: a few hundred keyboards (menu, sections, each
    entry's feedback row) come back again and again, and PTB's markups are immutable, so one object
    serves every send. The key is the buttons themselves, labels included, so a reloaded FAQ with
    new texts makes new keys rather than reusing stale ones."""
    rows = []
    for row in buttons:
        out = []
        for b in row:
            label = b.label[:BUTTON_LABEL_MAX]
            if b.url:
                out.append(InlineKeyboardButton(label, url=b.url))
            elif b.data and len(b.data.encode()) <= 64:
                out.append(InlineKeyboardButton(label, callback_data=b.data))
        if out:
            rows.append(out)
    return InlineKeyboardMarkup(rows) if rows else None

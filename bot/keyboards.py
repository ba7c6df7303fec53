"""Dialogue buttons → Telegram inline keyboards (the only place that knows both)."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.dialogue import Keyboard

BUTTON_LABEL_MAX = 64


def inline_keyboard(buttons: Keyboard) -> InlineKeyboardMarkup | None:
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

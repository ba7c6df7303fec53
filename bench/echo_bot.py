"""A plain python-telegram-bot 22 echo bot: the yardstick for Komek's end-to-end throughput.

PTB's stock Application.run_polling (allowed_updates=ALL_TYPES, drop_pending_updates=False, PTB's
defaults otherwise: one update at a time, stock HTTPXRequest), the same Bot API server as Komek,
whose `python -m bot run` polls with its own loop (bot/polling.py) and sends through
bot.app.SendRequest. Reads TELEGRAM_BOT_TOKEN and TELEGRAM_BASE_URL / TELEGRAM_BASE_FILE_URL like Komek.
"""

from __future__ import annotations

import os

from telegram import Update
from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, filters


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    if message is not None and message.text:
        await message.reply_text(message.text)


def main() -> None:
    builder = ApplicationBuilder().token(os.environ["TELEGRAM_BOT_TOKEN"])
    if os.environ.get("TELEGRAM_BASE_URL"):
        builder = builder.base_url(os.environ["TELEGRAM_BASE_URL"])
    if os.environ.get("TELEGRAM_BASE_FILE_URL"):
        builder = builder.base_file_url(os.environ["TELEGRAM_BASE_FILE_URL"])
    app = builder.build()
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    app.run_polling(allowed_updates=Update.ALL_TYPES, drop_pending_updates=False)


if __name__ == "__main__":
    main()

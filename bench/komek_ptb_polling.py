"""Komek's real Application (bot.app.build_application: handlers, storage, flood guard, jobs) polled
by PTB's stock Application.run_polling with exactly the echo bot's settings.

`python -m bot run` uses whatever polling bot.app.run_polling chooses; this variant isolates the
cost of Komek's handlers from the choice of polling loop. Same environment as `python -m bot run`.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from telegram import Update

from bot.app import build_application, read_env, setup_logging
from bot.content import load_knowledge

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    config = ROOT / "config.yaml"
    loaded = load_knowledge(config, None, dt.date.today())
    env = read_env(os.environ, loaded.knowledge.config.storage.database, config.parent)
    setup_logging([env.token, env.secret.decode()])
    app = build_application(loaded, env, config, None)
    app.run_polling(allowed_updates=Update.ALL_TYPES, drop_pending_updates=False)


if __name__ == "__main__":
    main()

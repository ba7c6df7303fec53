"""End to end through the Bot API emulator: crisis messages get their category's reply first (the
number that fits, then what to say), "Ask a person" under it, and /stats counts them by category
(counts only, no text) — the real Application over HTTP (issue 11)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest
from botapi_client import BotApiServer, SimUser, buttons
from test_bot import last, new_env, running
from test_staff import ADMIN, staff_copy

from bot.content import load_knowledge

pytestmark = pytest.mark.e2e
USER = SimUser(id=555300001, first_name="Aigerim", language_code="en")
RU_USER = SimUser(id=555300002, first_name="Olena", language_code="ru")


async def test_suicide_medical_and_trafficking_replies_and_counts(botapi_server: BotApiServer, tmp_path: Path) -> None:
    config, faq = staff_copy(tmp_path)
    loaded = load_knowledge(config, faq, dt.date.today())
    db = tmp_path / "komek.sqlite3"
    env = new_env(botapi_server, db)
    async with running(loaded, env, botapi_server, config=config, faq=faq) as bot:
        u = bot.user

        await u.send_message(USER.id, "i dont want to live anymore", USER)
        suicide = await last(u, USER.id, 1)
        text = suicide["text"]
        assert text.index("111") < text.index("112")  # someone to talk to first, then 112 / 103
        assert "103" in text and "not alone" in text
        datas = [b.get("callback_data") for b in buttons(suicide)]
        assert "ask" in datas and "faq:crisis-support" in datas

        await u.send_message(RU_USER.id, "у ребенка высокая температура и судороги", RU_USER)
        medical = (await last(u, RU_USER.id, 1))["text"]
        assert medical.index("103") < 40 and "точный адрес" in medical  # what to say on the phone

        await u.send_message(USER.id, "they took my passport and wont let me leave the farm", USER)
        trafficking = await last(u, USER.id, 2)
        assert trafficking["text"].index("102") < 120 and "whatever their citizenship" in trafficking["text"]
        assert "ask" in [b.get("callback_data") for b in buttons(trafficking)]

        await u.send_command(ADMIN.id, "/stats", ADMIN)
        stats = (await last(u, ADMIN.id, 1))["text"]
        assert "urgent 3" in stats
        assert "suicide 1" in stats and "medical 1" in stats and "trafficking 1" in stats

    with sqlite3.connect(db) as conn:
        rows = sorted(r[0] for r in conn.execute("SELECT crisis FROM events WHERE crisis IS NOT NULL"))
        assert rows == ["medical", "suicide", "trafficking"]
        assert not conn.execute("SELECT count(*) FROM unanswered").fetchone()[0]  # no text kept for these

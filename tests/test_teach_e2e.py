"""End to end through the Bot API emulator: a question the bot missed is taught from /unanswered in one
tap (and a confirm), and asked again it gets the entry's answer directly; "new topic" and a forged
press by someone who is not an admin."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from botapi_client import BotApiClient, BotApiServer, SimUser, buttons
from test_bot import last, new_env, running
from test_staff import ADMIN, staff_copy

from bot.content import load_knowledge

pytestmark = pytest.mark.e2e
MISSED = "можно ли открыть счет в банке без паспорта"
WEATHER = "какая погода в алматы завтра"
ASKER = SimUser(id=555200001, first_name="Aigerim", language_code="ru")
INTRUDER = SimUser(id=555200002, first_name="Mallory", language_code="ru")


def data_of(message: dict[str, Any]) -> list[str]:
    return [str(b.get("callback_data", "")) for b in buttons(message)]


async def message_with(u: BotApiClient, chat: int, needle: str) -> dict[str, Any]:
    found = [m for m in await u.bot_messages(chat) if needle in (m.get("text") or "")]
    assert found, needle
    return found[-1]


async def edited_to(
    u: BotApiClient,
    chat: int,
    message_id: int,
    needle: str,
    timeout: float = 15,  # noqa: ASYNC109 - a deadline for the polling
) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        for m in await u.bot_messages(chat):
            if m["message_id"] == message_id and needle in (m.get("text") or ""):
                return m
        return None

    message = f"message {message_id} edited to say {needle!r}"
    return await u.wait_for(check, timeout=timeout, message=message)  # type: ignore[no-any-return]


async def test_teach_a_missed_question_from_unanswered_then_it_is_answered(
    botapi_server: BotApiServer, tmp_path: Path
) -> None:
    config, faq = staff_copy(tmp_path)
    loaded = load_knowledge(config, faq, dt.date.today())
    db = tmp_path / "komek.sqlite3"
    env = new_env(botapi_server, db)
    async with running(loaded, env, botapi_server, config=config, faq=faq) as bot:
        u = bot.user
        await u.send_message(ASKER.id, MISSED, ASKER)
        missed = await last(u, ASKER.id, 1)
        assert not any(d.startswith("fb:") for d in data_of(missed))  # not answered: no feedback buttons
        await u.send_message(ASKER.id, WEATHER, ASKER)
        await last(u, ASKER.id, 2)

        await u.send_command(ADMIN.id, "/unanswered", ADMIN)
        await u.wait_for_bot_messages(ADMIN.id, 3)  # the header, then one message per question
        header = (await u.bot_messages(ADMIN.id))[0]
        assert "Asia/Almaty" in header["text"]
        question = await message_with(u, ADMIN.id, MISSED)
        assert "Asia/Almaty" in question["text"]
        teach_data = [d for d in data_of(question) if d.startswith("st:t:")]
        assert len(teach_data) == 3 and all(len(d.encode()) <= 64 for d in data_of(question))
        pick = next(d for d in teach_data if d.endswith(":lost-documents"))
        qid = pick.split(":")[2]

        # someone who is not an admin presses a forged "add" under a message of their own: nothing happens
        await u.send_message(INTRUDER.id, "привет", INTRUDER)
        hello = await last(u, INTRUDER.id, 1)
        await u.press_button(INTRUDER.id, hello, f"st:y:{qid}:lost-documents", INTRUDER, force=True)

        await u.press_button(ADMIN.id, question, pick, ADMIN)
        confirm = await edited_to(u, ADMIN.id, question["message_id"], "exactly")
        assert f"“{MISSED}”" in confirm["text"] and "lost-documents" in confirm["text"]
        assert MISSED not in (faq / "taught.yaml").read_text("utf-8")  # nothing added before the confirm
        await u.press_button(ADMIN.id, confirm, f"st:y:{qid}:lost-documents", ADMIN)
        # the reload trains the ranker on the new phrasing first, in a child process at a low CPU
        # priority: about 10 s, longer while other tests keep both cores busy
        done = await edited_to(u, ADMIN.id, question["message_id"], "Taught", timeout=120)
        assert "learnt" in done["text"]

        taught = (faq / "taught.yaml").read_text("utf-8")
        assert f"text: {MISSED}" in taught and "entry: lost-documents" in taught and "by: tg-" in taught
        assert str(ADMIN.id) not in taught

        # asked again, the entry's answer comes directly
        await u.send_message(ASKER.id, MISSED, ASKER)
        again = await last(u, ASKER.id, 3)
        assert "fb:lost-documents:1" in data_of(again), again["text"][:200]

        # the weather: a new topic for the next content review
        weather = await message_with(u, ADMIN.id, WEATHER)
        await u.press_button(ADMIN.id, weather, next(d for d in data_of(weather) if d.startswith("st:n:")), ADMIN)
        await edited_to(u, ADMIN.id, weather["message_id"], "next content review")

        # /unanswered now shows both as handled, the taught one as taught
        count = len(await u.bot_messages(ADMIN.id))
        await u.send_command(ADMIN.id, "/unanswered", ADMIN)
        review = await last(u, ADMIN.id, count + 1)
        assert "✓ taught to lost-documents (ru)" in review["text"] and "🆕 new topic" in review["text"]
        assert len(await u.bot_messages(INTRUDER.id)) == 1  # only the reply to "привет"
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT action, entry_id FROM teaching ORDER BY id").fetchall()
    assert rows == [("taught", "lost-documents"), ("new_topic", None)]

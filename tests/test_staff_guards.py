"""Issue 14, staff side and privacy, end to end (the real Application with the production polling
loop, the Bot API emulator, real SQLite files): what a user wrote reaches the operators as text,
hand-offs survive a changed operators' chat and never reach the wrong person, staff output stays
out of groups, every command passes the flood guard, "ask a person" covers only the next message,
/forget tells the truth, blocked subscribers are unsubscribed, and a failed /reload says so once."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from botapi_client import BotApiClient, SimUser
from botapi_client import BotApiServer as Server
from faultproxy import FaultProxy
from test_bot import new_env
from test_hardening import answers, db_rows, serving
from test_staff import ADMIN, OPERATOR, OPS_CHAT, USER, run_reload_job, staff_copy, staff_loaded

from bot.content import Loaded, load_knowledge

pytestmark = pytest.mark.e2e
_ = staff_loaded  # a module fixture of test_staff, used here by name
QUESTION = "how do I apply for asylum"
NEW_OPS = -100999777


def content(tmp_path: Path, loaded: Loaded) -> tuple[Path, Path, Loaded]:
    """The test's own staff copy, and its content as loaded (`staff_loaded`: the same files, loaded
    once per module)."""
    config, faq = staff_copy(tmp_path)
    return config, faq, loaded


def set_operators_chat(config: Path, chat: int) -> None:
    text = config.read_text(encoding="utf-8")
    old = next(line for line in text.splitlines() if line.startswith("  operators_chat:"))
    config.write_text(text.replace(old, f"  operators_chat: {chat}"), encoding="utf-8")


async def ask_a_person(u: BotApiClient, person: SimUser, question: str) -> None:
    """The whole consent flow: a question, "Ask a person", "Yes", then the question for a person."""
    before = len(await u.bot_messages(person.id))
    await u.send_message(person.id, QUESTION, person)
    answer = (await u.wait_for_bot_messages(person.id, before + 1))[-1]
    await u.press_button(person.id, answer, "ask", person)
    consent = (await u.wait_for_bot_messages(person.id, before + 2))[-1]
    await u.press_button(person.id, consent, "ask:yes", person)
    await u.wait_for_bot_messages(person.id, before + 3)
    await u.send_message(person.id, question, person)
    await u.wait_for_bot_messages(person.id, before + 4)  # "passed on"


async def quiet(seconds: float = 0.8) -> None:
    """Time for a reply that must not come."""
    await asyncio.sleep(seconds)


# ------------------------------------------------------------------------------ the operators' chat


async def test_a_question_reaches_the_operators_as_text(server: Server, tmp_path: Path, staff_loaded: Loaded) -> None:
    """A bare "<" made the question broken HTML: Telegram refused it, the consent was used up and
    the question was gone. A user's <a href> reached the staff as a live link. Both arrive as text."""
    config, faq, loaded = content(tmp_path, staff_loaded)
    env = new_env(server, tmp_path / "komek.sqlite3")
    link = '<a href="https://evil.example/login">check your case</a>'
    async with serving(loaded, env, server, config=config, faq=faq) as bot:
        u = bot.user
        await ask_a_person(u, USER, "Is 3 < 5 days enough? & <b>urgent")
        await ask_a_person(u, USER, f"Please open {link}")
        forwarded = await u.wait_for_bot_messages(OPS_CHAT, 2)
        assert "Is 3 < 5 days enough? & <b>urgent" in forwarded[0]["text"]
        assert link in forwarded[1]["text"]  # shown as typed...
        assert [
            e for m in forwarded for e in m.get("entities") or [] if e["type"] == "text_link"
        ] == []  # ...not a link
        await u.send_message(OPS_CHAT, "A <b>reply</b> & more", OPERATOR, chat_type="supergroup", reply_to=forwarded[0])
        back = (await u.wait_for_bot_messages(USER.id, 9))[-1]
        assert "A <b>reply</b> & more" in back["text"]
        assert "delivered" in (await u.wait_for_bot_messages(OPS_CHAT, 3))[-1]["text"]


async def test_a_new_operators_chat_from_a_live_reload_gets_its_replies_delivered(
    server: Server, tmp_path: Path, staff_loaded: Loaded
) -> None:
    """Before, questions went to the new chat but replies there were answered as FAQ questions."""
    config, faq, loaded = content(tmp_path, staff_loaded)
    env = new_env(server, tmp_path / "komek.sqlite3")
    async with serving(loaded, env, server, config=config, faq=faq) as bot:
        u = bot.user
        set_operators_chat(config, NEW_OPS)
        await run_reload_job(bot.app)
        await ask_a_person(u, USER, "Where do I renew my certificate?")
        [forwarded] = await u.wait_for_bot_messages(NEW_OPS, 1)
        await u.send_message(NEW_OPS, "At the migration office", OPERATOR, chat_type="supergroup", reply_to=forwarded)
        back = (await u.wait_for_bot_messages(USER.id, 5))[-1]
        assert "At the migration office" in back["text"]
        confirm = await u.wait_for_bot_messages(NEW_OPS, 2)
        assert [m["text"] for m in confirm[1:]] == ["✓ delivered"]  # and no FAQ answer in the staff chat
        assert await u.bot_messages(OPS_CHAT) == []


async def test_a_reply_in_another_chat_never_reaches_the_person_of_the_same_message_id(
    server: Server, tmp_path: Path, staff_loaded: Loaded
) -> None:
    """The operators' group became a supergroup (a new chat id, message ids starting again) and the
    bot restarted: a staff reply to the new chat's message with the same id as a forwarded question
    went to that question's person, with "✓ delivered". Hand-offs are matched by chat and message id."""
    config, faq, loaded = content(tmp_path, staff_loaded)
    db = tmp_path / "komek.sqlite3"
    env = new_env(server, db)
    async with serving(loaded, env, server, config=config, faq=faq) as bot:
        await ask_a_person(bot.user, USER, "My papers were taken")
        [forwarded] = await bot.user.wait_for_bot_messages(OPS_CHAT, 1)
    set_operators_chat(config, NEW_OPS)
    loaded = load_knowledge(config, faq, dt.date.today())
    async with serving(loaded, env, server, config=config, faq=faq) as bot:
        u = bot.user
        staff_note: dict[str, Any] = {
            "message_id": forwarded["message_id"],  # the same id, in the new chat
            "date": int(time.time()),
            "chat": {"id": NEW_OPS, "type": "supergroup", "title": "Staff"},
            "from": {"id": int(env.token.split(":")[0]), "is_bot": True, "first_name": "Komek"},
            "text": "Shift plan for Monday",
        }
        reply = {
            "message_id": forwarded["message_id"] + 1,
            "date": int(time.time()),
            "chat": staff_note["chat"],
            "from": {**OPERATOR.as_dict()},
            "text": "Thanks, noted",
            "reply_to_message": staff_note,
        }
        await u.send_update({"message": reply})
        await u.wait_for(lambda: _confirmed(u), message="the reply handled")
        await quiet()
        assert len(await u.bot_messages(USER.id)) == 4  # nothing more reached the person
        assert await u.bot_messages(NEW_OPS) == []  # staff talking among themselves: no answer


async def test_when_the_operators_group_becomes_a_supergroup_questions_and_replies_follow(
    server: Server, tmp_path: Path, staff_loaded: Loaded
) -> None:
    """Telegram answers a send to the old group with "upgraded to a supergroup" and the new id: the
    question goes to the new chat, its hand-off is recorded there, and a reply there reaches the person."""
    config, faq, loaded = content(tmp_path, staff_loaded)
    async with FaultProxy(server.url) as proxy:
        env = dataclasses.replace(
            new_env(server, tmp_path / "komek.sqlite3"), base_url=proxy.base_url, base_file_url=proxy.base_file_url
        )
        async with serving(loaded, env, server, config=config, faq=faq) as bot:
            u = bot.user
            proxy.outage("moved", 600, method="sendMessage", chat_id=OPS_CHAT, moved_to=NEW_OPS)
            await ask_a_person(u, USER, "Is the office open on Saturday?")
            [forwarded] = await u.wait_for_bot_messages(NEW_OPS, 1)
            assert "Saturday" in forwarded["text"]
            await u.send_message(NEW_OPS, "No, Mon-Fri", OPERATOR, chat_type="supergroup", reply_to=forwarded)
            assert "No, Mon-Fri" in (await u.wait_for_bot_messages(USER.id, 5))[-1]["text"]
            assert (await u.wait_for_bot_messages(NEW_OPS, 2))[-1]["text"] == "✓ delivered"


async def _confirmed(u: BotApiClient) -> bool:
    return int((await u.updates())["pending"]) == 0


async def _report(u: BotApiClient) -> str | None:
    """The announcement's report to the admin, once it came."""
    return next((m["text"] for m in await u.bot_messages(ADMIN.id) if "delivered," in m["text"]), None)


async def _edited(u: BotApiClient, chat: int, message: dict[str, Any]) -> bool:
    return any(m["message_id"] == message["message_id"] and m.get("edit_date") for m in await u.bot_messages(chat))


async def test_a_reply_to_a_question_whose_record_is_gone_says_not_delivered(
    server: Server, tmp_path: Path, staff_loaded: Loaded
) -> None:
    """The hand-off record was not stored (disk full, retention): the reply vanished and nobody was told."""
    config, faq, loaded = content(tmp_path, staff_loaded)
    db = tmp_path / "komek.sqlite3"
    env = new_env(server, db)
    async with serving(loaded, env, server, config=config, faq=faq) as bot:
        u = bot.user
        await ask_a_person(u, USER, "Can my wife come too?")
        [forwarded] = await u.wait_for_bot_messages(OPS_CHAT, 1)
        with sqlite3.connect(db) as conn:
            conn.execute("DELETE FROM handoffs")  # as the retention purge does after 90 days
        conn.close()
        await u.send_message(OPS_CHAT, "Yes, apply together", OPERATOR, chat_type="supergroup", reply_to=forwarded)
        note = (await u.wait_for_bot_messages(OPS_CHAT, 2))[-1]
        assert note["text"].startswith("Not delivered: this question's record is gone")
        await quiet()
        assert len(await u.bot_messages(USER.id)) == 4


async def test_a_hand_off_the_database_refused_still_works_and_the_operators_are_told(
    server: Server, tmp_path: Path, staff_loaded: Loaded
) -> None:
    """The disk is full (or the file read-only) when a question is passed on: the operators are told
    that this question could not be stored, and a reply to it still reaches the person while the bot
    runs (kept in memory)."""
    config, faq, loaded = content(tmp_path, staff_loaded)
    env = new_env(server, tmp_path / "komek.sqlite3")
    async with serving(loaded, env, server, config=config, faq=faq) as bot:
        u = bot.user
        storage = bot.app.bot_data["services"].storage
        await u.send_message(USER.id, QUESTION, USER)
        answer = (await u.wait_for_bot_messages(USER.id, 1))[-1]
        await u.press_button(USER.id, answer, "ask", USER)
        consent = (await u.wait_for_bot_messages(USER.id, 2))[-1]
        await u.press_button(USER.id, consent, "ask:yes", USER)
        await u.wait_for_bot_messages(USER.id, 3)
        await storage._conn().execute_fetchall("PRAGMA query_only = ON")  # no write succeeds from now on
        await u.send_message(USER.id, "Is my case still open?", USER)
        await u.wait_for_bot_messages(USER.id, 4)
        forwarded, warning = await u.wait_for_bot_messages(OPS_CHAT, 2)
        assert "Is my case still open?" in forwarded["text"]
        assert "could not be stored" in warning["text"]
        await u.send_message(OPS_CHAT, "Yes, it is", OPERATOR, chat_type="supergroup", reply_to=forwarded)
        assert "Yes, it is" in (await u.wait_for_bot_messages(USER.id, 5))[-1]["text"]
        assert (await u.wait_for_bot_messages(OPS_CHAT, 3))[-1]["text"] == "✓ delivered"
        await storage._conn().execute_fetchall("PRAGMA query_only = OFF")


# ------------------------------------------------------------------------------ admin commands


async def test_admin_commands_answer_only_in_a_private_chat_or_the_operators_chat(
    server: Server, tmp_path: Path, staff_loaded: Loaded
) -> None:
    """/unanswered typed in a public group posted the questions there."""
    config, faq, loaded = content(tmp_path, staff_loaded)
    env = new_env(server, tmp_path / "komek.sqlite3")
    public = -100555444
    async with serving(loaded, env, server, config=config, faq=faq) as bot:
        u = bot.user
        await u.send_message(USER.id, "who will win the football tonight", USER)
        await u.wait_for_bot_messages(USER.id, 1)
        for command in ("/unanswered", "/stats", "/unanswered@komek_test_bot"):
            await u.send_command(public, command, ADMIN, chat_type="supergroup")
        # /unanswered: a header, then one message per question (with its teach buttons)
        await u.send_command(OPS_CHAT, "/unanswered", ADMIN, chat_type="supergroup")
        assert any("football" in m["text"] for m in await u.wait_for_bot_messages(OPS_CHAT, 2))
        await u.send_command(ADMIN.id, "/unanswered", ADMIN)
        assert any("football" in m["text"] for m in await u.wait_for_bot_messages(ADMIN.id, 2))
        await quiet()
        assert await u.bot_messages(public) == []


async def test_admin_commands_and_subscribe_pass_the_flood_guard(
    server: Server, tmp_path: Path, staff_loaded: Loaded
) -> None:
    """200 /stats gave 200 replies, 200 /subscribe 200 database writes. Now as for every message: 20
    a minute (telegram.flood_messages_per_minute), one "slow down", then silence."""
    config, faq, loaded = content(tmp_path, staff_loaded)
    env = new_env(server, tmp_path / "komek.sqlite3")
    async with serving(loaded, env, server, config=config, faq=faq) as bot:
        u = bot.user
        for _ in range(30):
            await u.send_command(ADMIN.id, "/stats", ADMIN)
            await u.send_command(USER.id, "/subscribe", USER)
        await u.wait_for_bot_messages(ADMIN.id, 21, timeout=20)
        await u.wait_for_bot_messages(USER.id, 21, timeout=20)
        await quiet(1.5)
        for person in (ADMIN, USER):
            got = await answers(u, person.id)
            assert len(got) == 21, person.id
            assert got[-1] == loaded.knowledge.t("slow_down", "en" if person is USER else "ru")


# ------------------------------------------------------------------------------ privacy


async def test_ask_a_person_covers_the_next_message_only(server: Server, tmp_path: Path, staff_loaded: Loaded) -> None:
    """After "yes", /help, /start, a menu press, a sticker or an edit of an old message: the next
    question is an ordinary question again, never forwarded. Before, the consent never expired and
    an edited old message was forwarded."""
    config, faq, loaded = content(tmp_path, staff_loaded)
    env = new_env(server, tmp_path / "komek.sqlite3")
    async with serving(loaded, env, server, config=config, faq=faq) as bot:
        u = bot.user
        for n, step in enumerate(["/help", "/start", "menu", "sticker", "edit"]):
            person = SimUser(
                id=555_200_001 + n, first_name="C", language_code="en"
            )  # the flood guard counts per person
            old = await u.send_message(person.id, QUESTION, person)
            answer = (await u.wait_for_bot_messages(person.id, 1))[-1]
            await u.press_button(person.id, answer, "ask", person)
            consent = (await u.wait_for_bot_messages(person.id, 2))[-1]
            await u.press_button(person.id, consent, "ask:yes", person)
            write_now = (await u.wait_for_bot_messages(person.id, 3))[-1]
            if step.startswith("/"):
                await u.send_command(person.id, step, person)
            elif step == "menu":
                await u.press_button(person.id, write_now, "menu", person, force=True)
                edited = functools.partial(_edited, u, person.id, write_now)
                await u.wait_for(edited, message="the menu shown in place")
            elif step == "sticker":
                await u.send_sticker(person.id, user=person)
            else:
                await u.edit_message(person.id, old, "can I work here")
            count = len(await u.wait_for_bot_messages(person.id, 3 + (step != "menu")))
            await u.send_message(person.id, QUESTION, person)
            answer = (await u.wait_for_bot_messages(person.id, count + 1))[-1]
            assert "fb:" in str(answer["reply_markup"]), step  # an FAQ answer, not "passed on"
        await quiet()
        assert await u.bot_messages(OPS_CHAT) == []


async def test_no_memory_per_user_grows_in_ptb(server: Server, tmp_path: Path, staff_loaded: Loaded) -> None:
    """PTB's user_data kept a dict for every user who ever wrote (≈190 B each, never released)."""
    config, faq, loaded = content(tmp_path, staff_loaded)
    env = new_env(server, tmp_path / "komek.sqlite3")
    crowd = [SimUser(id=555_300_000 + i, first_name="M", language_code="ru") for i in range(40)]
    async with serving(loaded, env, server, config=config, faq=faq) as bot:
        for person in crowd:
            await bot.user.send_message(person.id, "можно ли мне работать", person)
        for person in crowd:
            await bot.user.wait_for_bot_messages(person.id, 1)
        assert len(bot.app.user_data) == 0 and len(bot.app.chat_data) == 0


async def test_forget_says_the_truth_when_the_database_is_unavailable_and_tries_it_again(
    server: Server, tmp_path: Path, staff_loaded: Loaded
) -> None:
    """The database could not be opened at start: /forget said everything was deleted, and the
    database was never tried again. Now it says it did not work; once the database can be opened,
    the next /forget opens it and deletes."""
    _, _, loaded = content(tmp_path, staff_loaded)
    blocker = tmp_path / "db-folder"
    blocker.write_text("a file where the database's folder should be")
    env = new_env(server, blocker / "komek.sqlite3")
    person = SimUser(id=555_400_001, first_name="F", language_code="ru")
    async with serving(loaded, env, server) as bot:
        u = bot.user
        await forget(u, person, 2)
        assert (await answers(u, person.id))[-1] == loaded.knowledge.t("error_reply", "ru")
        blocker.unlink()  # the disk is fixed
        await forget(u, person, 4)
        assert (await answers(u, person.id))[-1].startswith("Готово. Удалено:")
    assert (blocker / "komek.sqlite3").is_file()


async def forget(u: BotApiClient, person: SimUser, count: int) -> None:
    await u.send_command(person.id, "/forget", person)
    prompt = (await u.wait_for_bot_messages(person.id, count - 1))[-1]
    await u.press_button(person.id, prompt, "forget:yes", person)
    await u.wait_for_bot_messages(person.id, count)


async def test_a_subscriber_who_blocked_the_bot_is_unsubscribed(
    server: Server, tmp_path: Path, staff_loaded: Loaded
) -> None:
    config, faq, loaded = content(tmp_path, staff_loaded)
    db = tmp_path / "komek.sqlite3"
    env = new_env(server, db)
    async with serving(loaded, env, server, config=config, faq=faq) as bot:
        u = bot.user
        await u.send_command(USER.id, "/subscribe", USER)
        await u.wait_for_bot_messages(USER.id, 1)
        await u.block(USER.id)
        try:
            await u.send_command(ADMIN.id, "/announce Office closed", ADMIN)
            report = await u.wait_for(lambda: _report(u), message="the announcement's report")
        finally:
            await u.reset_faults()
        assert "0 delivered, 1 blocked" in report
    [(subscribed, chat_seal)] = [(r[5], r[6]) for r in db_rows(db)["users"]]
    assert (subscribed, chat_seal) == (0, None)  # unsubscribed, and the sealed chat reference gone


async def test_a_failed_reload_gives_the_admin_one_message(
    server: Server, tmp_path: Path, staff_loaded: Loaded
) -> None:
    config, faq, loaded = content(tmp_path, staff_loaded)
    env = new_env(server, tmp_path / "komek.sqlite3")
    async with serving(loaded, env, server, config=config, faq=faq) as bot:
        asylum = faq / "asylum.yaml"
        asylum.write_text(asylum.read_text(encoding="utf-8") + "\n  - id: [broken\n", encoding="utf-8")
        await bot.user.send_command(ADMIN.id, "/reload", ADMIN)
        await bot.user.wait_for_bot_messages(ADMIN.id, 1)
        await quiet()
        [message] = await bot.user.bot_messages(ADMIN.id)
        assert "refused" in message["text"] and "asylum.yaml:" in message["text"]


@pytest.fixture
def server(botapi_server: Server) -> Server:
    return botapi_server

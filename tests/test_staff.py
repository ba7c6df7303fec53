"""End to end, staff workflow: live FAQ reload, a broken edit, admin-only commands, the operator
hand-off both ways, and announcements to subscribers only — the real Application over HTTP."""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml
from botapi_client import BotApiClient, BotApiServer, SimUser, buttons
from test_bot import last, new_env, running

from bot.content import Loaded, load_knowledge
from bot.staff import parse_announcement, reload_job

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent
ADMIN = SimUser(id=700000001, first_name="Staff", language_code="ru")
OPERATOR = SimUser(id=700000002, first_name="Operator", language_code="ru")
OPS_CHAT = -100999000
USER = SimUser(id=555100001, first_name="Gulnara", language_code="en")
OTHER = SimUser(id=555100002, first_name="Hamid", language_code="en")


def staff_copy(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the content with admins and an operators' chat configured."""
    faq = tmp_path / "faq"
    shutil.copytree(ROOT / "faq", faq)
    text = (ROOT / "config.yaml").read_text(encoding="utf-8")
    text = text.replace("  admins: []", f"  admins: [{ADMIN.id}]")
    text = text.replace("  operators_chat: null", f"  operators_chat: {OPS_CHAT}")
    config = tmp_path / "config.yaml"
    config.write_text(text.replace("faq_dir: faq", f"faq_dir: {faq}"), encoding="utf-8")
    return config, faq


@pytest.fixture(scope="module")
def staff_loaded(tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    """A staff copy's content, loaded once per module from a copy no test changes (loading takes a
    second or two). Each test's own staff_copy starts out identical: its bot starts from this and
    reloads from the test's own files, which are the ones it changes."""
    config, faq = staff_copy(tmp_path_factory.mktemp("staff-content"))
    return load_knowledge(config, faq, dt.date.today())


async def run_reload_job(app: Any) -> None:
    [job] = [j for j in app.job_queue.jobs() if j.callback is reload_job]
    await job.run(app)


async def test_live_reload_and_broken_edit(botapi_server: BotApiServer, tmp_path: Path, staff_loaded: Loaded) -> None:
    config, faq = staff_copy(tmp_path)
    loaded = staff_loaded
    env = new_env(botapi_server, tmp_path / "komek.sqlite3")
    async with running(loaded, env, botapi_server, config=config, faq=faq) as bot:
        u = bot.user
        asylum = faq / "asylum.yaml"
        original = asylum.read_text(encoding="utf-8")
        data = yaml.safe_load(original)
        old_answer = next(e for e in data["entries"] if e["id"] == "asylum-apply")["en"]["answer"].strip()
        first_line = old_answer.splitlines()[0]
        asylum.write_text(original.replace(first_line, first_line + " RELOADED-MARKER", 1), encoding="utf-8")
        await run_reload_job(bot.app)  # what the 30-second job does
        await u.send_message(USER.id, "how do I apply for asylum", USER)
        assert "RELOADED-MARKER" in (await last(u, USER.id, 1))["text"]

        asylum.write_text(asylum.read_text(encoding="utf-8") + "\n  - id: [broken\n", encoding="utf-8")
        await run_reload_job(bot.app)
        alert = await last(u, ADMIN.id, 1)
        assert "not reloaded" in alert["text"] and "asylum.yaml:" in alert["text"]
        await u.send_message(USER.id, "how do I apply for asylum", USER)
        assert "RELOADED-MARKER" in (await last(u, USER.id, 2))["text"]  # the last good version
        await run_reload_job(bot.app)  # the same broken version: no second alert
        assert len(await u.bot_messages(ADMIN.id)) == 1


async def test_admin_commands_are_refused_to_others(
    botapi_server: BotApiServer, tmp_path: Path, staff_loaded: Loaded
) -> None:
    config, faq = staff_copy(tmp_path)
    loaded = staff_loaded
    env = new_env(botapi_server, tmp_path / "komek.sqlite3")
    async with running(loaded, env, botapi_server, config=config, faq=faq) as bot:
        u = bot.user
        await u.send_message(USER.id, "how do I apply for asylum", USER)
        await last(u, USER.id, 1)
        await u.send_command(USER.id, "/stats", USER)
        refused = await last(u, USER.id, 2)
        assert "questions" not in refused["text"] and "/menu" in refused["text"]  # the plain help text
        await u.send_command(ADMIN.id, "/stats", ADMIN)
        stats = await last(u, ADMIN.id, 1)
        assert "Today: 1 questions" in stats["text"] and "asylum-apply" in stats["text"]
        await u.send_message(USER.id, "who will win the football tonight", USER)
        await last(u, USER.id, 3)
        await u.send_command(ADMIN.id, "/unanswered", ADMIN)
        assert "football" in (await last(u, ADMIN.id, 3))["text"]  # after the header, one message per question


async def test_operator_handoff_both_ways(botapi_server: BotApiServer, tmp_path: Path, staff_loaded: Loaded) -> None:
    config, faq = staff_copy(tmp_path)
    loaded = staff_loaded
    db = tmp_path / "komek.sqlite3"
    env = new_env(botapi_server, db)
    async with running(loaded, env, botapi_server, config=config, faq=faq) as bot:
        u = bot.user
        await u.send_message(USER.id, "how do I apply for asylum", USER)
        answer = await last(u, USER.id, 1)
        assert any(b.get("callback_data") == "ask" for b in buttons(answer))
        await u.press_button(USER.id, answer, "ask", USER)
        consent = await last(u, USER.id, 2)
        assert "not your name" in consent["text"]
        await u.press_button(USER.id, consent, "ask:yes", USER)
        await last(u, USER.id, 3)
        await u.send_message(USER.id, "My case was refused last week, what can I do now?", USER)
        sent = await last(u, USER.id, 4)
        assert "passed on" in sent["text"]
        [forwarded] = await u.wait_for_bot_messages(OPS_CHAT, 1)
        assert "refused last week" in forwarded["text"]
        assert "Gulnara" not in forwarded["text"]

        await u.send_message(
            OPS_CHAT, "Please call the legal aid line", OPERATOR, chat_type="supergroup", reply_to=forwarded
        )
        back = await last(u, USER.id, 5)
        assert "Answer from a staff member" in back["text"] and "legal aid line" in back["text"]
        confirm = await u.wait_for_bot_messages(OPS_CHAT, 2)
        assert "delivered" in confirm[1]["text"]
    with sqlite3.connect(db) as conn:
        seals = [r[0] for r in conn.execute("SELECT chat_seal FROM handoffs")]
    assert len(seals) == 1 and str(USER.id) not in seals[0]
    assert str(USER.id).encode() not in db.read_bytes()


async def test_announcement_reaches_only_subscribers(
    botapi_server: BotApiServer, tmp_path: Path, staff_loaded: Loaded
) -> None:
    config, faq = staff_copy(tmp_path)
    loaded = staff_loaded
    env = new_env(botapi_server, tmp_path / "komek.sqlite3")
    async with running(loaded, env, botapi_server, config=config, faq=faq) as bot:
        u = bot.user
        await u.send_command(USER.id, "/start en", USER)
        await u.send_command(USER.id, "/subscribe", USER)
        assert "subscribed" in (await last(u, USER.id, 2))["text"]
        await u.send_command(OTHER.id, "/start en", OTHER)
        await last(u, OTHER.id, 1)
        await u.send_command(ADMIN.id, "/announce\nru: Офис закрыт 1 мая\nen: The office is closed on 1 May", ADMIN)
        assert "Sending to 1 subscriber" in (await last(u, ADMIN.id, 1))["text"]
        report = await last(u, ADMIN.id, 2)  # the broadcast runs on its own; its report follows
        assert "1 delivered, 0 blocked, 0 failed (of 1)" in report["text"]
        news = await last(u, USER.id, 3)
        assert "closed on 1 May" in news["text"]
        assert len(await u.bot_messages(OTHER.id)) == 1  # only its greeting

        await u.send_command(USER.id, "/unsubscribe", USER)
        await last(u, USER.id, 4)
        await u.send_command(ADMIN.id, "/announce Second news", ADMIN)
        assert "0 delivered" in (await last(u, ADMIN.id, 4))["text"]


def test_parse_announcement() -> None:
    langs = ("ru", "kk", "en")
    assert parse_announcement("hello all", langs) == {"ru": "hello all", "kk": "hello all", "en": "hello all"}
    assert parse_announcement("ru: привет\nпока\nen: hi", langs) == {"ru": "привет\nпока", "en": "hi"}
    assert parse_announcement("   ", langs) == {}


_ = BotApiClient  # re-exported for type checkers of the helpers above

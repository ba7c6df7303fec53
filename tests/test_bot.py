"""End to end: the real Komek Application (python-telegram-bot 22) long-polls the Bot API emulator
over HTTP on 127.0.0.1, simulated users talk to it, and the SQLite file is checked afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import socket
import sqlite3
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from botapi_client import BotApiClient, BotApiServer, SimUser, buttons, find_button
from conftest import child_env

from bot.app import Env, build_application
from bot.content import Loaded, load_knowledge
from bot.webhook import SECRET_HEADER, serve_webhook

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent
_ids = itertools.count(810001)


@pytest.fixture(scope="module")
def loaded() -> Loaded:
    return load_knowledge(ROOT / "config.yaml", None, dt.date.today())


@dataclass
class Bot:
    app: Any
    user: BotApiClient
    env: Env


def new_env(server: BotApiServer, db: Path, token: str | None = None) -> Env:
    return Env(
        token=token or f"{next(_ids)}:KOMEK-{uuid.uuid4().hex[:20]}",
        secret=b"test-secret-key-0123456789",
        db_path=db,
        base_url=server.base_url,
        base_file_url=server.base_file_url,
        webhook_secret=None,
    )


@contextlib.asynccontextmanager
async def running(
    loaded: Loaded, env: Env, server: BotApiServer, config: Path | None = None, faq: Path | None = None
) -> AsyncIterator[Bot]:
    app = build_application(loaded, env, config or ROOT / "config.yaml", faq)
    # build_application always sets both hooks and keeps PTB's updater (Optional in PTB's types)
    assert app.post_init is not None and app.post_shutdown is not None and app.updater is not None
    async with server.client(env.token) as user, app:
        await app.post_init(app)
        await app.start()
        await app.updater.start_polling(poll_interval=0, timeout=1)
        try:
            yield Bot(app, user, env)
        finally:
            await app.updater.stop()
            await app.stop()
            await app.post_shutdown(app)


async def last(user: BotApiClient, chat: int, count: int) -> dict[str, Any]:
    messages = await user.wait_for_bot_messages(chat, count)
    return messages[count - 1]


ALICE = SimUser(id=555000111, first_name="Alice", username="alice_secret_handle", language_code="ru")


async def test_first_start_language_menu_and_free_text(
    loaded: Loaded, botapi_server: BotApiServer, tmp_path: Path
) -> None:
    env = new_env(botapi_server, tmp_path / "komek.sqlite3")
    async with running(loaded, env, botapi_server) as bot:
        u, chat = bot.user, ALICE.id
        await u.send_command(chat, "/start", ALICE)
        picker = await last(u, chat, 1)
        assert [b["callback_data"] for b in buttons(picker)] == ["lang:ru", "lang:kk", "lang:en"]

        await u.press_button(chat, picker, "lang:kk", ALICE)
        greeting = await last(u, chat, 2)
        assert "Көмек" in greeting["text"] and "Тіл: қазақша" in greeting["text"]
        section = find_button(greeting, "Пана және босқындар")

        # menu → section → entry → back
        await u.press_button(chat, greeting, section["callback_data"], ALICE)
        await u.wait_for(lambda: _edited(u, chat, greeting["message_id"]), message="the menu edited in place")
        menu_msg = (await u.bot_messages(chat))[1]
        entry_button = buttons(menu_msg)[0]
        assert entry_button["callback_data"].startswith("faq:")
        await u.press_button(chat, menu_msg, entry_button["callback_data"], ALICE)
        answer = await last(u, chat, 3)
        assert "👍" in [b["text"][:1] for b in buttons(answer)]
        await u.press_button(chat, menu_msg, find_button(menu_msg, "← Артқа")["callback_data"], ALICE)

        # free text in Russian, answered in the chosen language (Kazakh)
        await u.send_message(chat, "как подать заявление на статус беженца", ALICE)
        reply = await last(u, chat, 4)
        assert "Департамент" not in reply["text"]  # Kazakh answer, not the Russian one
        assert any(b.get("callback_data", "").startswith("fb:") for b in buttons(reply))


async def _edited(u: BotApiClient, chat: int, message_id: int) -> bool:
    return any(m["message_id"] == message_id and m.get("edit_date") for m in await u.bot_messages(chat))


async def test_did_you_mean_fallback_urgent_and_sticker(
    loaded: Loaded, botapi_server: BotApiServer, tmp_path: Path
) -> None:
    env = new_env(botapi_server, tmp_path / "komek.sqlite3")
    bob = SimUser(id=555000222, first_name="Bob", language_code="en")
    async with running(loaded, env, botapi_server) as bot:
        u, chat, n = bot.user, bob.id, 0

        await u.send_message(chat, "documents", bob)
        n += 1
        dym = await last(u, chat, n)
        faq_buttons = [b for b in buttons(dym) if b.get("callback_data", "").startswith("faq:")]
        assert faq_buttons, dym["text"]
        await u.press_button(chat, dym, faq_buttons[0]["callback_data"], bob)
        n += 1
        chosen = await last(u, chat, n)
        assert any(b.get("callback_data", "").startswith("fb:") for b in buttons(chosen))

        await u.send_message(chat, "who will win the football match tonight", bob)
        n += 1
        fallback = await last(u, chat, n)
        assert "help.unhcr.org/centralasia" in fallback["text"]
        assert any(b.get("callback_data") == "menu" for b in buttons(fallback))

        await u.send_message(chat, "the police detained my brother, they want to deport him", bob)
        n += 1
        urgent = await last(u, chat, n)
        # held now: "I ask for asylum" in Russian, UNHCR and legal aid, then 112 (issue 13)
        assert urgent["text"].index("Я прошу убежища") < urgent["text"].index("112") < 400

        await u.send_sticker(chat, user=bob)
        n += 1
        sticker = await last(u, chat, n)
        assert "only read text" in sticker["text"]


async def test_deep_links_group_and_forget(loaded: Loaded, botapi_server: BotApiServer, tmp_path: Path) -> None:
    db = tmp_path / "komek.sqlite3"
    env = new_env(botapi_server, db)
    carol = SimUser(id=555000333, first_name="Carol", username="carol_private_name", language_code="kk")
    async with running(loaded, env, botapi_server) as bot:
        u, chat = bot.user, carol.id
        await u.send_command(chat, "/start en_asylum-apply", carol)
        first = await last(u, chat, 1)
        assert "Department of Employment" in first["text"]

        # a group: ignored unless addressed; addressed gets the answer and a private-chat hint
        group = -100777
        await u.send_message(group, "как подать на убежище", carol, chat_type="group")
        username = (await bot.app.bot.get_me()).username
        await u.send_message(group, f"@{username} как подать на убежище", carol, chat_type="group")
        [group_reply] = await u.wait_for_bot_messages(group, 1)
        assert "For personal questions" in group_reply["text"]  # carol chose English above
        assert len(await u.bot_messages(group)) == 1

        await u.send_message(chat, "мне угрожает депортация, телефон +7 701 123 45 67", carol)
        await last(u, chat, 2)
        await u.send_message(chat, "где купить дешёвый айфон", carol)
        await last(u, chat, 3)

        await u.send_command(chat, "/forget", carol)
        prompt = await last(u, chat, 4)
        await u.press_button(chat, prompt, "forget:yes", carol)
        done = await last(u, chat, 5)
        assert "Deleted" in done["text"]
    with sqlite3.connect(db) as conn:
        for table in ("users", "events", "unanswered", "feedback"):
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table


async def test_restart_remembers_language_and_db_holds_no_identity(
    loaded: Loaded, botapi_server: BotApiServer, tmp_path: Path
) -> None:
    db = tmp_path / "komek.sqlite3"
    env = new_env(botapi_server, db)
    dave = SimUser(id=555000444, first_name="Dave", username="dave_handle_xyz", language_code=None)
    async with running(loaded, env, botapi_server) as bot:
        u, chat = bot.user, dave.id
        await u.send_command(chat, "/start en", dave)
        await last(u, chat, 1)
        await u.send_message(chat, "my IIN is 900101300123 and mail dave@example.org, what is the weather", dave)
        await last(u, chat, 2)
    async with running(loaded, env, botapi_server) as bot:  # a new process: same database, same token
        await bot.user.send_message(chat, "как подать на убежище", dave)
        reply = await last(bot.user, chat, 3)
        assert "Department" in reply["text"]  # English remembered, though the message is Russian
    raw = _database_bytes(tmp_path)
    for secret in (str(dave.id), "dave_handle_xyz", "Dave", "900101300123", "dave@example.org", "как подать"):
        assert secret.encode() not in raw, secret
    with sqlite3.connect(db) as conn:
        texts = [r[0] for r in conn.execute("SELECT text FROM unanswered")]
    assert texts and all("[iin]" in t and "[email]" in t for t in texts)


def _database_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.glob("komek.sqlite3*")))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_webhook_refuses_requests_without_the_secret(
    loaded: Loaded, botapi_server: BotApiServer, tmp_path: Path
) -> None:
    """The server of `python -m bot webhook` (bot/webhook.py): 403 without the secret token or with
    a wrong one, and the update is not handled; with it, 200 once the update has been handled."""
    env = new_env(botapi_server, tmp_path / "komek.sqlite3")
    app = build_application(loaded, env, ROOT / "config.yaml", None)
    port = _free_port()
    url = f"http://127.0.0.1:{port}/telegram"
    stop = asyncio.Event()
    server = asyncio.create_task(
        serve_webhook(app, listen="127.0.0.1", port=port, path="/telegram", url=url, secret="s3cret-Token_1", stop=stop)
    )
    try:
        async with botapi_server.client(env.token) as user:
            await user.wait_for(lambda: _webhook_set(user, server), timeout=20, message="the webhook to be set")
            update = {
                "update_id": 1,
                "message": {
                    "message_id": 1,
                    "date": 0,
                    "chat": {"id": 1, "type": "private"},
                    "from": {"id": 1, "is_bot": False, "first_name": "A"},
                    "text": "/start",
                },
            }
            async with httpx.AsyncClient(timeout=30) as http:
                assert (await http.post(url, json=update)).status_code == 403
                wrong = {SECRET_HEADER: "nope"}
                assert (await http.post(url, json=update, headers=wrong)).status_code == 403
                assert await user.bot_messages(1) == []  # refused requests are not handled
                right = {SECRET_HEADER: "s3cret-Token_1"}
                assert (await http.post(url, json=update, headers=right)).status_code == 200
                # stored before the 200 (bot/inbox.py), handled right after
                assert await user.wait_for_bot_messages(1, 1) != []
    finally:
        stop.set()
        await asyncio.wait_for(server, timeout=30)


async def _webhook_set(user: BotApiClient, server: Any) -> bool:
    if server.done():
        server.result()  # start-up failed: raise its error here
    return bool((await user.calls()).get("setWebhook"))


async def test_edits_voice_flood_faults_blocking_and_no_token_in_logs(
    loaded: Loaded, botapi_server: BotApiServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.privacy import install_log_redaction

    db = tmp_path / "komek.sqlite3"
    env = new_env(botapi_server, db)
    install_log_redaction([env.token, env.secret.decode()])
    erin = SimUser(id=555000555, first_name="Erin", language_code="en")
    caplog.set_level("DEBUG")
    async with running(loaded, env, botapi_server) as bot:
        u, chat, n = bot.user, erin.id, 0
        # an edited message is answered as a new question
        first = await u.send_message(chat, "hello", erin)
        n += 1
        await last(u, chat, n)
        await u.edit_message(chat, first, "how do I apply for asylum")
        n += 1
        assert "Department of Employment" in (await last(u, chat, n))["text"]

        # voice: the bot reads text only, and offers the phone numbers
        await u.send_voice(chat, user=erin)
        n += 1
        assert "prefer to talk" in (await last(u, chat, n))["text"]

        # a button of an entry that no longer exists (content changed)
        menu = (await u.bot_messages(chat))[n - 1]
        await u.press_button(chat, menu, "faq:removed-entry", erin, force=True)
        n += 1
        assert "has been updated" in (await last(u, chat, n))["text"]

        # Telegram says "slow down" (429) twice: the bot waits as told and still answers
        await u.set_fault("sendMessage", "429", count=2, retry_after=1)
        await u.send_message(chat, "can a refugee get a job", erin)
        n += 1
        assert "work" in (await u.wait_for_bot_messages(chat, n, timeout=10))[n - 1]["text"].lower()

        # flood: the 21st message within a minute gets one polite slow-down reply, then silence
        for i in range(25):
            await u.send_message(chat, f"question number {i} about school", erin)
        await u.wait_for(lambda: _count_text(u, chat, "sending messages very fast"), timeout=10)
        total = len(await u.bot_messages(chat))
        assert await _count_text(u, chat, "sending messages very fast") == 1
        assert total < n + 25

        # a user who blocked the bot is marked blocked, and there is no error storm
        frank = SimUser(id=555000666, first_name="Frank", language_code="en")
        await u.send_message(frank.id, "hello", frank)
        await last(u, frank.id, 1)
        await u.block(frank.id)
        await u.send_message(frank.id, "how do I apply for asylum", frank)
        await u.wait_for(lambda: _blocked_count(db), timeout=5)
        await u.reset_faults()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert env.token not in text and env.token.split(":")[1] not in text
    assert not [r for r in caplog.records if r.levelname == "ERROR"], text[-2000:]


async def _count_text(u: BotApiClient, chat: int, needle: str) -> int:
    return sum(needle in (m.get("text") or "") for m in await u.bot_messages(chat))


def _blocked_count(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM users WHERE blocked = 1").fetchone()[0])


def test_run_without_secret_or_token_says_so_and_exits_2(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = child_env()
    out = subprocess.run([sys.executable, "-m", "bot", "run"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 2 and "TELEGRAM_BOT_TOKEN is not set" in out.stderr
    env["TELEGRAM_BOT_TOKEN"] = "123:abc"
    out = subprocess.run([sys.executable, "-m", "bot", "run"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 2 and "KOMEK_SECRET" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1

"""The leaner send path (bot/app.py SendRequest, bot/handlers.py post_message, the polling loop's
getUpdates) sends exactly what python-telegram-bot's own calls send, over HTTP to the Bot API
emulator, and fails the same way."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest
from botapi_client import BotApiServer, SimUser
from telegram import Update
from telegram.ext import ExtBot
from telegram.request import HTTPXRequest
from test_bot import new_env

from bot.app import SEND_CONNECTIONS, SendRequest, build_application
from bot.content import Loaded, load_knowledge
from bot.dialogue import Button
from bot.handlers import post_message
from bot.inbox import Inbox
from bot.keyboards import inline_keyboard
from bot.polling import Poller

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent
TEXT = "<b>Статус беженца</b> — подайте заявление; телефон +7 (7172) 00-00-00, «кавычки» & <i>ещё</i> 🙂"
KEYBOARD = (
    (Button("👍", data="fb:asylum-apply:1"), Button("👎", data="fb:asylum-apply:0")),
    (Button("Сайт УВКБ ООН", url="https://help.unhcr.org/centralasia/"),),
)


@pytest.fixture(scope="module")
def loaded() -> Loaded:
    return load_knowledge(ROOT / "config.yaml", None, dt.date.today())


async def test_post_message_sends_what_send_message_sends(
    loaded: Loaded, botapi_server: BotApiServer, tmp_path: Path
) -> None:
    env = new_env(botapi_server, tmp_path / "komek.sqlite3")
    app = build_application(loaded, env, ROOT / "config.yaml", None)
    markup = inline_keyboard(KEYBOARD)
    async with botapi_server.client(env.token) as user, app:
        assert isinstance(app.bot.request, SendRequest)
        await app.bot.send_message(810, TEXT, parse_mode="HTML", reply_markup=markup)  # PTB's own call
        await post_message(app.bot, 811, TEXT, markup)
        await app.bot.send_message(812, "x" * 3000)
        await post_message(app.bot, 813, "x" * 3000, None)
        async with ExtBot(env.token, base_url=env.base_url or "", defaults=app.bot.defaults) as plain:
            assert type(plain.request) is HTTPXRequest  # PTB's stock request: a form-urlencoded body
            await plain.send_message(814, TEXT, parse_mode="HTML", reply_markup=markup)
        sent = [r["params"] for r in await user.requests("sendMessage")]
        messages = {m["chat_id"]: m for m in await user.bot_messages()}
    assert len(sent) == 5
    for ptb, ours in ((sent[0], sent[1]), (sent[2], sent[3]), (sent[4], sent[1])):
        assert {k: v for k, v in ours.items() if k != "chat_id"} == {k: v for k, v in ptb.items() if k != "chat_id"}
    assert sent[1]["link_preview_options"]  # the app's Defaults still apply
    assert messages[810]["text"] == messages[811]["text"]
    assert messages[810]["reply_markup"] == messages[811]["reply_markup"]


async def test_errors_are_the_same(loaded: Loaded, botapi_server: BotApiServer, tmp_path: Path) -> None:
    env = new_env(botapi_server, tmp_path / "komek.sqlite3")
    app = build_application(loaded, env, ROOT / "config.yaml", None)
    async with botapi_server.client(env.token) as user, app:
        await user.set_fault("sendMessage", "429", count=2, retry_after=3)
        errors = []
        for call in (app.bot.send_message(820, "x"), post_message(app.bot, 820, "x", None)):
            with pytest.raises(Exception) as caught:
                await call
            errors.append(caught.value)
        bad = "<b>unclosed"
        for call in (app.bot.send_message(821, bad, parse_mode="HTML"), post_message(app.bot, 821, bad, None)):
            with pytest.raises(Exception) as caught:
                await call
            errors.append(caught.value)
    assert [type(e) for e in errors[:2]] == [type(errors[0])] * 2 and type(errors[0]).__name__ == "RetryAfter"
    assert type(errors[2]) is type(errors[3]) and str(errors[2]) == str(errors[3])


async def test_the_send_slots_wait_at_most_the_pool_timeout() -> None:
    """All slots busy: a request waits, then fails like httpx's pool timeout (not sent at all)."""
    from telegram.error import TimedOut

    request = SendRequest(connection_pool_size=1, pool_timeout=0.05)
    await request.initialize()
    try:
        await request._slots.acquire()  # the one connection is busy
        with pytest.raises(TimedOut, match="Pool timeout"):
            await request.post("http://127.0.0.1:9/botX/getMe")
        request._slots.release()
        assert SEND_CONNECTIONS >= 2  # one send stuck on a slow chat must not stop every other
    finally:
        await request.shutdown()


async def test_poller_stores_confirms_and_hands_each_update_over_once(
    loaded: Loaded, botapi_server: BotApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch is stored in the inbox (sealed), confirmed by the next poll while its handlers still
    run, and each update is handled once; the handled ones are erased from the inbox."""
    env = new_env(botapi_server, tmp_path / "komek.sqlite3")
    app = build_application(loaded, env, ROOT / "config.yaml", None)
    handled: list[int] = []
    release = asyncio.Event()

    async def process(update: Update) -> None:
        handled.append(update.update_id)
        await release.wait()

    async with botapi_server.client(env.token) as user, app:
        svc = app.bot_data["services"]
        storage = await svc.open_storage(force=True)
        inbox = Inbox(app, svc)
        poller = Poller(app, inbox, timeout=0)
        monkeypatch.setattr(app, "process_update", process)
        people = [SimUser(id=830 + i, first_name="P", language_code="en") for i in range(3)]
        for person in people:
            await user.send_message(person.id, "hello", person)
        asked, first = await poller._get_updates(0)
        ids = [u["update_id"] for u in first]
        assert asked == 0 and len(ids) == 3
        assert await poller._take(first) == 3
        assert poller.offset == ids[-1] + 1  # stored: confirmed by the next poll
        assert [(u, p is not None) for u, p in await storage.inbox_rows()] == [(u, True) for u in ids]
        assert b"hello" not in b"".join(p or b"" for _, p in await storage.inbox_rows())  # sealed
        await asyncio.sleep(0.05)
        assert sorted(handled) == ids  # all three running at once (three chats)
        asked, again = await poller._get_updates(0)
        assert (asked, again) == (ids[-1] + 1, [])
        assert int((await user.updates())["pending"]) == 0  # while the handlers still run
        await user.send_message(people[0].id, "more", people[0])
        _, newer = await poller._get_updates(0)
        assert [u["update_id"] for u in newer] == [ids[-1] + 1]
        await poller._take(newer)
        release.set()
        await inbox.idle(5)
        assert sorted(handled) == [*ids, ids[-1] + 1]
        assert [p for _, p in await storage.inbox_rows()] == [None] * 4  # handled: payload erased
        await inbox.confirmed(ids[-1] + 2)
        assert await storage.inbox_rows() == []  # confirmed and handled: nothing kept
        await storage.close()

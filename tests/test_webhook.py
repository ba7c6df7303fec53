"""Webhook mode, end to end: the Bot API emulator (tests/botapi) posts updates to Komek's own webhook
server (bot/webhook.py) on 127.0.0.1 and retries every second until it gets a 2xx, as Telegram does.

The emulator delivers one update at a time; the tests that need requests at the same time (the
secret, the per-chat order, re-sent updates) post to the server directly with httpx. The crash
test runs the real `python -m bot webhook` as a child process and kills it with SIGKILL mid-load.
Every wait is bounded, and every child process is ended in a `finally`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import test_hardening
from botapi_client import BotApiClient, BotApiServer, SimUser
from conftest import ContentCopy
from test_bot import Bot, new_env
from test_hardening import (
    BotProcess,
    answers,
    check_after_restart,
    crowd,
    db_rows,
    errors,
    expected_replies,
    log_problems,
    model_cache,
    new_token,
    received,
    send_all,
    sends,
)

from bot.app import Env, build_application
from bot.content import Loaded
from bot.dialogue import Knowledge, reply_to_text, split_message
from bot.webhook import SECRET_HEADER, serve_webhook

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent
HOOK_SECRET = "hook-Secret_0123456789"


# one frozen copy of the content for the bot and the expected answers: hardening's module fixtures
# (pytest finds them here under their names)
frozen = test_hardening.frozen
loaded = test_hardening.loaded
knowledge = test_hardening.knowledge


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def set_webhook_calls(user: BotApiClient) -> int:
    return int((await user.calls()).get("setWebhook", 0))


@contextlib.asynccontextmanager
async def webhook_serving(
    loaded: Loaded, env: Env, server: BotApiServer, drain_seconds: float = 10.0
) -> AsyncIterator[tuple[Bot, str]]:
    """The real Application behind the production webhook server (serve_webhook), in this event loop;
    yields the bot and the webhook's URL."""
    app = build_application(loaded, env, ROOT / "config.yaml", None)
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram"
    stop = asyncio.Event()
    async with server.client(env.token) as user:
        calls = await set_webhook_calls(user)  # the same bot may have set its webhook before
    task = asyncio.create_task(
        serve_webhook(
            app,
            listen="127.0.0.1",
            port=port,
            path="/telegram",
            url=url,
            secret=HOOK_SECRET,
            stop=stop,
            drain_seconds=drain_seconds,
        )
    )
    async with server.client(env.token) as user:
        try:

            async def ready() -> bool:
                if task.done():
                    task.result()  # start-up failed: raise its error here
                return await set_webhook_calls(user) > calls

            await user.wait_for(ready, timeout=20, message="the bot to set its webhook")
            yield Bot(app, user, env), url
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=30)


async def all_confirmed(user: BotApiClient) -> bool:
    return int((await user.updates())["pending"]) == 0


def message_update(update_id: int, person: SimUser, text: str, message_id: int = 1) -> dict[str, Any]:
    chat = {"id": person.id, "type": "private", "first_name": person.first_name}
    message = {"message_id": message_id, "date": int(time.time()), "chat": chat, "from": person.as_dict()}
    return {"update_id": update_id, "message": {**message, "text": text}}


# ------------------------------------------------------------------------------ end to end


async def test_webhook_answers_questions_end_to_end(
    loaded: Loaded, knowledge: Knowledge, botapi_server: BotApiServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Questions from a few people come through the webhook; each gets the dialogue's answer, in
    order, every update is confirmed, its event stored, and setWebhook was asked as documented."""
    caplog.set_level(logging.INFO)
    db = tmp_path / "komek.sqlite3"
    env = new_env(botapi_server, db)
    people = [SimUser(id=7_100_000_001 + i, first_name="W", language_code="en") for i in range(3)]
    questions = ["can my child go to school", "I need a doctor", "how do I apply for asylum"]
    async with webhook_serving(loaded, env, botapi_server) as (bot, url):
        u = bot.user
        [hook] = await u.requests("setWebhook")
        assert hook["params"]["url"] == url and hook["params"]["secret_token"] == HOOK_SECRET
        assert str(hook["params"].get("drop_pending_updates", "false")).lower() == "false"
        assert "message" in str(hook["params"]["allowed_updates"])
        for person in people:
            for text in questions:
                await u.send_message(person.id, text, person)
        want = [line for text in questions for line in split_message(reply_to_text(knowledge, text, "en").text)]
        for person in people:
            await u.wait_for_bot_messages(person.id, len(want), timeout=20)
            assert await answers(u, person.id) == want, person.id  # each once, in order
        await u.wait_for(lambda: all_confirmed(u), timeout=10, message="every update confirmed")
    assert len(db_rows(db)["events"]) == len(people) * len(questions)
    assert errors(caplog) == []


async def test_webhook_refuses_wrong_secrets_and_answers_once_stored(
    loaded: Loaded, knowledge: Knowledge, botapi_server: BotApiServer, tmp_path: Path
) -> None:
    """A request without the secret header, or with a wrong one, gets 403 and is not handled. With
    the right one, the 200 comes once the update is stored in the inbox, and the answer follows;
    the same update sent again is answered 200 without a second reply."""
    db = tmp_path / "komek.sqlite3"
    env = new_env(botapi_server, db)
    person = SimUser(id=7_200_000_001, first_name="S", language_code="en")
    update = message_update(900_000_001, person, "can my child go to school")
    want = split_message(reply_to_text(knowledge, "can my child go to school", "en").text)
    async with webhook_serving(loaded, env, botapi_server) as (bot, url), httpx.AsyncClient(timeout=30) as http:
        for headers in ({}, {SECRET_HEADER: "nope"}, {SECRET_HEADER: HOOK_SECRET[:-1]}, {SECRET_HEADER: ""}):
            assert (await http.post(url, json=update, headers=headers)).status_code == 403
        assert (await http.get(url, headers={SECRET_HEADER: HOOK_SECRET})).status_code == 405
        assert await bot.user.bot_messages(person.id) == []  # nothing handled
        assert db_rows(db)["events"] == []
        right = {SECRET_HEADER: HOOK_SECRET}
        assert (await http.post(url, json=update, headers=right)).status_code == 200
        await bot.user.wait_for_bot_messages(person.id, len(want))
        assert await answers(bot.user, person.id) == want
        assert (await http.post(url, json=update, headers=right)).status_code == 200  # Telegram re-sends
        assert (await http.post(url, content=b"{not json", headers=right)).status_code == 400
        assert (await http.post(url, json={"message": {}}, headers=right)).status_code == 400  # no update_id
        assert await answers(bot.user, person.id) == want  # once
    assert len(db_rows(db)["events"]) == 1


async def test_webhook_orders_each_chat_and_serves_others_meanwhile(
    loaded: Loaded, knowledge: Knowledge, botapi_server: BotApiServer, tmp_path: Path
) -> None:
    """Requests that come at once: each is answered 200 at once (stored), the chat whose first
    answer waits out a 429 gets both answers in order afterwards, and another chat is answered in
    the meantime."""
    env = new_env(botapi_server, tmp_path / "komek.sqlite3")
    slow, other = (SimUser(id=7_300_000_001 + i, first_name="O", language_code="en") for i in range(2))
    first, second = "can my child go to school", "I need a doctor"
    right = {SECRET_HEADER: HOOK_SECRET}
    async with webhook_serving(loaded, env, botapi_server) as (bot, url), httpx.AsyncClient(timeout=30) as http:
        await bot.user.set_fault("sendMessage", "429", count=1, chat_id=slow.id, retry_after=2)
        began = asyncio.get_running_loop().time()
        for n, (person, text) in enumerate(((slow, first), (slow, second), (other, second)), start=1):
            response = await http.post(url, json=message_update(900_100_000 + n, person, text, n), headers=right)
            assert response.status_code == 200
        assert asyncio.get_running_loop().time() - began < 1.5  # nobody waits for the 429
        await bot.user.wait_for_bot_messages(other.id, 1)
        assert await answers(bot.user, slow.id) == []  # still waiting out the 429
        want = [*split_message(reply_to_text(knowledge, first, "en").text)]
        want += split_message(reply_to_text(knowledge, second, "en").text)
        await bot.user.wait_for_bot_messages(slow.id, len(want))
        assert await answers(bot.user, slow.id) == want  # in the order they came


async def _got_status(u: BotApiClient, status: int) -> bool:
    return any(r["status"] == status for r in await u.requests("sendMessage"))


async def test_an_update_that_cannot_be_read_does_not_block_the_others(
    loaded: Loaded, botapi_server: BotApiServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A message without date or chat makes PTB's parser fail: it is answered 200 (or Telegram, and
    the emulator, would send it again and again, before anything else), with one log line that
    names only its id and the error's type; the next question is answered."""
    caplog.set_level(logging.INFO)
    env = new_env(botapi_server, tmp_path / "komek.sqlite3")
    async with webhook_serving(loaded, env, botapi_server) as (bot, _url):
        u = bot.user
        bad = await u.send_update({"message": {"message_id": 1, "text": "секрет 1234"}})
        person = SimUser(id=7_400_000_001, first_name="A", language_code="ru")
        await u.send_message(person.id, "можно ли мне работать", person)
        await u.wait_for_bot_messages(person.id, 1, timeout=20)
        await u.wait_for(lambda: all_confirmed(u), timeout=10, message="every update confirmed")
    unreadable = [m for m in errors(caplog) if "cannot be read" in m]
    assert unreadable == [f"update {bad['update_id']} cannot be read (KeyError) and is skipped"]
    assert errors(caplog) == unreadable
    assert "секрет" not in caplog.text


# ------------------------------------------------------------------------------ kill -9


@contextlib.contextmanager
def webhook_process(
    server: BotApiServer, token: str, db: Path, log: Path, content: ContentCopy, url: str
) -> Iterator[BotProcess]:
    """`python -m bot webhook --url URL` against the emulator (hardening's BotProcess)."""
    extra = {"KOMEK_WEBHOOK_SECRET": HOOK_SECRET}
    bot = BotProcess(server, token, db, log, content, command=("webhook", "--url", url), extra_env=extra)
    try:
        yield bot
    finally:
        bot.close()


async def wait_webhook_set(user: BotApiClient, bot: BotProcess, before: int, timeout: float = 60) -> None:  # noqa: ASYNC109
    """Until the bot (re)sets its webhook, which it does once it listens."""

    async def ready() -> bool:
        assert bot.proc.poll() is None, f"the bot exited early:\n{bot.log()[-3000:]}"
        return await set_webhook_calls(user) > before

    await user.wait_for(ready, timeout=timeout, interval=0.1, message="the bot to set its webhook")


def test_kill_9_during_load_loses_nothing_in_webhook_mode(
    botapi_server: BotApiServer, frozen: tuple[ContentCopy, Loaded], knowledge: Knowledge, tmp_path: Path
) -> None:
    """kill -9 in the middle of 300 messages from 30 people, then a restart: the database is intact,
    and every message is answered in the end (at least once: the update whose 200 had not gone out
    is sent again by the Bot API and handled again)."""
    content = frozen[0]
    config = tmp_path / "content"
    config.mkdir()
    port = free_port()
    text = content.config.read_text("utf-8")
    assert "port: 8443" in text
    (config / "config.yaml").write_text(text.replace("port: 8443", f"port: {port}"), "utf-8")
    (config / "faq").symlink_to(content.faq)
    copy = ContentCopy(config)
    model_cache(copy).symlink_to(model_cache(content))  # this FAQ version's model, cached
    url = f"http://127.0.0.1:{port}/telegram"

    people = crowd(30, 10, base_id=7_500_000_000)
    expected = expected_replies(knowledge, people)
    total = sum(sum(c.values()) for c in expected.values())
    db, token = tmp_path / "komek.sqlite3", new_token()

    async def life1() -> tuple[int, list[tuple[Any, ...]], int]:
        async with botapi_server.client(token, timeout=30) as user:
            with webhook_process(botapi_server, token, db, tmp_path / "first.log", copy, url) as bot:
                await wait_webhook_set(user, bot, 0)
                await send_all(user, people)
                await user.wait_for(
                    lambda: _at_least(user, total // 4), timeout=60, interval=0.05, message="some answers"
                )
                before = db_rows(db)["events"]
                bot.kill9()
            return await sends(user), before, int((await user.updates())["pending"])

    answered_at_kill, events_before, pending = asyncio.run(life1())
    assert answered_at_kill < total, "the bot finished before the kill: nothing was tested"
    unhandled = [r for r in db_rows(db)["inbox"] if r[2] is not None]
    assert pending + len(unhandled) > 0  # stored in the inbox, or still waiting at the Bot API
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert events_before, "nothing was written before the kill"
    assert set(events_before) <= set(db_rows(db)["events"])

    async def life2() -> tuple[list[dict[str, Any]], int, int, str]:
        async with botapi_server.client(token, timeout=30) as user:
            calls = await set_webhook_calls(user)
            with webhook_process(botapi_server, token, db, tmp_path / "second.log", copy, url) as bot:
                await wait_webhook_set(user, bot, calls)

                async def all_answered() -> bool:
                    got = received(await user.bot_messages())
                    return all(not (want - got.get(pid, Counter())) for pid, want in expected.items())

                await user.wait_for(all_answered, timeout=90, interval=0.5, message="every message answered")
                await user.wait_for(lambda: all_confirmed(user), timeout=20, message="every update confirmed")
                code = bot.stop()
                return await user.bot_messages(), int((await user.updates())["pending"]), code, bot.log()

    messages, pending, code, log = asyncio.run(life2())
    check_after_restart("webhook crash", messages, expected, total, answered_at_kill, pending, code, log)
    assert log_problems(log) == [], log[-3000:]
    assert log_problems((tmp_path / "first.log").read_text("utf-8", "replace")) == []
    assert total <= len(db_rows(db)["events"]) <= len(messages)  # every update handled wrote its event
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


async def _at_least(user: BotApiClient, count: int) -> bool:
    return await sends(user) >= count


async def test_shutdown_keeps_an_unsent_answer_and_the_next_start_sends_it(
    loaded: Loaded, knowledge: Knowledge, botapi_server: BotApiServer, tmp_path: Path
) -> None:
    """A clean stop (SIGTERM) while an answer waits out a long 429: the update was answered 200
    (stored), the answer stays in the outbox, and the next start sends it, once, although Telegram
    sends the update again."""
    env = new_env(botapi_server, tmp_path / "komek.sqlite3")
    stuck = SimUser(id=7_600_000_001, first_name="T", language_code="ru")
    question = "можно ли мне работать"
    update = message_update(900_200_001, stuck, question)
    right = {SECRET_HEADER: HOOK_SECRET}
    async with httpx.AsyncClient(timeout=30) as http:
        async with webhook_serving(loaded, env, botapi_server, drain_seconds=0.5) as (bot, url):
            await bot.user.set_fault("sendMessage", "429", count=1, chat_id=stuck.id, retry_after=20)
            assert (await http.post(url, json=update, headers=right)).status_code == 200
            await bot.user.wait_for(lambda: _got_status(bot.user, 429), message="the 429")
        async with webhook_serving(loaded, env, botapi_server) as (bot, url):
            assert (await http.post(url, json=update, headers=right)).status_code == 200
            want = split_message(reply_to_text(knowledge, question, "ru").text)
            await bot.user.wait_for_bot_messages(stuck.id, len(want))
            await asyncio.sleep(0.3)
            assert await answers(bot.user, stuck.id) == want

"""End-to-end checks of the Bot API test harness itself (tests/botapi + tests/botapi_client.py).

A real python-telegram-bot 22 Application long-polls the emulator over HTTP on 127.0.0.1, and
simulated users talk to it. How the bot is run here, and why: inside the test's event loop with
``async with app: await app.start(); await app.updater.start_polling(poll_interval=0, timeout=1)``
and, on the way out, ``await app.updater.stop(); await app.stop()``. ``run_polling`` is made for
a main thread (it installs signal handlers and owns its event loop), and in a thread it cannot be
stopped cleanly from outside; the manual life cycle shuts down in well under a second (the pending
long poll is cancelled, then one ``getUpdates(timeout=0)`` confirms the last offset).

Run: ``make test`` (installs the emulator with ``npm ci --prefix tests/botapi``), or
``pytest -m e2e tests/test_botapi_harness.py`` once it is installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import subprocess
import sys
import textwrap
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from botapi_client import BotApiClient, BotApiServer, find_button
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    Forbidden,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import (
    Application,
    ApplicationBuilder,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)
from telegram.warnings import PTBDeprecationWarning

pytestmark = pytest.mark.e2e

AnyApp = Application[Any, Any, Any, Any, Any, Any]

_token_ids = itertools.count(700001)


def new_token() -> str:
    """A fresh bot: the emulator keeps updates and messages apart per token."""
    return f"{next(_token_ids)}:TEST-{uuid.uuid4().hex[:16]}"


def retry_after_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22.2+ warns that int time periods are deprecated
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if hasattr(value, "total_seconds") else float(value)


@dataclass
class BotRun:
    app: AnyApp
    user: BotApiClient
    handler_errors: list[BaseException | None] = field(default_factory=list)
    ptb_log: list[logging.LogRecord] = field(default_factory=list)


class _Collect(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.WARNING)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.asynccontextmanager
async def running_bot(
    server: BotApiServer,
    handlers: Sequence[BaseHandler[Any, Any, Any]],
    *,
    post_init: Callable[[AnyApp], Any] | None = None,
    expect_clean: bool = True,
) -> AsyncIterator[BotRun]:
    token = new_token()
    builder = ApplicationBuilder().token(token).base_url(server.base_url).base_file_url(server.base_file_url)
    if post_init is not None:
        builder = builder.post_init(post_init)
    app = builder.build()
    for handler in handlers:
        app.add_handler(handler)
    async with server.client(token) as user:
        run = BotRun(app=app, user=user)

        async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
            run.handler_errors.append(context.error)

        app.add_error_handler(on_error)
        collector = _Collect(run.ptb_log)
        ptb_logger = logging.getLogger("telegram")
        ptb_logger.addHandler(collector)
        try:
            async with app:  # initialize (getMe) ... shutdown
                if post_init is not None:  # run_polling would call it; the manual life cycle not
                    await post_init(app)
                await app.start()
                assert app.updater is not None
                await app.updater.start_polling(poll_interval=0, timeout=1)
                try:
                    yield run
                finally:
                    await app.updater.stop()
                    await app.stop()
        finally:
            ptb_logger.removeHandler(collector)
        if expect_clean:
            assert run.handler_errors == []
            assert [r.getMessage() for r in run.ptb_log] == []


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None and update.effective_chat is not None
    await context.bot.send_chat_action(update.effective_chat.id, "typing")
    await update.effective_message.reply_text(update.effective_message.text or "")


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    await update.effective_message.reply_text(f"<b>Hello</b>, args={context.args}", parse_mode=ParseMode.HTML)


async def set_commands(app: AnyApp) -> None:
    await app.bot.set_my_commands([("start", "Start"), ("menu", "Menu")])
    await app.bot.set_my_description("Komek test bot")
    await app.bot.set_my_short_description("test")


# --------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_message_is_echoed(botapi_server: BotApiServer) -> None:
    handlers = [
        CommandHandler("start", start),
        MessageHandler(filters.TEXT & ~filters.COMMAND, echo),
    ]
    async with running_bot(botapi_server, handlers, post_init=set_commands) as run:
        me = await run.app.bot.get_me()
        assert me.is_bot and me.id == int(run.user.token.split(":")[0])
        assert [c.command for c in await run.app.bot.get_my_commands()] == ["start", "menu"]

        sent = await run.user.send_message(42, "Сәлем, бот!")
        [reply] = await run.user.wait_for_bot_messages(42, 1)
        assert reply["text"] == "Сәлем, бот!"
        assert reply["reply_markup"] is None
        assert sent["message_id"] != reply["message_id"]

        await run.user.send_command(42, "/start ru")
        messages = await run.user.wait_for_bot_messages(42, 2)
        # parse_mode=HTML is applied as Telegram does: plain text plus a bold entity.
        assert messages[1]["text"] == "Hello, args=['ru']"
        assert messages[1]["raw_text"] == "<b>Hello</b>, args=['ru']"
        assert messages[1]["entities"] == [{"type": "bold", "offset": 0, "length": 5}]

        # A group chat: negative id, type "group", a member who is not the chat.
        member = {"id": 7001, "first_name": "Aigerim", "language_code": "kk"}
        await run.user.send_message(-4242, "in the group", user=member, chat_type="group")
        [group_reply] = await run.user.wait_for_bot_messages(-4242, 1)
        assert group_reply["text"] == "in the group"
        assert group_reply["message"]["chat"]["type"] == "group"

        assert (await run.user.calls())["sendChatAction"] == 2


@pytest.mark.asyncio
async def test_inline_button_reaches_callback_handler(botapi_server: BotApiServer) -> None:
    seen: list[Any] = []

    async def menu(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        keyboard = InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton("Русский", callback_data="lang:ru"),
                    InlineKeyboardButton("Қазақша", callback_data="lang:kk"),
                ]
            ]
        )
        await update.effective_message.reply_text("Choose a language", reply_markup=keyboard)

    async def chosen(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        seen.append(query)
        await query.answer("Saved")
        edited = await query.edit_message_text(f"Language: {query.data}")
        seen.append(edited)

    handlers = [CommandHandler("menu", menu), CallbackQueryHandler(chosen, pattern=r"^lang:")]
    async with running_bot(botapi_server, handlers) as run:
        await run.user.send_command(55, "/menu")
        [keyboard_message] = await run.user.wait_for_bot_messages(55, 1)
        assert find_button(keyboard_message, "Қазақша")["callback_data"] == "lang:kk"

        query = await run.user.press_button(55, keyboard_message, "lang:kk")
        assert query["chat_instance"]

        async def edited() -> Any:
            [m] = await run.user.bot_messages(55)
            return m if m["edit_date"] else None

        message = await run.user.wait_for(edited, message="the keyboard message to be edited")
        assert message["text"] == "Language: lang:kk"
        # Editing the text without reply_markup removes the keyboard, as on Telegram.
        assert message["reply_markup"] is None
        assert await run.user.callback_answers() == [{"callback_query_id": query["id"], "text": "Saved"}]
        callback, edited_message = seen
        assert callback.data == "lang:kk" and callback.message.text == "Choose a language"
        assert edited_message.text == "Language: lang:kk"  # the edited Message, not True

        # Buttons that are no longer there cannot be pressed (unless forced).
        with pytest.raises(Exception, match="no inline button"):
            await run.user.press_button(55, keyboard_message, "lang:ru")


# PTB 22.2+ itself warns, inside RetryAfter.__init__, that int time periods are deprecated.
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
@pytest.mark.asyncio
async def test_429_raises_retry_after_and_a_retry_loop_recovers(
    botapi_server: BotApiServer,
) -> None:
    waits: list[float] = []

    async def echo_with_retry(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        for _attempt in range(3):
            try:
                await update.effective_message.reply_text(update.effective_message.text or "")
                return
            except RetryAfter as exc:
                waits.append(retry_after_seconds(exc))
                await asyncio.sleep(retry_after_seconds(exc))
        raise AssertionError("still flooded after 3 attempts")

    handlers = [MessageHandler(filters.TEXT, echo_with_retry)]
    async with running_bot(botapi_server, handlers) as run:
        # PTB 22 does not retry by itself: a 429 surfaces as telegram.error.RetryAfter.
        await run.user.set_fault("sendMessage", "429", count=1, retry_after=1)
        with pytest.raises(RetryAfter) as raised:
            await run.app.bot.send_message(77, "direct")
        assert retry_after_seconds(raised.value) == 1
        assert await run.user.bot_messages(77) == []  # a refused message is not stored

        # The bot's own retry loop waits retry_after and succeeds.
        await run.user.set_fault("sendMessage", "429", count=1, retry_after=1)
        began = time.monotonic()
        await run.user.send_message(77, "flooded")
        [reply] = await run.user.wait_for_bot_messages(77, 1, timeout=5)
        assert reply["text"] == "flooded"
        assert waits == [1.0]
        assert time.monotonic() - began >= 1.0
        statuses = [r["status"] for r in await run.user.requests("sendMessage")]
        assert statuses == [429, 429, 200]


@pytest.mark.asyncio
async def test_other_faults_map_to_ptb_errors(botapi_server: BotApiServer) -> None:
    async with running_bot(botapi_server, []) as run:
        bot = run.app.bot
        await run.user.set_fault("sendMessage", "500", count=1)
        with pytest.raises(NetworkError) as server_error:
            await bot.send_message(90, "x")
        assert not isinstance(server_error.value, BadRequest)

        await run.user.block(91)
        with pytest.raises(Forbidden, match="bot was blocked by the user"):
            await bot.send_message(91, "x")
        await bot.send_message(90, "other chats still work")

        await run.user.set_fault("sendMessage", "timeout", count=1)
        began = time.monotonic()
        with pytest.raises(TimedOut):
            await bot.send_message(90, "x", read_timeout=0.5)
        assert time.monotonic() - began < 3

        await run.user.reset_faults()
        await bot.send_message(91, "unblocked")
        texts = [m["text"] for m in await run.user.bot_messages()]
        assert texts == ["other chats still work", "unblocked"]

        with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
            await bot.send_message(90, "1 < 2", parse_mode=ParseMode.HTML)


@pytest.mark.asyncio
async def test_idle_bot_does_not_busy_poll(botapi_server: BotApiServer) -> None:
    async with running_bot(botapi_server, []) as run:
        await asyncio.sleep(0.3)  # past start-up
        before = (await run.user.calls()).get("getUpdates", 0)
        await asyncio.sleep(2)
        polls = (await run.user.calls()).get("getUpdates", 0) - before
        # Long polling with timeout=1 holds each request ~1 s: about 2 calls, never hundreds.
        assert 1 <= polls < 10, polls


@pytest.mark.asyncio
async def test_edited_and_non_text_messages(botapi_server: BotApiServer) -> None:
    got: dict[str, Any] = {}

    async def on_edit(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        got["edited"] = update.edited_message

    async def on_sticker(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None  # a new message: the test edits only a text one
        got["sticker"] = update.message.sticker
        await update.message.reply_text("I only understand text")

    async def on_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None  # a new message: the test edits only a text one
        photo = update.message.photo[-1]
        file = await photo.get_file()  # getFile, then a download from base_file_url
        got["photo_bytes"] = bytes(await file.download_as_bytearray())
        got["caption"] = update.message.caption

    handlers = [
        MessageHandler(filters.UpdateType.EDITED_MESSAGE, on_edit),
        MessageHandler(filters.Sticker.ALL, on_sticker),
        MessageHandler(filters.PHOTO, on_photo),
    ]
    async with running_bot(botapi_server, handlers) as run:
        original = await run.user.send_message(60, "helo")
        await run.user.edit_message(60, original, "hello")
        await run.user.send_sticker(60, "😀")
        await run.user.send_photo(60, b"\xff\xd8JPEGDATA\xff\xd9", caption="my card")
        await run.user.wait_for(lambda: len(got) == 4, message=lambda: f"handlers, got {got}")
        assert got["edited"].text == "hello"
        assert got["edited"].message_id == original["message_id"]
        assert got["sticker"].emoji == "😀"
        assert got["photo_bytes"] == b"\xff\xd8JPEGDATA\xff\xd9"
        assert got["caption"] == "my card"
        [reply] = await run.user.wait_for_bot_messages(60, 1)
        assert reply["text"] == "I only understand text"
        assert (await run.user.updates())["pending"] <= 1  # the last one is confirmed on stop


@pytest.mark.asyncio
async def test_malformed_requests_get_400_and_the_server_survives(
    botapi_server: BotApiServer,
) -> None:
    async with httpx.AsyncClient(base_url=botapi_server.url, timeout=5) as http:
        bad_json = {"content-type": "application/json"}
        r = await http.post("/sendMessage", content=b"{not json", headers=bad_json)
        assert r.status_code == 400 and r.json()["ok"] is False
        r = await http.post("/sendMessage", json={"text": "no botToken"})
        assert r.status_code == 400
        r = await http.post("/sendCommand", json={"botToken": "1:a", "chat": {"id": 1}, "text": "x"})
        assert r.status_code == 400
        r = await http.post("/bot1:abc/sendMessage", content=b"{oops", headers=bad_json)
        assert r.status_code == 400 and r.json()["error_code"] == 400
        r = await http.post("/bot1:abc/sendMessage", data={"chat_id": "1"})
        assert r.json()["description"] == "Bad Request: message text is empty"
        r = await http.post("/bot1:abc/getMyCommands")
        assert r.json() == {"ok": True, "result": []}
        r = await http.post("/bot1:abc/noSuchMethod")
        assert r.status_code == 400 and "not emulated" in r.json()["description"]
        r = await http.get("/control/health")
        assert r.status_code == 200
    assert botapi_server.running


def test_emulator_exits_with_its_parent() -> None:
    """No orphans: stop() ends the process, and so does the death (SIGKILL) of its parent."""
    with BotApiServer() as server:
        pid = server.pid
        assert pid is not None and server.running
    assert not _alive(pid)

    tests_dir = Path(__file__).resolve().parent
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import sys, time
            sys.path.insert(0, {str(tests_dir)!r})
            from botapi_client import BotApiServer
            server = BotApiServer().start()
            print(server.pid, flush=True)
            time.sleep(60)
        """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        node_pid = int(child.stdout.readline())
        assert _alive(node_pid)
        child.kill()  # no atexit, no finally: only the stdin pipe tells node
        child.wait(timeout=5)
        deadline = time.monotonic() + 5
        while _alive(node_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(node_pid)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def _alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

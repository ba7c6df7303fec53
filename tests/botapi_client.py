"""Drive the Bot API emulator (tests/botapi/launcher.js) from pytest.

The emulator is telegram-test-api 4.2.1 (npm), patched at run time by launcher.js so that
python-telegram-bot 22 talks to it exactly as to api.telegram.org, over real HTTP on 127.0.0.1.
Install it with ``make test`` (which runs ``npm ci --prefix tests/botapi``).

    with BotApiServer() as server:                       # spawns `node launcher.js --port 0`
        app = (ApplicationBuilder().token(token)
               .base_url(server.base_url).base_file_url(server.base_file_url).build())
        async with server.client(token) as user:         # the simulated users of that bot
            await user.send_command(42, "/start ru")
            [reply] = await user.wait_for_bot_messages(42, 1)
            await user.press_button(42, reply, "lang:kk")

Each bot token has its own updates and messages in the emulator, so tests that use distinct tokens
do not see each other. Only the standard library and httpx (a PTB dependency) are used.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import dataclasses
import inspect
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import httpx

BOTAPI_DIR = Path(__file__).resolve().parent / "botapi"
LAUNCHER = BOTAPI_DIR / "launcher.js"
_PACKAGE_MARKER = BOTAPI_DIR / "node_modules" / "telegram-test-api" / "package.json"
_INSTALL_HINT = "run `make test` (it installs the emulator with `npm ci --prefix tests/botapi`)"

JSON = dict[str, Any]


class BotApiServerError(RuntimeError):
    """The emulator could not be started (or died)."""


class BotApiError(RuntimeError):
    """The emulator refused a simulated-user or control request."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(f"{status}: {description}")
        self.status = status
        self.description = description


# --------------------------------------------------------------------------------------------
# The server process


class BotApiServer:
    """Runs ``node tests/botapi/launcher.js`` on a free port of 127.0.0.1.

    ``start()`` returns once the emulator listens; ``stop()`` always ends the process (SIGTERM,
    then SIGKILL). The emulator also exits by itself when this Python process dies, even by
    SIGKILL: it watches its stdin, a pipe only we hold (``--exit-on-stdin-close``).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        node: str | None = None,
        startup_timeout: float = 20.0,
        bot_username: str | None = None,
        bot_first_name: str | None = None,
        verbose: bool = False,
        log_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.node = node or os.environ.get("NODE") or "node"
        self.startup_timeout = startup_timeout
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self.verbose = verbose
        self.log_path = Path(log_path) if log_path else None
        self.port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None
        self._reader: threading.Thread | None = None

    # -- life cycle

    def start(self) -> BotApiServer:
        if self._proc is not None:
            raise BotApiServerError("the Bot API emulator is already running")
        node = shutil.which(self.node)
        if node is None:
            raise BotApiServerError(
                f"Node.js (`{self.node}`) is not installed or not on PATH; the end-to-end tests "
                f"need it for the Bot API emulator: install Node.js 18+, then {_INSTALL_HINT}."
            )
        if not LAUNCHER.is_file():
            raise BotApiServerError(f"{LAUNCHER} is missing")
        if not _PACKAGE_MARKER.is_file():
            raise BotApiServerError(
                f"the Bot API emulator is not installed ({_PACKAGE_MARKER.parent} is missing): {_INSTALL_HINT}."
            )
        cmd = [
            node,
            str(LAUNCHER),
            "--port",
            str(self.requested_port),
            "--host",
            self.host,
            "--exit-on-stdin-close",
        ]
        if self.bot_username:
            cmd += ["--bot-username", self.bot_username]
        if self.bot_first_name:
            cmd += ["--bot-first-name", self.bot_first_name]
        if self.verbose:
            cmd.append("--verbose")
        if self.log_path:
            self._log_file = open(self.log_path, "w+b")  # noqa: SIM115 - closed in stop()
        else:
            self._log_file = tempfile.TemporaryFile(prefix="botapi-", suffix=".log")  # noqa: SIM115
        self._proc = subprocess.Popen(
            cmd,
            cwd=BOTAPI_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            close_fds=True,
        )
        atexit.register(self.stop)
        lines: queue.Queue[bytes | None] = queue.Queue()

        def read_stdout(stream: Any) -> None:  # keeps draining stdout after READY
            for line in iter(stream.readline, b""):
                lines.put(line)
            lines.put(None)

        self._reader = threading.Thread(
            target=read_stdout, args=(self._proc.stdout,), name="botapi-stdout", daemon=True
        )
        self._reader.start()
        deadline = time.monotonic() + self.startup_timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = lines.get(timeout=max(0.01, remaining))
            except queue.Empty:
                self.stop()
                raise BotApiServerError(
                    f"the Bot API emulator did not report READY within {self.startup_timeout} s;"
                    f" its log:\n{self.log_text()}"
                ) from None
            if line is None:
                code = self._proc.wait()
                log = self.log_text()
                self.stop()
                raise BotApiServerError(
                    f"the Bot API emulator exited with code {code} before it was ready; its log:\n"
                    f"{log}\n(if a module is missing: {_INSTALL_HINT})"
                )
            text = line.decode("utf-8", "replace").strip()
            if text.startswith("READY "):
                self.port = int(text.split()[1])
                return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()
        if self._reader is not None:
            self._reader.join(timeout=2)
            self._reader = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        atexit.unregister(self.stop)

    def __enter__(self) -> BotApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- facts

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def url(self) -> str:
        if self.port is None:
            raise BotApiServerError("the Bot API emulator is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """For ``ApplicationBuilder().base_url(...)``."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """For ``ApplicationBuilder().base_file_url(...)``."""
        return f"{self.url}/file/bot"

    def log_text(self) -> str:
        """What the emulator wrote on stderr so far (read it before ``stop()``)."""
        if self._log_file is None:
            return ""
        self._log_file.flush()
        self._log_file.seek(0)
        data: bytes = self._log_file.read()
        self._log_file.seek(0, os.SEEK_END)
        return data.decode("utf-8", "replace")

    def client(self, token: str, **kwargs: Any) -> BotApiClient:
        return BotApiClient(self.url, token, **kwargs)


# --------------------------------------------------------------------------------------------
# Simulated users


@dataclasses.dataclass(frozen=True)
class SimUser:
    """A Telegram user as the emulator sends it in ``from``."""

    id: int
    first_name: str = "Test"
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = "ru"

    def as_dict(self) -> JSON:
        data: JSON = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        return data


def buttons(message: JSON) -> list[JSON]:
    """The inline buttons (flattened) of a bot message as returned by ``bot_messages``."""
    markup = message.get("reply_markup") or {}
    return [button for row in markup.get("inline_keyboard", []) for button in row]


def find_button(message: JSON, text: str) -> JSON:
    """The inline button with that label (exact match) in a bot message."""
    for button in buttons(message):
        if button.get("text") == text:
            return button
    labels = [b.get("text") for b in buttons(message)]
    raise AssertionError(f"no button {text!r} in message {message.get('message_id')}: {labels}")


UserLike = SimUser | JSON | None


class BotApiClient:
    """Simulated users of one bot (one token), plus the emulator's test controls.

    Messages sent by users return the Bot API ``Message`` the bot will receive (with the
    ``message_id`` the emulator gave it). Messages of the bot (``bot_messages``) are records:
    ``message_id``, ``chat_id``, ``text`` (after parse_mode=HTML, as Telegram shows it),
    ``raw_text`` (what the bot sent), ``parse_mode``, ``entities``, ``reply_markup`` (inline
    *or* reply keyboard, as sent), ``edit_date``, ``edits``, ``type`` ("text", "photo", ...),
    ``method``, ``params`` (the raw request) and ``message`` (the Bot API Message).
    """

    def __init__(self, server_url: str, token: str, *, timeout: float = 10.0) -> None:
        self.server_url = server_url
        self.token = token
        self._http = httpx.AsyncClient(base_url=server_url, timeout=timeout)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> BotApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- plumbing

    @staticmethod
    def _result(response: httpx.Response) -> Any:
        try:
            body = response.json()
        except ValueError:
            raise BotApiError(response.status_code, response.text[:500]) from None
        if response.status_code != 200 or not body.get("ok"):
            raise BotApiError(response.status_code, body.get("description", response.text[:500]))
        return body["result"]

    async def _post(self, path: str, payload: JSON) -> Any:
        return self._result(await self._http.post(path, json=payload))

    async def _get(self, path: str, params: JSON | None = None) -> Any:
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        return self._result(await self._http.get(path, params=clean))

    @staticmethod
    def _user(chat_id: int, user: UserLike) -> JSON:
        if user is None:
            return SimUser(id=chat_id if chat_id > 0 else 1).as_dict()
        if isinstance(user, SimUser):
            return user.as_dict()
        return {"is_bot": False, "first_name": "Test", **user}

    @staticmethod
    def _chat(chat_id: int, chat_type: str | None, from_: JSON, title: str | None) -> JSON:
        kind = chat_type or ("private" if chat_id > 0 else "group")
        if kind == "private":
            chat = {"id": chat_id, "type": kind, "first_name": from_.get("first_name", "Test")}
            for key in ("last_name", "username"):
                if from_.get(key):
                    chat[key] = from_[key]
            return chat
        return {"id": chat_id, "type": kind, "title": title or f"Group {chat_id}"}

    async def _user_message(
        self,
        path: str,
        chat_id: int,
        fields: JSON,
        user: UserLike,
        chat_type: str | None,
        chat_title: str | None,
    ) -> JSON:
        from_ = self._user(chat_id, user)
        payload = {
            "botToken": self.token,
            "from": from_,
            "chat": self._chat(chat_id, chat_type, from_, chat_title),
            "date": int(time.time()),
            **fields,
        }
        update = await self._post(path, payload)
        return cast(JSON, update["message"])

    # -- what users do

    async def send_message(
        self,
        chat_id: int,
        text: str,
        user: UserLike = None,
        chat_type: str | None = None,
        *,
        entities: list[JSON] | None = None,
        reply_to: int | JSON | None = None,
        chat_title: str | None = None,
    ) -> JSON:
        """A user writes ``text`` in a chat (private if ``chat_id`` > 0, else a group).

        In a private chat the user id is the chat id unless ``user`` says otherwise (then both
        must match, as on Telegram). Returns the Message the bot receives.
        """
        fields: JSON = {"text": text}
        if entities is not None:
            fields["entities"] = entities
        if reply_to is not None:
            fields["reply_to_message_id"] = reply_to["message_id"] if isinstance(reply_to, dict) else reply_to
        return await self._user_message("/sendMessage", chat_id, fields, user, chat_type, chat_title)

    async def send_command(
        self,
        chat_id: int,
        command: str,
        user: UserLike = None,
        chat_type: str | None = None,
        *,
        chat_title: str | None = None,
    ) -> JSON:
        """``/start ru`` or ``/help@bot_name``: a message with its ``bot_command`` entity."""
        if not command.startswith("/"):
            raise ValueError(f"a command starts with '/': {command!r}")
        length = len(command.split(maxsplit=1)[0])
        # Entities count UTF-16 code units; command names are ASCII, so len() is right.
        entities = [{"type": "bot_command", "offset": 0, "length": length}]
        return await self._user_message(
            "/sendCommand",
            chat_id,
            {"text": command, "entities": entities},
            user,
            chat_type,
            chat_title,
        )

    async def edit_message(self, chat_id: int, message: int | JSON, text: str) -> JSON:
        """The user edits one of their messages: the bot gets an ``edited_message`` update."""
        message_id = message["message_id"] if isinstance(message, dict) else message
        update = await self._post(
            "/sendEditedMessage",
            {"botToken": self.token, "chat_id": chat_id, "message_id": message_id, "text": text},
        )
        return cast(JSON, update["edited_message"])

    async def send_raw(
        self,
        chat_id: int,
        fields: JSON,
        user: UserLike = None,
        chat_type: str | None = None,
        *,
        chat_title: str | None = None,
    ) -> JSON:
        """Any other message (location, contact, voice...): ``fields`` are Message fields."""
        return await self._user_message("/sendMessage", chat_id, fields, user, chat_type, chat_title)

    async def send_update(self, update: JSON) -> JSON:
        """Any update exactly as given, e.g. ``{"channel_post": {...}}``, a message without ``from``
        or a callback query without ``message`` (which ``send_raw`` cannot produce: it always adds
        ``from`` and ``chat``). The emulator assigns ``update_id``; returns the stored update."""
        return cast(JSON, await self._post("/control/update", {"botToken": self.token, "update": update}))

    async def upload_file(self, content: bytes, *, file_name: str | None = None, mime_type: str | None = None) -> JSON:
        """Registers bytes the bot can then download (getFile + base_file_url)."""
        return cast(
            JSON,
            await self._post(
                "/control/files",
                {
                    "content_base64": base64.b64encode(content).decode("ascii"),
                    "file_name": file_name,
                    "mime_type": mime_type,
                },
            ),
        )

    async def send_sticker(
        self, chat_id: int, emoji: str = "👍", user: UserLike = None, chat_type: str | None = None
    ) -> JSON:
        file = await self.upload_file(b"RIFF....WEBPVP8 ", mime_type="image/webp")
        sticker = {
            "file_id": file["file_id"],
            "file_unique_id": file["file_unique_id"],
            "file_size": file["file_size"],
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
        }
        return await self.send_raw(chat_id, {"sticker": sticker}, user, chat_type)

    async def send_photo(
        self,
        chat_id: int,
        content: bytes = b"\xff\xd8\xff\xe0fake-jpeg\xff\xd9",
        caption: str | None = None,
        user: UserLike = None,
        chat_type: str | None = None,
    ) -> JSON:
        file = await self.upload_file(content, mime_type="image/jpeg")
        size = {
            "file_id": file["file_id"],
            "file_unique_id": file["file_unique_id"],
            "file_size": file["file_size"],
            "width": 800,
            "height": 600,
        }
        fields: JSON = {"photo": [size]}
        if caption is not None:
            fields["caption"] = caption
        return await self.send_raw(chat_id, fields, user, chat_type)

    async def send_voice(
        self,
        chat_id: int,
        content: bytes = b"OggS-fake",
        duration: int = 3,
        user: UserLike = None,
        chat_type: str | None = None,
    ) -> JSON:
        file = await self.upload_file(content, mime_type="audio/ogg")
        voice = {
            "file_id": file["file_id"],
            "file_unique_id": file["file_unique_id"],
            "file_size": file["file_size"],
            "duration": duration,
            "mime_type": "audio/ogg",
        }
        return await self.send_raw(chat_id, {"voice": voice}, user, chat_type)

    async def press_button(
        self,
        chat_id: int,
        message: int | JSON,
        callback_data: str,
        user: UserLike = None,
        *,
        force: bool = False,
    ) -> JSON:
        """A user presses an inline button of a bot message: a ``callback_query`` update.

        ``message`` is a record from ``bot_messages`` (or its message_id). The emulator refuses
        data that is not on a button of the message as it is now, unless ``force``.
        Returns the CallbackQuery (its ``id`` is what answerCallbackQuery answers).
        """
        message_id = message["message_id"] if isinstance(message, dict) else message
        update = await self._post(
            "/sendCallback",
            {
                "botToken": self.token,
                "from": self._user(chat_id, user),
                "message": {"message_id": message_id, "chat": {"id": chat_id}},
                "data": callback_data,
                "force": force,
            },
        )
        return cast(JSON, update["callback_query"])

    # -- what the bot did

    async def bot_messages(self, chat_id: int | None = None, *, include_deleted: bool = False) -> list[JSON]:
        """Everything this bot sent (to ``chat_id``, or everywhere), oldest first."""
        return cast(
            list[JSON],
            await self._get(
                "/control/botMessages",
                {
                    "token": self.token,
                    "chat_id": chat_id,
                    "include_deleted": "1" if include_deleted else None,
                },
            ),
        )

    async def wait_for(
        self,
        check: Callable[[], Any | Awaitable[Any]],
        timeout: float = 5.0,  # noqa: ASYNC109 - a deadline for the polling, not for one call
        interval: float = 0.02,
        message: str | Callable[[], str] = "condition",
    ) -> Any:
        """Calls ``check`` (sync or async) until it returns something truthy; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
            if time.monotonic() >= deadline:
                text = message() if callable(message) else message
                raise AssertionError(f"timed out after {timeout} s waiting for {text}")
            await asyncio.sleep(interval)

    async def wait_for_bot_messages(
        self,
        chat_id: int,
        count: int,
        timeout: float = 5.0,  # noqa: ASYNC109 - a deadline for the polling, not for one call
    ) -> list[JSON]:
        """Waits until the bot has sent at least ``count`` messages to ``chat_id``; returns all."""
        last: list[JSON] = []

        async def enough() -> list[JSON] | None:
            nonlocal last
            last = await self.bot_messages(chat_id)
            return last if len(last) >= count else None

        def describe() -> str:
            texts = [m.get("text") or m.get("caption") or m.get("type") for m in last]
            return f"{count} bot message(s) in chat {chat_id}; got {len(last)}: {texts!r}"

        return cast(list[JSON], await self.wait_for(enough, timeout, message=describe))

    async def updates(self) -> JSON:
        """The updates the emulator holds for this bot: ``pending`` = not confirmed yet."""
        return cast(JSON, await self._get("/control/updates", {"token": self.token}))

    async def calls(self) -> dict[str, int]:
        """How many times this bot called each Bot API method."""
        return cast(dict[str, int], await self._get("/control/calls", {"token": self.token}))

    async def requests(self, method: str | None = None, since: int = 0) -> list[JSON]:
        """The bot's recent Bot API requests: seq, time, method, params, status, fault."""
        return cast(
            list[JSON],
            await self._get("/control/requests", {"token": self.token, "method": method, "since": since or None}),
        )

    async def callback_answers(self) -> list[JSON]:
        """The parameters of every answerCallbackQuery the bot made."""
        return [r["params"] for r in await self.requests("answerCallbackQuery")]

    # -- faults

    async def set_fault(
        self,
        method: str,
        mode: str,
        count: int | None = 1,
        retry_after: int = 1,
        *,
        chat_id: int | None = None,
        hold_seconds: float | None = None,
        all_bots: bool = False,
    ) -> JSON:
        """The next ``count`` calls of ``method`` ("*" = any) fail.

        Modes: "429" (Too Many Requests with ``retry_after``: PTB raises RetryAfter), "500"
        (NetworkError), "502" (HTML gateway page: NetworkError), "timeout" (no answer for
        ``hold_seconds``, default 30: PTB raises TimedOut), "drop" (connection closed:
        NetworkError), "blocked" (403 "Forbidden: bot was blocked by the user" for ``chat_id``:
        PTB raises Forbidden; until reset when ``count`` is None). Only this bot's calls are
        affected unless ``all_bots``.
        """
        payload: JSON = {"method": method, "mode": str(mode), "retry_after": retry_after}
        if count is not None:
            payload["count"] = count
        if chat_id is not None:
            payload["chat_id"] = chat_id
        if hold_seconds is not None:
            payload["hold_seconds"] = hold_seconds
        if not all_bots:
            payload["token"] = self.token
        return cast(JSON, await self._post("/control/faults", payload))

    async def block(self, chat_id: int, method: str = "*") -> JSON:
        """The user of ``chat_id`` blocked the bot: every send to that chat answers 403."""
        return await self.set_fault(method, "blocked", count=None, chat_id=chat_id)

    async def reset_faults(self) -> None:
        """Clears every fault (of every bot)."""
        await self._post("/control/reset", {})

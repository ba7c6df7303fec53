"""A small fault-injecting HTTP proxy between the bot and the Bot API emulator (tests/botapi).

The emulator's own faults (`set_fault`) fail the next N calls; Telegram's outages last a time. This
proxy forwards every request to the emulator unchanged, except while an outage it was given is on:

    "500"            HTTP 500, as Telegram answers when it has trouble (PTB raises NetworkError)
    "429"            HTTP 429 with parameters.retry_after: the seconds left of the outage (rounded
                     up), as Telegram's flood control says when it lifts; or a fixed `retry_after`
    "down"           the connection is closed without an answer (the API or the network is down)
    "lose-response"  forwarded (Telegram does it), then the connection is closed before the answer
                     gets back: the bot cannot know the message was delivered
    "moved"          HTTP 400 "group chat was upgraded to a supergroup chat" with
                     parameters.migrate_to_chat_id = `moved_to` (PTB raises ChatMigrated)

Each outage may be limited to one Bot API method and/or one chat_id (read from the JSON or form
body). Every request is logged (time, method, chat id, what happened), and `early` counts retries
that came before the retry_after a 429 gave that chat.

    async with FaultProxy(server.url) as proxy:          # server: BotApiServer
        env = new_env(...) with base_url=proxy.base_url
        proxy.outage("500", 5.0, method="sendMessage", chat_id=42)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Outage:
    mode: str
    until: float  # monotonic
    method: str | None = None
    chat_id: int | None = None
    retry_after: int | None = None
    moved_to: int | None = None

    def applies(self, method: str, chat_id: int | None, now: float) -> bool:
        return (
            now < self.until
            and (self.method is None or self.method.lower() == method.lower())
            and (self.chat_id is None or self.chat_id == chat_id)
        )


@dataclass
class Logged:
    at: float
    method: str
    chat_id: int | None
    outcome: str  # "ok", "500", "429", "down", "lost"
    retry_after: int | None = None


@dataclass
class FaultProxy:
    upstream: str  # e.g. http://127.0.0.1:PORT (the emulator)
    host: str = "127.0.0.1"
    outages: list[Outage] = field(default_factory=list)
    log: list[Logged] = field(default_factory=list)
    early: int = 0
    port: int = 0
    _server: asyncio.Server | None = None
    _client: httpx.AsyncClient | None = None
    _not_before: dict[int, float] = field(default_factory=dict)
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    # ------------------------------------------------------------------ set-up

    async def __aenter__(self) -> FaultProxy:
        self._client = httpx.AsyncClient(base_url=self.upstream, timeout=70)
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
        if self._client is not None:
            await self._client.aclose()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://{self.host}:{self.port}/file/bot"

    def outage(
        self,
        mode: str,
        seconds: float,
        *,
        method: str | None = None,
        chat_id: int | None = None,
        retry_after: int | None = None,
        moved_to: int | None = None,
    ) -> Outage:
        if mode not in ("500", "429", "down", "lose-response", "moved"):
            raise ValueError(mode)
        rule = Outage(mode, time.monotonic() + seconds, method, chat_id, retry_after, moved_to)
        self.outages.append(rule)
        return rule

    def calls(self, method: str, chat_id: int | None = None) -> list[Logged]:
        return [e for e in self.log if e.method == method and (chat_id is None or e.chat_id == chat_id)]

    # ------------------------------------------------------------------ serving

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                if not await self._answer(writer, *request):
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _answer(
        self, writer: asyncio.StreamWriter, verb: str, path: str, headers: dict[str, str], body: bytes
    ) -> bool:
        """Answers one request; False when the connection is to be closed."""
        method = path.rstrip("/").rsplit("/", 1)[-1].split("?")[0]
        chat_id = _chat_id(headers.get("content-type", ""), body)
        now = time.monotonic()
        rule = next((o for o in self.outages if o.applies(method, chat_id, now)), None)
        if chat_id is not None and now < self._not_before.get(chat_id, 0.0) and method == "sendMessage":
            self.early += 1
        if rule is not None and rule.mode == "down":
            self.log.append(Logged(now, method, chat_id, "down"))
            return False
        if rule is not None and rule.mode == "500":
            self.log.append(Logged(now, method, chat_id, "500"))
            await _respond(writer, 500, {"ok": False, "error_code": 500, "description": "Internal Server Error"})
            return True
        if rule is not None and rule.mode == "moved":
            self.log.append(Logged(now, method, chat_id, "moved"))
            moved = {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: group chat was upgraded to a supergroup chat",
                "parameters": {"migrate_to_chat_id": rule.moved_to},
            }
            await _respond(writer, 400, moved)
            return True
        if rule is not None and rule.mode == "429":
            wait = rule.retry_after or max(1, math.ceil(rule.until - now))
            if chat_id is not None:
                self._not_before[chat_id] = now + wait - 0.05
            self.log.append(Logged(now, method, chat_id, "429", wait))
            body429 = {
                "ok": False,
                "error_code": 429,
                "description": f"Too Many Requests: retry after {wait}",
                "parameters": {"retry_after": wait},
            }
            await _respond(writer, 429, body429)
            return True
        assert self._client is not None
        forward = {k: v for k, v in headers.items() if k in ("content-type", "user-agent", "accept")}
        response = await self._client.request(verb, path, content=body, headers=forward)
        if rule is not None and rule.mode == "lose-response":
            self.log.append(Logged(now, method, chat_id, "lost"))
            return False
        self.log.append(Logged(now, method, chat_id, "ok"))
        await _respond_raw(writer, response.status_code, response.content, response.headers.get("content-type"))
        return True


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    verb, path, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = b""
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readline()).strip().split(b";")[0], 16)
            if size == 0:
                await reader.readline()
                break
            chunks.append(await reader.readexactly(size))
            await reader.readline()
        body = b"".join(chunks)
    return verb, path, headers, body


def _chat_id(content_type: str, body: bytes) -> int | None:
    value: Any = None
    with contextlib.suppress(ValueError, UnicodeDecodeError):
        if "json" in content_type:
            data = json.loads(body or b"{}")
            value = data.get("chat_id") if isinstance(data, dict) else None
        elif "x-www-form-urlencoded" in content_type:
            value = urllib.parse.parse_qs(body.decode()).get("chat_id", [None])[0]
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


async def _respond(writer: asyncio.StreamWriter, status: int, payload: dict[str, Any]) -> None:
    await _respond_raw(writer, status, json.dumps(payload).encode(), "application/json")


async def _respond_raw(writer: asyncio.StreamWriter, status: int, body: bytes, content_type: str | None) -> None:
    reason = {200: "OK", 400: "Bad Request", 403: "Forbidden", 429: "Too Many Requests", 500: "Internal Server Error"}
    head = (
        f"HTTP/1.1 {status} {reason.get(status, 'Status')}\r\n"
        f"Content-Type: {content_type or 'application/json'}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: keep-alive\r\n\r\n"
    )
    writer.write(head.encode("latin-1") + body)
    await writer.drain()

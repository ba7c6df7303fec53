"""A webhook server that answers Telegram once an update is stored in the durable inbox.

PTB's own webhook (Application.run_webhook) answers 200 as soon as an update is *queued*, before
its handler runs: Telegram then forgets it, and a crash (kill -9, out of memory, power cut) loses
every queued question. Here the 200 goes out once the update is stored in the inbox (bot/inbox.py:
SQLite, sealed), which handles it from there, after a crash or restart too; a handler that waits
(a send Telegram answers with 429, a long /announce) therefore never keeps Telegram waiting, and
Telegram's queue of updates for this bot keeps moving for everyone. When the database cannot take
the update, the 200 goes out only once it has been handled (the old rule: Telegram sends it again
after a crash). An update Telegram sends again is recognised and not handled twice.

For each POST to the configured path: the secret header is compared in constant time (403 if
missing or wrong, and nothing is read), the body is capped (MAX_BODY; tornado closes the
connection on a larger one), the JSON becomes an Update (an update PTB cannot read is skipped with
one log line that names only its id, and answered 200, or Telegram would send it for ever). While
the inbox is full (MAX_WAITING updates not handled yet) the answer is 503: Telegram sends it later.

On SIGTERM/SIGINT the server stops listening, answers 503 to requests that still come on open
connections (Telegram sends them again later), lets running updates finish for up to
`drain_seconds` (the stored ones left over are handled after the restart; a volatile one left over
is answered 503), then stops and shuts down the Application as PTB's run_webhook does. The webhook
stays set: Telegram keeps the updates that arrive meanwhile and delivers them after the restart.

Nothing of an update's content, no token, secret or user id is logged; tornado's access log is off.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import re
from typing import Any

import tornado.httpserver
import tornado.web
from telegram import Update
from tornado.iostream import StreamClosedError

from bot.handlers import Services
from bot.inbox import Inbox
from bot.polling import AnyApp, started

log = logging.getLogger("komek")
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_BODY = 1 << 20  # an update is a few kB; Telegram's largest are far below this
MAX_CONNECTIONS = 40  # what setWebhook asks Telegram for (PTB's and Telegram's default)


class WebhookServer:
    """What answers Telegram's POSTs, apart from HTTP: `answer(secret, body)` -> status code."""

    def __init__(self, app: AnyApp, secret: str, *, inbox: Inbox | None = None, drain_seconds: float = 10.0):
        if not secret:
            raise ValueError("the webhook needs a secret token")
        self.app = app
        self.drain_seconds = drain_seconds
        svc: Services = app.bot_data["services"]
        self.inbox = inbox or Inbox(app, svc)
        self.accepting = True
        self._secret = secret.encode()
        self._requests = 0
        self._no_requests = asyncio.Event()
        self._no_requests.set()

    def authorized(self, given: str | None) -> bool:
        return hmac.compare_digest((given or "").encode("utf-8", "replace"), self._secret)

    async def answer(self, given_secret: str | None, body: bytes) -> int:
        """Handles one request; returns the HTTP status once the update is stored (or handled, or refused)."""
        if not self.accepting:
            return 503  # shutting down: Telegram sends it again, to the next start
        if not self.authorized(given_secret):
            log.debug("webhook: a request without the right secret token was refused")
            return 403
        try:
            data = json.loads(body)
        except ValueError:
            log.warning("webhook: a request whose body is not JSON was refused")
            return 400
        update_id = data.get("update_id") if isinstance(data, dict) else None
        if not isinstance(update_id, int):
            log.warning("webhook: a request without an update_id was refused")
            return 400
        if not self.inbox.known(update_id) and self.inbox.waiting >= self.inbox.max_waiting:
            return 503  # full: Telegram sends it again a little later
        waits = await self.inbox.take([data])
        await self.inbox.tidy_by_age()
        for future in waits.values():  # not stored: answered once handled
            await asyncio.wait([future])
            if future.cancelled():
                return 503
        return 200

    async def serve_request(self, given_secret: str | None, body: bytes, respond: Any) -> None:
        """`answer`, then `await respond(status)`, counted so that a shutdown can wait for it."""
        self._requests += 1
        self._no_requests.clear()
        try:
            await respond(await self.answer(given_secret, body))
        finally:
            self._requests -= 1
            if self._requests == 0:
                self._no_requests.set()

    async def drain(self) -> None:
        """Stop taking updates, let the running ones finish (bounded), answer what is still open."""
        self.accepting = False
        await self.inbox.drain(self.drain_seconds)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._no_requests.wait(), timeout=5.0)  # the answers are written

    def tornado_app(self, path: str) -> tornado.web.Application:
        return tornado.web.Application(
            [(re.escape(path), _Handler, {"server": self})],
            log_function=lambda _handler: None,  # the access log would add a line per message
        )


class _Handler(tornado.web.RequestHandler):
    SUPPORTED_METHODS = ("POST",)

    def initialize(self, server: WebhookServer) -> None:
        self.server = server

    async def post(self) -> None:
        async def respond(status: int) -> None:
            self.set_status(status)
            with contextlib.suppress(StreamClosedError):  # Telegram gave up waiting: it sends again
                await self.finish()

        await self.server.serve_request(self.request.headers.get(SECRET_HEADER), self.request.body, respond)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, tornado.web.HTTPError):
            return  # a wrong method (405) or the like: answered, nothing failed
        # tornado's own would print the request; a type is enough and names nobody
        log.error("webhook: a request failed (%s)", getattr(typ, "__name__", typ))


async def serve_webhook(
    app: AnyApp,
    *,
    listen: str,
    port: int,
    path: str,
    url: str,
    secret: str,
    stop: asyncio.Event | None = None,
    drain_seconds: float = 10.0,
) -> None:
    """The whole life of a webhook bot: initialize, post_init, start, listen, setWebhook, serve until
    SIGINT/SIGTERM (or `stop`), then stop listening, drain, stop, shutdown and post_shutdown, as
    PTB's run_webhook does (and serve_polling in bot/polling.py)."""
    stop = stop or asyncio.Event()
    server = WebhookServer(app, secret, drain_seconds=drain_seconds)
    path = "/" + path.lstrip("/")
    async with started(app, stop):
        await server.inbox.recover()
        http = tornado.httpserver.HTTPServer(server.tornado_app(path), max_body_size=MAX_BODY)
        http.listen(port, address=listen)
        try:
            await app.bot.set_webhook(
                url=url,
                secret_token=secret,
                allowed_updates=Update.ALL_TYPES,
                drop_pending_updates=False,
                max_connections=MAX_CONNECTIONS,
            )
            log.info("webhook: listening on %s:%d%s", listen, port, path)
            await stop.wait()
        finally:
            http.stop()  # no new connections
            await server.drain()
            await http.close_all_connections()

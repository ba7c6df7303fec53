"""A webhook server that answers Telegram only after an update has been handled (at-least-once).

PTB's own webhook (Application.run_webhook) answers 200 as soon as an update is *queued*, before
its handler runs: Telegram then forgets it, and a crash (kill -9, out of memory, power cut) loses
every queued question. Here the 200 goes out only once app.process_update has finished, so an
update that was running or waiting when the process died gets no answer, and Telegram sends it
again (it retries until the bot answers 2xx). The price is the same as in polling: an update
handled just before a crash, whose 200 did not leave in time, is handled twice. Nothing is lost.

For each POST to the configured path: the secret header is compared in constant time (403 if
missing or wrong, and nothing is read), the body is capped (MAX_BODY; tornado closes the
connection on a larger one), the JSON becomes an Update (an update PTB cannot read is skipped with
one log line that names only its id, and answered 200, or Telegram would send it for ever), and
the update is handled with the poller's per-chat ordering (bot/polling.py ChatOrder): different
chats concurrently, one chat's updates in the order they arrive. Errors inside handlers go to the
app's error handler and still get 200. At most WINDOW updates are handled at once; further
requests wait. An update Telegram sends again while it still runs (its request timed out) waits
for that run instead of starting a second; one handled moments ago is answered 200 at once.

On SIGTERM/SIGINT the server stops listening, answers 503 to requests that still come on open
connections (Telegram sends them again later), lets running updates finish for up to
`drain_seconds` and answers them, answers 503 for the ones it had to cancel, then stops and shuts
down the Application as PTB's run_webhook does. The webhook stays set: Telegram keeps the updates
that arrive meanwhile and delivers them after the restart.

Nothing of an update's content, no token, secret or user id is logged; tornado's access log is off.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import hmac
import json
import logging
import re
from typing import Any

import tornado.httpserver
import tornado.web
from telegram import Update
from tornado.iostream import StreamClosedError

from bot.polling import WINDOW, AnyApp, ChatOrder, read_update, started

log = logging.getLogger("komek")
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_BODY = 1 << 20  # an update is a few kB; Telegram's largest are far below this
MAX_CONNECTIONS = 40  # what setWebhook asks Telegram for (PTB's and Telegram's default)
RECENT = 1024  # ids of updates handled lately: Telegram's re-sends of them are answered at once


class WebhookServer:
    """What answers Telegram's POSTs, apart from HTTP: `answer(secret, body)` -> status code."""

    def __init__(self, app: AnyApp, secret: str, *, window: int = WINDOW, drain_seconds: float = 10.0):
        if not secret:
            raise ValueError("the webhook needs a secret token")
        self.app = app
        self.drain_seconds = drain_seconds
        self.chats = ChatOrder(app)
        self.in_flight: dict[int, asyncio.Task[None]] = {}
        self.accepting = True
        self._secret = secret.encode()
        self._slots = asyncio.Semaphore(window)
        self._recent: collections.OrderedDict[int, None] = collections.OrderedDict()
        self._requests = 0
        self._no_requests = asyncio.Event()
        self._no_requests.set()

    def authorized(self, given: str | None) -> bool:
        return hmac.compare_digest((given or "").encode("utf-8", "replace"), self._secret)

    async def answer(self, given_secret: str | None, body: bytes) -> int:
        """Handles one request; returns the HTTP status once the update is handled (or refused)."""
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
        if update_id in self._recent:
            return 200  # handled moments ago; Telegram did not get (or wait for) that answer
        task = self.in_flight.get(update_id)
        if task is None:
            update = read_update(data, self.app.bot)
            if isinstance(update, int):
                self._remember(update_id)
                return 200  # skipped, logged by read_update: sending it again would fail again
            async with self._slots:
                if not self.accepting:
                    return 503
                task = self.in_flight.get(update_id)  # the same update may have come while waiting
                if task is None:
                    task = self._start(update)
                await asyncio.wait([task])
        else:
            await asyncio.wait([task])
        return 503 if task.cancelled() else 200

    def _start(self, update: Update) -> asyncio.Task[None]:
        task = asyncio.create_task(self.chats.handle(update), name=f"update-{update.update_id}")
        self.in_flight[update.update_id] = task
        task.add_done_callback(functools.partial(self._done, update.update_id))
        return task

    def _done(self, update_id: int, task: asyncio.Task[None]) -> None:
        self.in_flight.pop(update_id, None)
        if not task.cancelled():
            self._remember(update_id)

    def _remember(self, update_id: int) -> None:
        self._recent[update_id] = None
        if len(self._recent) > RECENT:
            self._recent.popitem(last=False)

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
        """Stop taking updates, let the running ones finish (bounded) and be answered."""
        self.accepting = False
        if self.in_flight:
            await asyncio.wait(list(self.in_flight.values()), timeout=self.drain_seconds)
        unfinished = list(self.in_flight.values())
        for task in unfinished:
            task.cancel()  # answered 503: Telegram sends it again after the restart
        await asyncio.gather(*unfinished, return_exceptions=True)
        if unfinished:
            log.warning(
                "%d update(s) still running at shutdown: they will be handled after the restart", len(unfinished)
            )
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

"""Composition root: builds the python-telegram-bot Application, its services and handler order.

Secrets come only from the environment: TELEGRAM_BOT_TOKEN (or TELEGRAM_BOT_TOKEN_FILE) and
KOMEK_SECRET (the key for pseudonyms). TELEGRAM_BASE_URL / TELEGRAM_BASE_FILE_URL point the bot at a
self-hosted Bot API server or a test server; KOMEK_DB overrides the database path;
KOMEK_WEBHOOK_SECRET is the secret token Telegram sends with every webhook request;
KOMEK_OUTBOX_MAX_AGE / KOMEK_OUTBOX_MAX_BACKOFF (seconds) change how long a message Telegram does
not take is retried, and the longest pause between tries (bot/outbox.py; the tests shrink them).

The bot runs by long polling (run_polling, bot/polling.py) or behind a webhook (run_webhook,
bot/webhook.py). Both confirm an update to Telegram only once it is stored in the durable inbox
(bot/inbox.py), and every message goes out through the durable outbox (bot/outbox.py), so neither
a crash nor a Telegram outage loses a question; PTB's own run_polling/run_webhook are not used.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
from telegram import BotCommand, LinkPreviewOptions, Update
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.constants import ParseMode
from telegram.error import NetworkError, TelegramError, TimedOut
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackContext,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    ExtBot,
    MessageHandler,
    filters,
)
from telegram.request import HTTPXRequest, RequestData

from bot.config import database_path
from bot.content import Loaded
from bot.flood import FloodGuard
from bot.handlers import Services, on_button, on_command, on_error, on_non_text, on_text, services
from bot.outbox import MAX_AGE, MAX_BACKOFF, Outbox, Outgoing
from bot.polling import serve_polling
from bot.staff import (
    BROADCAST_RATE,
    RELOAD_SECONDS,
    OperatorsChat,
    after_queued,
    on_admin,
    on_operator_message,
    on_subscription,
    reload_job,
    stop_training,
    train_after_start,
)
from bot.staff_teach import PREFIX as STAFF_PREFIX
from bot.staff_teach import on_staff_button
from bot.webhook import serve_webhook

log = logging.getLogger("komek")

COMMANDS = ("start", "menu", "contacts", "language", "help", "forget")
COMMAND_TEXT = {
    "ru": {
        "start": "Начать",
        "menu": "Темы",
        "contacts": "Контакты и экстренные номера",
        "language": "Язык",
        "help": "Как пользоваться ботом",
        "forget": "Удалить мои данные",
    },
    "kk": {
        "start": "Бастау",
        "menu": "Тақырыптар",
        "contacts": "Байланыс және шұғыл нөмірлер",
        "language": "Тіл",
        "help": "Ботты қалай қолдану керек",
        "forget": "Деректерімді өшіру",
    },
    "en": {
        "start": "Start",
        "menu": "Topics",
        "contacts": "Contacts and emergency numbers",
        "language": "Language",
        "help": "How to use the bot",
        "forget": "Delete my data",
    },
}
NON_TEXT = (
    filters.Sticker.ALL
    | filters.PHOTO
    | filters.VIDEO
    | filters.VOICE
    | filters.AUDIO
    | filters.VIDEO_NOTE
    | filters.ANIMATION
    | filters.Document.ALL
    | filters.LOCATION
    | filters.CONTACT
    | filters.POLL
    | filters.Dice.ALL
)


ADMIN_COMMANDS = ("reload", "stats", "unanswered", "announce")


async def _ignore(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Staff chatting in the operators' chat: not questions for the bot."""


class EnvError(Exception):
    """A missing or unusable secret/setting in the environment: one clear line, exit code 2."""


@dataclass(frozen=True)
class Env:
    token: str
    secret: bytes
    db_path: Path
    base_url: str | None
    base_file_url: str | None
    webhook_secret: str | None
    outbox_max_age: float = MAX_AGE
    outbox_max_backoff: float = MAX_BACKOFF


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise EnvError(f"{name} must be a number of seconds above 0")
    return value


def read_env(
    environ: Mapping[str, str], configured_db: str, config_dir: Path, need_webhook_secret: bool = False
) -> Env:
    token = environ.get("TELEGRAM_BOT_TOKEN", "").strip()
    token_file = environ.get("TELEGRAM_BOT_TOKEN_FILE", "").strip()
    if not token and token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise EnvError(f"TELEGRAM_BOT_TOKEN_FILE {token_file!r} cannot be read: {exc.strerror}") from None
    if not token:
        raise EnvError("TELEGRAM_BOT_TOKEN is not set (get one from @BotFather; see README)")
    secret = environ.get("KOMEK_SECRET", "").strip()
    if len(secret) < 16:
        raise EnvError("KOMEK_SECRET must be set to a random string of at least 16 characters (see README)")
    webhook_secret = environ.get("KOMEK_WEBHOOK_SECRET", "").strip() or None
    if need_webhook_secret and not webhook_secret:
        raise EnvError("KOMEK_WEBHOOK_SECRET must be set for webhook mode (letters, digits, _ and -)")
    base_url = environ.get("TELEGRAM_BASE_URL", "").strip() or None
    base_file_url = environ.get("TELEGRAM_BASE_FILE_URL", "").strip() or None
    return Env(
        token=token,
        secret=secret.encode(),
        db_path=database_path(environ, configured_db, config_dir),
        base_url=base_url,
        base_file_url=base_file_url,
        webhook_secret=webhook_secret,
        outbox_max_age=_seconds(environ, "KOMEK_OUTBOX_MAX_AGE", MAX_AGE),
        outbox_max_backoff=_seconds(environ, "KOMEK_OUTBOX_MAX_BACKOFF", MAX_BACKOFF),
    )


async def _post_init(app: Application) -> None:  # type: ignore[type-arg]
    svc: Services = app.bot_data["services"]
    # Without a database the bot answers anyway (people's questions matter more than our counts);
    # it is tried again now and then (Services.open_storage).
    await svc.open_storage(force=True)
    svc.operator_chats.update(await svc.store(lambda s: s.operator_chats()) or [])
    if svc.outbox is not None:
        await svc.outbox.recover()  # what Telegram did not take before the restart
    for lang in svc.knowledge.config.languages:
        texts = COMMAND_TEXT.get(lang, COMMAND_TEXT["en"])
        try:
            await app.bot.set_my_commands([BotCommand(c, texts[c]) for c in COMMANDS], language_code=lang)
            description = svc.knowledge.t("greeting", lang)
            await app.bot.set_my_description(description[:512], language_code=lang)
        except TelegramError as exc:
            log.warning("could not set the command menu / description (%s): %s", lang, exc)
    if app.job_queue is not None:
        app.job_queue.run_repeating(_purge, interval=dt.timedelta(days=1), first=dt.timedelta(seconds=30))
        app.job_queue.run_repeating(reload_job, interval=RELOAD_SECONDS, first=RELOAD_SECONDS)
    # Announcements go through their own bot object with PTB's rate limiter, so a broadcast stays
    # within Telegram's limits without slowing down the answers to people's questions.
    env: Env = svc.extra["env"]
    broadcaster: ExtBot[int] = ExtBot(
        env.token,
        base_url=env.base_url or "https://api.telegram.org/bot",
        base_file_url=env.base_file_url or "https://api.telegram.org/file/bot",
        rate_limiter=AIORateLimiter(overall_max_rate=BROADCAST_RATE, max_retries=3),
    )
    await broadcaster.initialize()
    svc.extra["broadcaster"] = broadcaster
    log.info("Komek is running: %d FAQ entries", len(svc.knowledge.faq.entries))
    loaded: Loaded | None = svc.extra.pop("untrained", None)
    if loaded is not None:  # the matcher answers alone meanwhile (bot/staff.py → train_after_start)
        context: ContextTypes.DEFAULT_TYPE = CallbackContext(app)
        svc.extra["training"] = asyncio.get_running_loop().create_task(
            train_after_start(context, loaded), name="ranker-build"
        )


async def _post_shutdown(app: Application) -> None:  # type: ignore[type-arg]
    svc: Services = app.bot_data["services"]
    announcements = list(svc.extra.get("announcements", ()))
    for task in announcements:
        task.cancel()  # not sent again after the restart: the admin got no report and can decide
    await asyncio.gather(*announcements, return_exceptions=True)
    training = svc.extra.pop("training", None)
    if training is not None:
        training.cancel()  # first: a build stopped under it must not read as a failure to tell the admins
    stop_training(svc)  # a child still training is stopped: the next start trains again
    if training is not None:
        await asyncio.gather(training, return_exceptions=True)
    if svc.outbox is not None:
        await svc.outbox.close()  # what waits stays stored for the next start
    broadcaster = svc.extra.pop("broadcaster", None)
    if broadcaster is not None:
        await broadcaster.shutdown()
    if svc.storage is not None:
        await svc.storage.close()
        svc.storage = None


async def _purge(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Daily: events and unanswered questions older than retention_days are deleted."""
    svc = services(context)
    days = svc.knowledge.config.storage.retention_days
    counts = await svc.store(lambda s: s.purge_older_than(days, dt.datetime.now(dt.UTC)))
    if counts:
        log.info("retention purge: %s", counts)


SEND_CONNECTIONS = 4
SEND_POOL_TIMEOUT = 30.0


class SendRequest(HTTPXRequest):
    """PTB's HTTPXRequest for every call but getUpdates, with the same requests and answers for less
    CPU per message (the bot is CPU-bound under load):

    - A body without files is sent as JSON, not form-urlencoded: the parameters are the same JSON
      values PTB would urlencode (the Bot API reads both), but urllib quotes the text byte by byte in
      Python, which for an FAQ answer in Cyrillic cost more than the rest of building the request.
    - At most `connection_pool_size` requests are inside httpx at a time; the others wait here, in a
      plain semaphore. httpcore re-scans all its queued requests against all its connections
      whenever a request comes or goes, which under load made the pool the costliest part of a send.
      The wait here counts against the pool timeout, as httpx's own wait did.
    """

    def __init__(self, connection_pool_size: int, pool_timeout: float) -> None:
        super().__init__(connection_pool_size=connection_pool_size, pool_timeout=pool_timeout)
        self._slots = asyncio.Semaphore(connection_pool_size)
        self._pool_timeout = pool_timeout

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = HTTPXRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = HTTPXRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = HTTPXRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = HTTPXRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        wait = self._pool_timeout if isinstance(pool_timeout, DefaultValue) else pool_timeout
        try:
            async with asyncio.timeout(wait):
                await self._slots.acquire()
        except TimeoutError:
            raise TimedOut("Pool timeout: all connections were busy; the request was not sent to Telegram") from None
        try:
            if request_data is None or request_data.contains_files:
                return await super().do_request(
                    url, method, request_data, read_timeout, write_timeout, connect_timeout, pool_timeout
                )
            return await self._send_json(url, method, request_data, read_timeout, write_timeout, connect_timeout)
        finally:
            self._slots.release()

    async def _send_json(
        self,
        url: str,
        method: str,
        request_data: RequestData,
        read_timeout: ODVInput[float],
        write_timeout: ODVInput[float],
        connect_timeout: ODVInput[float],
    ) -> tuple[int, bytes]:
        """HTTPXRequest.do_request for a body without files, with `content=` JSON instead of `data=`."""
        client = self._client
        if client.is_closed:
            raise RuntimeError("This HTTPXRequest is not initialized!")
        default = client.timeout
        timeout = httpx.Timeout(
            connect=default.connect if isinstance(connect_timeout, DefaultValue) else connect_timeout,
            read=default.read if isinstance(read_timeout, DefaultValue) else read_timeout,
            write=default.write if isinstance(write_timeout, DefaultValue) else write_timeout,
            pool=default.pool,
        )
        try:
            res = await client.request(
                method=method,
                url=url,
                headers={"User-Agent": self.USER_AGENT, "Content-Type": "application/json"},
                timeout=timeout,
                content=request_data.json_payload,
            )
        except httpx.TimeoutException as err:
            raise TimedOut from err
        except httpx.HTTPError as err:
            raise NetworkError(f"httpx.{err.__class__.__name__}: {err}") from err
        return res.status_code, res.content


def build_application(loaded: Loaded, env: Env, config_path: Path, faq_dir: Path | None) -> Application:  # type: ignore[type-arg]
    k = loaded.knowledge
    builder = (
        ApplicationBuilder()
        .token(env.token)
        .defaults(Defaults(parse_mode=ParseMode.HTML, link_preview_options=LinkPreviewOptions(is_disabled=True)))
        .post_init(_post_init)
        .post_shutdown(_post_shutdown)
        # A few connections serve every chat (requests wait their turn, up to the pool timeout): httpcore
        # walks its whole pool on each request, so PTB's default of 256 costs CPU under load.
        .request(SendRequest(connection_pool_size=SEND_CONNECTIONS, pool_timeout=SEND_POOL_TIMEOUT))
    )
    if env.base_url:
        builder = builder.base_url(env.base_url)
    if env.base_file_url:
        builder = builder.base_file_url(env.base_file_url)
    app = builder.build()
    svc = Services(
        knowledge=k,
        secret=env.secret,
        flood=FloodGuard(k.config.telegram.flood_messages_per_minute),
        db_path=env.db_path,
        config_path=config_path,
        faq_dir=faq_dir,
    )
    app.bot_data["services"] = svc
    svc.extra["env"] = env
    if loaded.pending is not None:  # trained in a child process once the bot runs (_post_init)
        svc.extra["untrained"] = loaded

    async def after(entry: Outgoing, message_id: int | None, error: BaseException | None) -> None:
        await after_queued(app.bot, svc, entry, message_id, error)

    async def on_blocked(pid: str) -> None:
        await svc.store(lambda s: s.set_unsubscribed(pid))

    svc.outbox = Outbox(
        app.bot,
        svc,
        env.secret,
        max_age=env.outbox_max_age,
        max_backoff=env.outbox_max_backoff,
        after=after,
        on_blocked=on_blocked,
    )
    # Order matters: staff commands first (they check who and where themselves), then the
    # operators' chat (staff replies there are not questions; which chat that is is read at each
    # message, so a live reload that changes it takes effect), then opt-in commands, user
    # commands, buttons, text (new and edited), then everything else.
    ops = OperatorsChat(svc)
    app.add_handler(CommandHandler(list(ADMIN_COMMANDS), on_admin))
    app.add_handler(MessageHandler(ops & filters.REPLY & filters.TEXT, on_operator_message))
    app.add_handler(MessageHandler(ops, _ignore))
    app.add_handler(CommandHandler(["subscribe", "unsubscribe"], on_subscription))
    app.add_handler(CommandHandler(list(COMMANDS), on_command))
    app.add_handler(CallbackQueryHandler(on_staff_button, pattern=f"^{STAFF_PREFIX}"))  # /unanswered's buttons
    app.add_handler(CallbackQueryHandler(on_button))
    app.add_handler(MessageHandler(filters.UpdateType.MESSAGES & filters.TEXT & ~filters.COMMAND, on_text))
    app.add_handler(MessageHandler(filters.UpdateType.MESSAGES & NON_TEXT, on_non_text))
    app.add_error_handler(on_error)
    return app


def run_polling(app: Application) -> None:  # type: ignore[type-arg]
    """Long polling that confirms an update only after it was handled (see bot/polling.py)."""
    asyncio.run(serve_polling(app))


def run_webhook(app: Application, env: Env, url: str | None = None) -> None:  # type: ignore[type-arg]
    """A webhook that answers Telegram only after an update was handled (see bot/webhook.py).
    `url` (the public address Telegram posts to) defaults to telegram.webhook.public_url."""
    svc: Services = app.bot_data["services"]
    hook = svc.knowledge.config.telegram.webhook
    if not env.webhook_secret:
        raise EnvError("KOMEK_WEBHOOK_SECRET must be set for webhook mode (letters, digits, _ and -)")
    public_url = url or hook.public_url
    if not public_url:
        raise EnvError("telegram.webhook.public_url in config.yaml (or --url) must be set for webhook mode")
    asyncio.run(
        serve_webhook(
            app, listen=hook.listen, port=hook.port, path=hook.path, url=public_url, secret=env.webhook_secret
        )
    )


def setup_logging(secrets: list[str]) -> None:
    from bot.privacy import install_log_redaction

    level = os.environ.get("KOMEK_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=level)
    install_log_redaction(secrets)
    # Their DEBUG output is every raw update and API call: names, usernames and the questions
    # themselves, which the redaction cannot know to remove. KOMEK_LOG_LEVEL=DEBUG is for our code.
    for chatty in ("telegram", "aiosqlite", "apscheduler"):
        logging.getLogger(chatty).setLevel(max(logging.INFO, logging.getLogger().level))

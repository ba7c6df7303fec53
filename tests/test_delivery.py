"""Nothing lost, nobody stalled (issue 14): Bot API outages longer than any retry, 429s, a lost
response, a restart and a kill -9 in the middle of an outage, one chat's backlog, a broadcast.

The bot talks to the Bot API emulator (tests/botapi) through tests/faultproxy.py, which fails the
way Telegram and the network do for a given time. The outages here last seconds (the outbox's
longest pause between tries is shrunk to 0.5 s through Env / KOMEK_OUTBOX_MAX_BACKOFF); each is
longer than what the old code's retries covered (4 tries within 3.5 s, or 3 waits of a 429), after
which it dropped the question. The README states the real figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from botapi_client import BotApiServer, SimUser
from conftest import ContentCopy
from faultproxy import FaultProxy
from test_bot import new_env
from test_hardening import (
    BotProcess,
    answers,
    db_rows,
    errors,
    frozen,
    knowledge,
    loaded,
    log_problems,
    new_token,
    serving,
    wait_polling,
)
from test_staff import ADMIN, staff_copy

from bot.app import Env
from bot.content import Loaded, load_knowledge
from bot.dialogue import Knowledge, reply_to_text, split_message
from bot.privacy import pseudonym, seal
from bot.storage import Storage

pytestmark = pytest.mark.e2e
_ = (frozen, loaded, knowledge)  # module fixtures of test_hardening, used here by name
QUESTION = "можно ли мне работать"
OUTAGE = 5.0  # seconds: longer than the old retries (3.5 s), short enough for the suite


def through(proxy: FaultProxy, env: Env, **changes: Any) -> Env:
    """The same bot, talking to the Bot API through the proxy, with the outbox's pauses shrunk
    (settings this Env does not have are left out, so the tests also run against older code)."""
    fields = {f.name for f in dataclasses.fields(env)}
    changes = {k: v for k, v in {"outbox_max_backoff": 0.5, **changes}.items() if k in fields}
    return dataclasses.replace(env, base_url=proxy.base_url, base_file_url=proxy.base_file_url, **changes)


def people(base: int, count: int, lang: str = "ru") -> list[SimUser]:
    return [SimUser(id=base + i, first_name="P", language_code=lang) for i in range(count)]


def want(k: Knowledge, text: str = QUESTION, lang: str = "ru") -> list[str]:
    return split_message(reply_to_text(k, text, lang).text)


# ------------------------------------------------------------------------------ outages


async def test_answers_survive_send_failures_longer_than_the_retries(
    loaded: Loaded, knowledge: Knowledge, botapi_server: BotApiServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Three people's answers meet a fault for 5 s: HTTP 500s; 429s (retry after 1 s, again and
    again); the connection closed without an answer. Before, after 4 tries the
    question was dropped (and the apology failed too). Now each answer arrives once, after its
    outage, never sent again before a 429's retry_after; ten others are answered meanwhile."""
    caplog.set_level(logging.INFO)
    hit, others = people(8_100_000_001, 3), people(8_100_000_100, 10)
    async with FaultProxy(botapi_server.url) as proxy:
        env = through(proxy, new_env(botapi_server, tmp_path / "komek.sqlite3"))
        async with serving(loaded, env, botapi_server) as bot:
            u = bot.user
            for person, mode in zip(hit, ("500", "429", "down"), strict=True):
                # a flood control that says "retry after 1 s" again and again for 5 s
                proxy.outage(mode, OUTAGE, method="sendMessage", chat_id=person.id, retry_after=1)
            began = time.monotonic()
            for person in hit + others:
                await u.send_message(person.id, QUESTION, person)
            for person in others:
                await u.wait_for_bot_messages(person.id, 1, timeout=OUTAGE)
            others_answered = time.monotonic() - began
            for person in hit:
                await u.wait_for_bot_messages(person.id, len(want(knowledge)), timeout=OUTAGE + 10)
            await asyncio.sleep(0.5)
            for person in hit:
                assert await answers(u, person.id) == want(knowledge), person.id  # once
                [message] = await u.bot_messages(person.id)
                assert "fb:" in str(message["reply_markup"])  # with its buttons
                delivered = [e.at for e in proxy.calls("sendMessage", person.id) if e.outcome == "ok"]
                assert min(delivered) - began >= OUTAGE - 0.5, person.id  # only after the outage
                assert len(proxy.calls("sendMessage", person.id)) > 4  # more tries than before
            assert proxy.early == 0  # no try before the retry_after Telegram gave
            assert others_answered < OUTAGE
    assert db_rows(tmp_path / "komek.sqlite3")["outbox"] == []
    assert errors(caplog) == []
    print(f"\noutages: ten others answered in {others_answered:.1f} s while three answers waited {OUTAGE} s")


async def test_questions_survive_the_bot_api_being_down(
    loaded: Loaded, knowledge: Knowledge, botapi_server: BotApiServer, tmp_path: Path
) -> None:
    """The whole Bot API goes down (getUpdates too) just after five people asked and before their
    answers could go out; two more ask while it is down. When it comes back, all seven are
    answered, each once."""
    before, during = people(8_200_000_001, 5), people(8_200_000_100, 2)
    async with FaultProxy(botapi_server.url) as proxy:
        env = through(proxy, new_env(botapi_server, tmp_path / "komek.sqlite3"))
        async with serving(loaded, env, botapi_server) as bot:
            u = bot.user
            proxy.outage("down", OUTAGE + 1, method="sendMessage")
            for person in before:
                await u.send_message(person.id, QUESTION, person)

            def tried() -> bool:
                return all(proxy.calls("sendMessage", p.id) for p in before)

            await u.wait_for(tried, timeout=10, message="every answer tried")
            down = proxy.outage("down", OUTAGE)  # everything, getUpdates included
            for person in during:
                await u.send_message(person.id, QUESTION, person)
            assert [await u.bot_messages(p.id) for p in before + during] == [[]] * 7
            for person in before + during:
                await u.wait_for_bot_messages(person.id, 1, timeout=OUTAGE + 15)
            assert time.monotonic() >= down.until - 0.5
            await asyncio.sleep(0.5)
            for person in before + during:
                assert await answers(u, person.id) == want(knowledge), person.id


async def test_a_429_is_waited_out_as_long_as_telegram_says_and_nothing_else_waits(
    loaded: Loaded, knowledge: Knowledge, botapi_server: BotApiServer, tmp_path: Path
) -> None:
    """One person's answers meet 429s for 8 s while they send 40 messages; then 20 others ask.
    Before, that person's unanswered updates held the window of unconfirmed updates (the offset is
    one for all chats) and everybody waited for the 429: 96-100 s in the issue's run. Now each of
    the others is answered within a couple of seconds, and the person's answers follow the 429, in
    order (20 answered and one "slow down": the flood guard), none sent before the retry_after."""
    noisy, others = SimUser(id=8_300_000_001, first_name="N", language_code="ru"), people(8_300_000_100, 20)
    flood = 8.0
    async with FaultProxy(botapi_server.url) as proxy:
        env = through(proxy, new_env(botapi_server, tmp_path / "komek.sqlite3"))
        async with serving(loaded, env, botapi_server) as bot:
            u = bot.user
            proxy.outage("429", flood, method="sendMessage", chat_id=noisy.id)
            for _ in range(40):
                await u.send_message(noisy.id, QUESTION, noisy)
            await u.wait_for(lambda: proxy.calls("sendMessage", noisy.id), message="the first 429")
            waits = []
            for person in others:
                began = time.monotonic()
                await u.send_message(person.id, QUESTION, person)
                await u.wait_for_bot_messages(person.id, 1, timeout=flood + 5)
                waits.append(time.monotonic() - began)
            assert await u.bot_messages(noisy.id) == [], "the 429 ended before the others were served"
            expected = want(knowledge) * 20 + [loaded.knowledge.t("slow_down", "ru")]
            await u.wait_for_bot_messages(noisy.id, len(expected), timeout=flood + 15)
            await asyncio.sleep(0.3)
            assert await answers(u, noisy.id) == expected
            assert proxy.early == 0
    print(f"\none chat under 429 for {flood} s: 20 others answered in at most {max(waits):.2f} s")
    assert max(waits) < flood / 2


async def test_an_announcement_to_many_subscribers_delays_no_answer(
    botapi_server: BotApiServer, tmp_path: Path
) -> None:
    """/announce to 100 subscribers takes about 5 s (20 a second, Telegram's limit leaves room for
    answers); 40 people who ask meanwhile are each answered within a couple of seconds. Before,
    the /announce update held the window and 29 of 60 askers waited for the broadcast."""
    config, faq = staff_copy(tmp_path)
    loaded = load_knowledge(config, faq, dt.date.today())
    db = tmp_path / "komek.sqlite3"
    env = new_env(botapi_server, db)
    subscribers = people(8_400_000_001, 100)
    now = dt.datetime.now(dt.UTC)
    async with await Storage.open(db) as storage:
        for person in subscribers:
            pid = pseudonym(person.id, env.secret)
            await storage.set_subscription(pid, True, seal(person.id, env.secret), now)
    askers = people(8_400_000_500, 40)
    async with serving(loaded, env, botapi_server, config=config, faq=faq) as bot:
        u = bot.user
        await u.send_command(ADMIN.id, "/announce Office closed on Friday", ADMIN)
        await u.wait_for_bot_messages(subscribers[3].id, 1, timeout=10)  # the broadcast runs

        async def ask(person: SimUser) -> tuple[float, int]:
            began = time.monotonic()
            await u.send_message(person.id, QUESTION, person)
            [answer] = await u.wait_for_bot_messages(person.id, 1, timeout=30)
            return time.monotonic() - began, int(answer["message_id"])

        asked = await asyncio.gather(*(ask(person) for person in askers))

        async def report() -> str | None:
            return next((m["text"] for m in await u.bot_messages(ADMIN.id) if "delivered," in m["text"]), None)

        assert "100 delivered, 0 blocked, 0 failed (of 100)" in await u.wait_for(report, timeout=30)
        news = [m for p in subscribers for m in await u.bot_messages(p.id)]
        assert len(news) == 100
    waits = [w for w, _ in asked]
    print(f"\nannouncement to 100: 40 askers answered within {max(waits):.2f} s of asking")
    # message ids are one sequence: every asker was answered before the broadcast ended
    assert max(i for _, i in asked) < max(int(m["message_id"]) for m in news)


async def test_a_lost_response_gives_at_most_one_extra_copy(
    loaded: Loaded, knowledge: Knowledge, botapi_server: BotApiServer, tmp_path: Path
) -> None:
    """Telegram took a message but its answer was lost on the way back (the connection dropped):
    the bot cannot know it was delivered and sends it again. This is the documented limit
    (Telegram has no idempotent send): one extra copy per lost response, never a loop."""
    person = SimUser(id=8_500_000_001, first_name="L", language_code="ru")
    async with FaultProxy(botapi_server.url) as proxy:
        env = through(proxy, new_env(botapi_server, tmp_path / "komek.sqlite3"))
        async with serving(loaded, env, botapi_server) as bot:
            proxy.outage("lose-response", 0.3, method="sendMessage", chat_id=person.id)
            await bot.user.send_message(person.id, QUESTION, person)
            await bot.user.wait_for_bot_messages(person.id, 2, timeout=10)
            await asyncio.sleep(1.0)
            assert await answers(bot.user, person.id) == want(knowledge) * 2


async def test_a_message_telegram_never_takes_is_given_up_after_the_max_age(
    loaded: Loaded, botapi_server: BotApiServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Retrying is bounded: a message older than the outbox's max age (24 h; 2 s here) is dropped
    with one error in the log, and its row deleted."""
    caplog.set_level(logging.INFO)
    db = tmp_path / "komek.sqlite3"
    person = SimUser(id=8_600_000_001, first_name="G", language_code="ru")
    async with FaultProxy(botapi_server.url) as proxy:
        env = through(proxy, new_env(botapi_server, db), outbox_max_age=2.0)
        async with serving(loaded, env, botapi_server) as bot:
            proxy.outage("500", 30, method="sendMessage", chat_id=person.id)
            await bot.user.send_message(person.id, QUESTION, person)
            await bot.user.wait_for(lambda: "given up" in caplog.text, timeout=10, message="the give-up")
            # the row goes in the outbox's next commit, which may come just after the log line
            await bot.user.wait_for(lambda: db_rows(db)["outbox"] == [], timeout=10, message="the row deleted")
    assert [e for e in errors(caplog) if "given up" in e] == errors(caplog) != []


# ------------------------------------------------------------------------------ restarts


def test_answers_waiting_for_telegram_survive_kill_9(
    botapi_server: BotApiServer, frozen: tuple[ContentCopy, Loaded], knowledge: Knowledge, tmp_path: Path
) -> None:
    """`python -m bot run` while sendMessage is down: five questions are taken and their answers
    queued in SQLite; kill -9; the API comes back; the restarted bot sends each answer, once."""
    db, token = tmp_path / "komek.sqlite3", new_token()
    asked = people(8_700_000_001, 5)

    async def scenario() -> tuple[list[tuple[Any, ...]], str]:
        async with FaultProxy(botapi_server.url) as proxy, botapi_server.client(token, timeout=30) as user:
            extra = {
                "TELEGRAM_BASE_URL": proxy.base_url,
                "TELEGRAM_BASE_FILE_URL": proxy.base_file_url,
                "KOMEK_OUTBOX_MAX_BACKOFF": "0.5",
            }
            down = proxy.outage("down", 600, method="sendMessage")
            first = BotProcess(botapi_server, token, db, tmp_path / "first.log", frozen[0], extra_env=extra)
            try:
                await wait_polling(user, first)
                for person in asked:
                    await user.send_message(person.id, QUESTION, person)

                def queued() -> bool:
                    return db_path_ready(db) and len(db_rows(db)["outbox"]) == len(asked)

                await user.wait_for(queued, timeout=30, interval=0.1, message="five answers queued")
                first.kill9()
            finally:
                first.close()
            outbox = db_rows(db)["outbox"]
            down.until = 0.0  # the API is back
            second = BotProcess(botapi_server, token, db, tmp_path / "second.log", frozen[0], extra_env=extra)
            try:
                for person in asked:
                    await user.wait_for_bot_messages(person.id, 1, timeout=60)
                await asyncio.sleep(0.5)
                for person in asked:
                    assert await answers(user, person.id) == want(knowledge), person.id
                assert second.stop() == 0
            finally:
                second.close()
            return outbox, second.log()

    outbox, log = asyncio.run(scenario())
    assert len(outbox) == 5 and all(str(p.id).encode() not in row[3] for row in outbox for p in asked)
    assert db_rows(db)["outbox"] == []
    assert log_problems(log) == [], log[-3000:]


def db_path_ready(db: Path) -> bool:
    with contextlib.suppress(Exception):
        return "outbox" in db_rows(db)
    return False

"""The offline terminal chat: the same dialogue as on Telegram, buttons shown as numbered choices."""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from bot.dialogue import (
    FALLBACK,
    SUGGEST,
    Knowledge,
    Reply,
    contacts_reply,
    forget_prompt,
    greeting_reply,
    info_reply,
    language_picker,
    menu_reply,
    reply_to_button,
    reply_to_text,
    start_reply,
)
from bot.i18n import choose_language
from bot.privacy import pseudonym, scrub
from bot.storage import Storage

T = TypeVar("T")
OFFLINE_USER = 0  # the terminal chat's one user (no Telegram id is 0): its pseudonym, as the bot makes them
OFFLINE_KEY = b"komek-offline-chat"  # when KOMEK_SECRET is not set
COMMANDS = "/menu /contacts /language /help /forget /quit"

_LINK = re.compile(r'<a\s+href="([^"]*)"\s*>(.*?)</a>', re.S)
_TAG = re.compile(r"<[^>]+>")


def plain(text: str) -> str:
    """Telegram HTML as terminal text: links keep their address, other tags go."""
    text = _LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})", text)
    return html.unescape(_TAG.sub("", text))


def render(reply: Reply) -> tuple[str, list[tuple[str, str]]]:
    """The reply as text plus numbered choices (label, action)."""
    lines = [plain(reply.text)] if reply.text else []
    choices: list[tuple[str, str]] = []
    for row in reply.buttons:
        for button in row:
            if button.url:
                lines.append(f"   🔗 {button.label}: {button.url}")
            elif button.data:
                choices.append((button.label, button.data))
    for n, (label, _) in enumerate(choices, 1):
        lines.append(f"  [{n}] {label}")
    return "\n".join(lines), choices


def command_reply(k: Knowledge, command: str, arg: str, lang: str, now: dt.datetime) -> Reply:
    """The reply to a /command in the terminal chat (unknown ones get the help text)."""
    match command:
        case "start":
            return start_reply(k, arg, lang)
        case "menu":
            return menu_reply(k, lang)
        case "contacts":
            return contacts_reply(k, lang, now)
        case "language":
            return language_picker(k, lang)
        case "forget":
            return forget_prompt(k, lang)
        case _:
            return info_reply(k, "help", lang)


class Recorder:
    """`chat --db FILE`: the live bot's storage calls (as bot/handlers.py makes them) on a local file,
    so the report, /stats, /unanswered and teaching can be tried without Telegram."""

    def __init__(self, path: Path, key: bytes) -> None:
        self._runner = asyncio.Runner()
        try:
            self.store = self._runner.run(Storage.open(path))
        except BaseException:
            self._runner.close()
            raise
        self.path = path
        self.pid = pseudonym(OFFLINE_USER, key)

    def run(self, action: Callable[[Storage], Awaitable[T]]) -> T:
        return self._runner.run(action(self.store))  # type: ignore[arg-type]

    def close(self) -> None:
        self._runner.run(self.store.close())
        self._runner.close()

    def turn(self, reply: Reply, kind: str, now: dt.datetime, text: str | None = None) -> None:
        """One message answered (handlers._record): the user, the event, the question if unanswered."""
        unanswered = None
        if text is not None and reply.kind in (FALLBACK, SUGGEST):
            unanswered = (scrub(text), [(c.entry_id, c.score) for c in reply.candidates[:3]])
        self.run(
            lambda s: s.record_turn(
                self.pid, kind, reply.entry_id, reply.score, reply.lang, now, unanswered, reply.crisis
            )
        )

    def language(self, lang: str, now: dt.datetime) -> None:
        self.run(lambda s: s.set_language(self.pid, lang, now))

    def feedback(self, entry_id: str, helpful: bool, now: dt.datetime) -> None:
        self.run(lambda s: s.record_feedback(self.pid, entry_id, helpful, now))

    def forget(self) -> dict[str, int]:
        return self.run(lambda s: s.forget_user(self.pid))

    def stored_language(self) -> str | None:
        return self.run(lambda s: s.get_language(self.pid))

    def staff(self, k: Knowledge, command: str, now: dt.datetime) -> str:
        """/stats and /unanswered as an admin sees them (this file is yours)."""
        from zoneinfo import ZoneInfo

        from bot import review

        tz = ZoneInfo(k.config.contacts.office.hours.timezone)
        if command == "stats":
            return self._runner.run(review.stats_text(self.store.stats, now, tz))
        rows = self.run(lambda s: s.recent_unanswered(500))
        decisions = review.decisions_by_text(self.run(lambda s: s.teaching_decisions()))
        items = review.questions_for_review(rows, decisions)
        return review.listing(k, items, tz, k.config.default_language) + (
            f"\nTeach one: python -m bot teach ID ENTRY --db {self.path}\n" if items else ""
        )


def run_chat(
    k: Knowledge,
    lang: str | None,
    read: Callable[[str], str] = input,
    write: Callable[[str], None] = print,
    recorder: Recorder | None = None,
    knowledge: Callable[[], Knowledge] | None = None,
) -> None:
    """Chat until EOF or /quit. Commands: /start /menu /contacts /language /help /forget /quit (and,
    when recording, /stats and /unanswered). `knowledge`: the version to answer each message with,
    when it may change during the chat (the same FAQ with its learned ranker, once trained)."""
    current = lang or k.config.default_language
    chosen = lang  # an explicit choice wins; otherwise each message's own language is used
    if recorder is not None and lang is None:
        chosen = recorder.stored_language()  # as the bot remembers a user's choice
        current = chosen or current
    write(f"Komek — offline chat. Type a question, a number to press a button, or a command: {COMMANDS}")
    if recorder is not None:
        write(
            f"Recording to {recorder.path} as the bot does (a pseudonym, events, scrubbed unanswered questions); "
            "/stats and /unanswered show what staff see."
        )
    write("")
    reply: Reply | None = language_picker(k, current) if chosen is None else greeting_reply(k, current)
    choices: list[tuple[str, str]] = []
    while True:
        if reply is not None:
            text, choices = render(reply)
            write(text + "\n")
        try:
            line = read("> ").strip()
        except (EOFError, KeyboardInterrupt):
            write("")
            return
        now = dt.datetime.now(dt.UTC)
        if line in ("/quit", "/exit"):
            return
        if knowledge is not None:
            k = knowledge()
        new: Reply
        if line.isdigit() and 1 <= int(line) <= len(choices):
            new = reply_to_button(k, choices[int(line) - 1][1], current, now)
            if new.set_language and recorder is not None:
                recorder.language(new.set_language, now)
            if new.feedback and recorder is not None:
                recorder.feedback(*new.feedback, now)
            if new.forget:
                what = "—"
                if recorder is not None:
                    counts = recorder.forget()
                    what = k.t(
                        "forget_what",
                        new.lang,
                        events=str(counts.get("events", 0)),
                        questions=str(counts.get("unanswered", 0)),
                        feedback=str(counts.get("feedback", 0)),
                    )
                new = info_reply(k, "forget_done", current, what=what)
            elif recorder is not None:
                recorder.turn(new, new.kind if new.entry_id else f"btn_{new.kind}", now)
        elif line.startswith("/"):
            command, _, arg = line[1:].partition(" ")
            if recorder is not None and command in ("stats", "unanswered"):
                write(recorder.staff(k, command, now))
                reply = None  # the last reply's buttons still work
                continue
            new = command_reply(k, command, arg, current, now)
            if new.set_language and recorder is not None:
                recorder.language(new.set_language, now)
            if recorder is not None:
                recorder.turn(new, f"cmd_{command}"[:20], now)
        else:
            current = choose_language(chosen, None, line, k.config.languages, current)
            new = reply_to_text(k, line, current)
            if recorder is not None:
                recorder.turn(new, new.kind, now, line)
        reply = new
        if reply.set_language:
            current = chosen = reply.set_language

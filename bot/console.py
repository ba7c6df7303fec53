"""The offline terminal chat: the same dialogue as on Telegram, buttons shown as numbered choices."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Callable

from bot.dialogue import (
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


def run_chat(
    k: Knowledge,
    lang: str | None,
    read: Callable[[str], str] = input,
    write: Callable[[str], None] = print,
) -> None:
    """Chat until EOF or /quit. Commands: /start /menu /contacts /language /help /forget /quit."""
    current = lang or k.config.default_language
    chosen = lang  # an explicit choice wins; otherwise each message's own language is used
    write("Komek — offline chat. Type a question, a number to press a button, or /quit.\n")
    reply = language_picker(k, current) if lang is None else greeting_reply(k, current)
    while True:
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
        if line.isdigit() and 1 <= int(line) <= len(choices):
            reply = reply_to_button(k, choices[int(line) - 1][1], current, now)
            if reply.forget:
                reply = info_reply(k, "forget_done", current, what="—")
        elif line.startswith("/"):
            command, _, arg = line[1:].partition(" ")
            reply = command_reply(k, command, arg, current, now)
        else:
            current = choose_language(chosen, None, line, k.config.languages, current)
            reply = reply_to_text(k, line, current)
        if reply.set_language:
            current = chosen = reply.set_language

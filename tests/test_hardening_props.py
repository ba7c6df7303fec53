"""Property tests (hypothesis) over the pure parts of a turn with hostile input.

tests/test_dialogue.py already checks that reply_to_text / reply_to_button never raise on short
arbitrary strings. These go further: texts built from what breaks naive code (control characters,
zero-width joiners, bidi overrides, combining marks, emoji runs, HTML, placeholders, up to
Telegram's 4,096 characters and beyond), and what a turn *sends*: every part is one Telegram
accepts (not empty, within the limit, well-formed HTML of Telegram's tags), every button survives
into the inline keyboard, and every button the bot shows leads somewhere (never "this has been
updated") however deep one follows them. Forged callback data are real data mutated. The group
mention helper of bot/handlers.py gets arbitrary text around the mention.
"""

from __future__ import annotations

import datetime as dt
import re

from hostile import HOSTILE_PIECES
from hypothesis import example, given
from hypothesis import strategies as st
from telegram import Chat, Message

from bot.dialogue import Knowledge, Reply, menu_reply, reply_to_button, reply_to_text, split_message
from bot.handlers import _addressed
from bot.i18n import choose_language
from bot.keyboards import inline_keyboard

NOW = dt.datetime(2025, 3, 4, 10, 0, tzinfo=dt.UTC)
LANG_CODES = st.one_of(st.none(), st.sampled_from(["ru", "kk", "en", "uk", "tr", "zh-hans"]), st.text(max_size=8))

NASTY = HOSTILE_PIECES
WORDS = [
    "как",
    "подать",
    "убежище",
    "беженец",
    "школа",
    "врач",
    "работа",
    "полиция",
    "депортация",
    "босқын",
    "мектеп",
    "asylum",
    "school",
    "doctor",
    "help",
    "ЖЫЛ",
    "привет",
    "спасибо",
]
fragments = st.one_of(st.sampled_from(NASTY), st.sampled_from(WORDS), st.text(max_size=12), st.just(" "))
hostile_text = st.one_of(
    st.lists(fragments, max_size=60).map("".join),
    st.builds(lambda piece, n: piece * n, st.sampled_from(NASTY + WORDS), st.integers(1, 5000)),
    st.text(max_size=4096),
)

ALLOWED_TAGS = {
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "a",
    "code",
    "pre",
    "blockquote",
    "tg-spoiler",
    "span",
    "tg-emoji",
}
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)[^<>]*>")


def telegram_html_problem(part: str) -> str | None:
    """What Telegram's parse_mode=HTML would refuse in `part` (as tests/botapi/launcher.js does)."""
    stack: list[str] = []
    pos = 0
    for m in _TAG.finditer(part):
        if "<" in part[pos : m.start()] or ">" in part[pos : m.start()]:
            return f"a bare < or > before {m.group(0)!r}"
        closing, name = m.group(1) == "/", m.group(2).lower()
        if name not in ALLOWED_TAGS:
            return f"unsupported tag {name!r}"
        if closing:
            if not stack or stack.pop() != name:
                return f"unmatched </{name}>"
        else:
            stack.append(name)
        pos = m.end()
    if "<" in part[pos:] or ">" in part[pos:]:
        return "a bare < or >"
    return f"unclosed <{stack[-1]}>" if stack else None


def visible_length(part: str) -> int:
    """Characters Telegram counts (UTF-16 code units) once the tags are parsed away."""
    text = _TAG.sub("", part)
    text = re.sub(r"&(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);", "x", text)
    return len(text.encode("utf-16-le")) // 2


def assert_sendable(reply: Reply) -> None:
    parts = split_message(reply.text) if reply.text else []
    assert parts or reply.forget  # a reply says something (the erase confirmation is sent separately)
    for part in parts:
        assert part.strip()
        assert visible_length(part) <= 4096, visible_length(part)
        assert telegram_html_problem(part) is None, (telegram_html_problem(part), part[:200])
    keyboard = inline_keyboard(reply.buttons)
    shown = sum(len(row) for row in keyboard.inline_keyboard) if keyboard else 0
    assert shown == sum(len(row) for row in reply.buttons)  # no button silently dropped
    for row in reply.buttons:
        for button in row:
            assert button.label.strip()
            assert button.url or (button.data and len(button.data.encode()) <= 64)


def turn(k: Knowledge, text: str, code: str | None) -> Reply:
    """What on_text computes for a private message from a user without a stored language."""
    lang = choose_language(None, code, text, k.config.languages, k.config.default_language)
    return reply_to_text(k, text, lang)


@given(hostile_text, LANG_CODES)
@example("😀" * 10_000, "ru")
@example("ж" * 4096, None)
@example("\u202eеищебу ан ьтадоп как", "kk")
@example("<b>" * 100 + "&" * 100, "en")
def test_any_text_gets_a_reply_telegram_accepts(knowledge: Knowledge, text: str, code: str | None) -> None:
    reply = turn(knowledge, text, code)
    assert reply.lang in knowledge.config.languages
    assert_sendable(reply)


def gone(k: Knowledge, reply: Reply) -> bool:
    return reply.text == k.t("entry_gone", reply.lang)


@given(hostile_text, LANG_CODES, st.lists(st.integers(0, 1000), max_size=6))
def test_every_button_shown_leads_somewhere(knowledge: Knowledge, text: str, code: str | None, path: list[int]) -> None:
    """Follow the bot's own buttons from any reply, as deep as one likes: never a dead end."""
    reply = turn(knowledge, text, code)
    for step in path:
        data = [b.data for row in reply.buttons for b in row if b.data]
        if not data:
            reply = menu_reply(knowledge, reply.lang)
            continue
        chosen = data[step % len(data)]
        reply = reply_to_button(knowledge, chosen, reply.lang, NOW)
        assert not gone(knowledge, reply), chosen
        assert_sendable(reply)


def real_data(k: Knowledge) -> list[str]:
    menu = menu_reply(k, k.config.default_language)
    found = {b.data for row in menu.buttons for b in row if b.data}
    for data in list(found):
        found |= {b.data for row in reply_to_button(k, data, "ru", NOW).buttons for b in row if b.data}
    return sorted(found)


@given(st.data(), st.sampled_from(["ru", "kk", "en", "xx", ""]))
def test_forged_callback_data_gets_a_sendable_reply(knowledge: Knowledge, data: st.DataObject, lang: str) -> None:
    base = data.draw(st.sampled_from(real_data(knowledge)))
    forged = data.draw(
        st.one_of(
            st.builds(lambda s: base + s, st.text(max_size=40)),
            st.builds(lambda s: s + base, st.text(max_size=10)),
            st.builds(lambda n: base[:n], st.integers(0, len(base))),
            st.just(base.upper()),
            st.just(base.replace(":", "::")),
            st.text(max_size=200),
            st.binary(max_size=64).map(lambda b: b.decode("latin-1")),
        )
    )
    reply = reply_to_button(knowledge, forged, lang, NOW)
    assert reply.lang in knowledge.config.languages
    assert_sendable(reply)


BOT = "komek_test_bot"
GROUP = Chat(-100123, Chat.SUPERGROUP)


@given(st.text(max_size=200), st.text(max_size=200), st.sampled_from(["@komek_test_bot", "@KOMEK_test_Bot"]))
@example("İİİ ", " как подать на убежище", "@komek_test_bot")
def test_group_mention_is_cut_out_exactly(before: str, after: str, mention: str) -> None:
    message = Message(1, NOW, GROUP, text=before + mention + after)
    addressed, text = _addressed(message, GROUP, BOT, 42)
    assert addressed
    if "@komek_test_bot" not in before.lower():  # the first mention is the one cut out
        assert text == (before + after).strip()


@given(st.text(max_size=300))
def test_group_message_without_mention_is_not_addressed(text: str) -> None:
    message = Message(1, NOW, GROUP, text=text)
    addressed, _ = _addressed(message, GROUP, BOT, 42)
    assert addressed == bool(re.search("@komek_test_bot", text, re.IGNORECASE))

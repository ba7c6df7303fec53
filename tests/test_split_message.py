"""bot.dialogue.split_message on HTML: a long reply is split on entity boundaries, every part is
valid HTML on its own and fits Telegram's limit as Telegram counts it (UTF-16 units, urgent header
included), and no visible text is lost. Checked with generated texts and, for what Telegram
accepts, through the Bot API emulator, which parses HTML as the Bot API does (400 on bad markup)."""

from __future__ import annotations

import datetime as dt
import html
import re
from pathlib import Path

import pytest
from botapi_client import BotApiServer
from hypothesis import given
from hypothesis import strategies as st
from test_bot import new_env

from bot.app import build_application
from bot.content import Loaded, load_knowledge
from bot.dialogue import TELEGRAM_LIMIT, split_message
from bot.handlers import post_message

ROOT = Path(__file__).resolve().parent.parent
TAG = re.compile(r"<(/?)([a-z-]+)[^<>]*>")


def visible(text: str) -> str:
    """What Telegram shows, without white space (a cut may drop the white space it falls on)."""
    return "".join(html.unescape(TAG.sub("", text)).split())


def units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def balanced(text: str) -> bool:
    stack: list[str] = []
    for m in TAG.finditer(text):
        if m.group(1):
            if not stack or stack.pop() != m.group(2):
                return False
        else:
            stack.append(m.group(2))
    return not stack


words = st.text(alphabet="абвгдеёжзxyz😀&<> ", min_size=1, max_size=12).map(html.escape)


@st.composite
def markup(draw: st.DrawFn, depth: int = 0) -> str:
    pieces = []
    for _ in range(draw(st.integers(1, 40 if depth == 0 else 8))):
        kind = draw(st.sampled_from(["text", "text", "nl", "para", "b", "i", "a", "code"] if depth < 2 else ["text"]))
        if kind == "text":
            pieces.append(draw(words))
        elif kind == "nl":
            pieces.append("\n")
        elif kind == "para":
            pieces.append("\n\n")
        else:
            inner = draw(markup(depth + 1))
            open_tag = '<a href="https://help.unhcr.org/centralasia">' if kind == "a" else f"<{kind}>"
            pieces.append(f"{open_tag}{inner}</{kind}>")
    return " ".join(pieces)


@given(markup(), st.integers(200, 600))  # a part must hold the longest open tags twice over
def test_every_part_is_valid_html_within_the_limit_and_nothing_is_lost(text: str, limit: int) -> None:
    parts = split_message(text, limit)
    assert all(units(p) <= limit for p in parts)
    assert all(balanced(p) for p in parts), parts
    assert visible("".join(parts)) == visible(text)


def test_a_long_bold_paragraph_is_closed_and_reopened() -> None:
    text = "⚠️ <b>Emergency: 112</b>\n\n<b>" + "слово " * 900 + "</b> конец"
    parts = split_message(text)
    assert len(parts) == 2
    assert parts[0].endswith("</b>") and parts[1].startswith("<b>")
    assert all(units(p) <= TELEGRAM_LIMIT and balanced(p) for p in parts)


def test_emoji_count_twice() -> None:
    parts = split_message("😀" * 3000)
    assert [units(p) for p in parts] == [4096, 1904]


@pytest.mark.e2e
async def test_telegram_accepts_every_part_of_a_long_urgent_reply(botapi_server: BotApiServer, tmp_path: Path) -> None:
    """An urgent reply: the header with the emergency numbers, then an answer of about 4,000
    characters whose bold passage crosses the 4,096 mark. Before, the cut fell inside <b>…</b> and
    Telegram refused both parts (the person got nothing); now every part is accepted and together
    they show the whole text."""
    loaded: Loaded = load_knowledge(ROOT / "config.yaml", None, dt.date.today())
    header = loaded.knowledge.t("urgent_header", "ru")
    answer = "Если вам угрожает опасность, звоните 112. " * 80 + "<b>" + "Важно: " * 200 + "</b> Конец."
    text = f"{header}\n\n{answer}"
    assert units(text) > TELEGRAM_LIMIT
    env = new_env(botapi_server, tmp_path / "komek.sqlite3")
    app = build_application(loaded, env, ROOT / "config.yaml", None)
    async with botapi_server.client(env.token) as user, app:
        for part in split_message(text):
            await post_message(app.bot, 880_001, part, None)  # raises BadRequest if Telegram refuses it
        shown = [m["text"] for m in await user.bot_messages(880_001)]
    assert len(shown) >= 2
    assert "".join("".join(shown).split()) == visible(text)

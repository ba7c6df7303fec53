"""Every answer and every UI text, in every language, reads whole whether or not the UNHCR hotline
is configured (issue 13): no "Hotline:" label left hanging, no label said twice, no sentence cut
short, no placeholder left visible, no gap of blank lines."""

from __future__ import annotations

import dataclasses
import re

import pytest

from bot.config import HotlineItem
from bot.dialogue import Knowledge, entry_reply

HOTLINE = HotlineItem(
    label={"ru": "Горячая линия УВКБ ООН", "kk": "БҰҰ БЖКБ жедел желісі", "en": "UNHCR hotline"},
    value="+7 700 000 00 00",
)
HOTLINE_WORDS = re.compile(r"горяч\w* лини|жедел желі|hotline", re.I)
CUT_SHORT = re.compile(r"[;,—–-]\s*$")  # a colon may end a line: a list, a link or buttons follow


def _with_hotline(k: Knowledge, items: tuple[HotlineItem, ...]) -> Knowledge:
    contacts = dataclasses.replace(k.config.contacts, hotline=items)
    # the ranker learns from the questions, not the contacts: the model already trained on this FAQ
    ranker = k.understanding.ranker
    model = ranker.model if ranker is not None else None
    return Knowledge.build(dataclasses.replace(k.config, contacts=contacts), k.faq, model)


def _texts(k: Knowledge) -> list[tuple[str, str]]:
    out = []
    for lang in k.config.languages:
        for entry_id in k.faq.entries:
            out.append((f"{entry_id}/{lang}", entry_reply(k, entry_id, lang).text))
        for key in k.faq.ui:
            if key.startswith("_") or key in ("hotline_missing", "checked"):
                continue
            extra = {"status": "open now", "what": "1", "events": "1", "questions": "1", "feedback": "1", "text": "x"}
            out.append((f"ui:{key}/{lang}", k.t(key, lang, **extra)))
    return out


@pytest.mark.parametrize("filled", [False, True], ids=["empty hotline", "hotline set"])
def test_every_text_reads_whole(knowledge: Knowledge, filled: bool) -> None:
    k = _with_hotline(knowledge, (HOTLINE,) if filled else ())
    problems = []
    for where, text in _texts(k):
        if re.search(r"\{[a-z_]+\}", text):
            problems.append(f"{where}: placeholder left: {text!r}")
        if "\n\n\n" in text:
            problems.append(f"{where}: a gap of blank lines")
        lines = text.splitlines()
        for i, line in enumerate(lines):
            bare = re.sub(r"<[^>]+>", "", line).strip()
            last_of_paragraph = i + 1 == len(lines) or not lines[i + 1].strip()
            if bare in ("•", "-"):
                problems.append(f"{where}: an empty bullet")
            if last_of_paragraph and CUT_SHORT.search(bare):
                problems.append(f"{where}: a line cut short: {bare!r}")
            if len(HOTLINE_WORDS.findall(bare)) > 1:
                problems.append(f"{where}: the hotline named twice on one line: {bare!r}")
            if not filled and re.search(r"(горячая линия|жедел желі|hotline)\s*[:—-]?\s*$", bare, re.I):
                problems.append(f"{where}: a hotline label with nothing after it: {bare!r}")
        if not filled and _colon_before_lone_hotline(_template(k, where)):
            problems.append(f"{where}: a line ending in ':' introduces only the hotline line, which is empty")
        if filled and "+7 700 000 00 00" not in text and "{hotline_line}" in _template(k, where):
            problems.append(f"{where}: the hotline set in config.yaml is not shown")
    assert problems == []


def _colon_before_lone_hotline(template: str) -> bool:
    """ "Call:\n{hotline_line}\n\n": with no hotline, the colon introduces nothing."""
    lines = [line.strip() for line in template.splitlines()]
    for i, line in enumerate(lines):
        if line == "{hotline_line}" and i > 0 and lines[i - 1].endswith(":"):
            following = lines[i + 1] if i + 1 < len(lines) else ""
            if not following or not following.startswith(("•", "-", "{")):
                return True
    return False


def _template(k: Knowledge, where: str) -> str:
    name, _, lang = where.rpartition("/")
    if name.startswith("ui:"):
        return k.texts.get(name[3:], lang)
    return k.faq.entries[name].langs[lang].answer

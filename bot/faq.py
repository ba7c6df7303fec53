"""The FAQ: entries per language with their sources, loaded from faq/*.yaml and checked.

Loading keeps line numbers so that every problem reads `faq/asylum.yaml:12: message`. A FAQ with
errors is never returned: the caller keeps serving the last good one.
"""

from __future__ import annotations

import datetime as dt
import re
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from bot.config import URL_RE, Config
from bot.problems import ContentError, Problems, did_you_mean, nearest
from bot.taught import TAUGHT_FILE, Taught, load_taught, merge_taught
from bot.yamlio import (
    LineDict,
    LineList,
    YamlProblem,
    control_characters,
    decode_text,
    file_kind,
    parse_date,
    parse_yaml,
    read_capped,
    read_yaml,
)

ID_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
SECTION_KEYS = ("section", "title", "entries")  # the top of a section file
PLACEHOLDER_RE = re.compile(r"\{([^{}\s]*)\}")
TELEGRAM_LIMIT = 4096
TITLE_MAX = 32
ANSWER_SOFT_MAX = 900  # the style guide says about 700 before the links; warn well past it
MIN_QUESTIONS_WARN = 8
# Telegram's HTML subset (Bot API "HTML style"; <span> only as <span class="tg-spoiler">)
ALLOWED_TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre",
    "blockquote", "tg-spoiler", "span", "tg-emoji",
}  # fmt: skip
# Button data that carries an id (dialogue.py): Telegram takes at most 64 bytes, and a button whose
# data is longer is dropped without a word. Deep links (/start <id>, /start en_<id>) take 64 characters.
CALLBACK_LIMIT = 64
ENTRY_ID_FORMATS = ("faq:{}", "fb:{}:1", "fb:{}:0", "en_{}")
SECTION_ID_FORMATS = ("sec:{}",)
OFF_TOPIC_FILE = "off_topic.yaml"  # messages the FAQ does not cover, for the learned ranker to learn "not ours"
SPECIAL_FILES = {"ui.yaml", "synonyms.yaml", TAUGHT_FILE, OFF_TOPIC_FILE}
OFF_TOPIC_MAX = 600  # characters of one off-topic phrasing (a long story is fine, a whole letter is not)
ENTRY_KEYS = {"id", "sources", "link", "reviewed", "urgent", "related", "section"}
LANG_KEYS = {"checked", "title", "questions", "keywords", "answer"}


@dataclass(frozen=True)
class LangBlock:
    title: str
    questions: tuple[str, ...]
    keywords: tuple[str, ...]
    answer: str
    checked: str


@dataclass(frozen=True)
class Entry:
    id: str
    section: str
    sources: tuple[str, ...]
    link: str | None
    reviewed: dt.date
    urgent: bool
    related: tuple[str, ...]
    langs: Mapping[str, LangBlock]
    file: str
    line: int
    related_line: int = 0


@dataclass(frozen=True)
class Section:
    id: str
    titles: Mapping[str, str]
    entry_ids: tuple[str, ...]


@dataclass(frozen=True)
class FAQ:
    """One immutable version of the content: entries in file order, sections, UI texts, synonyms."""

    entries: Mapping[str, Entry]
    sections: tuple[Section, ...]
    ui: Mapping[str, Mapping[str, str]]
    synonyms: tuple[tuple[str, ...], ...] = ()
    warnings: tuple[str, ...] = field(default=())
    taught: tuple[Taught, ...] = ()  # faq/taught.yaml, already among their entries' questions
    # who checked each UI text in each language (key → language → mark; "draft" until a native reader has)
    ui_checked: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # faq/off_topic.yaml: messages the FAQ does not cover (any language), in file order; the learned
    # ranker learns "not ours" from them (bot/understanding/ranker.py), nothing answers with them
    off_topic: tuple[str, ...] = ()

    def section(self, section_id: str) -> Section | None:
        return next((s for s in self.sections if s.id == section_id), None)


# ---------------------------------------------------------------- placeholders


def placeholder_values(config: Config, lang: str, hotline_missing: str = "") -> dict[str, str]:
    """What each {placeholder} becomes in `lang` (values come from config.yaml → contacts)."""
    c = config.contacts
    office = c.office
    days = _days_text(office.hours.days, lang)
    zone = {"ru": "время Алматы", "kk": "Алматы уақыты", "en": "Almaty time"}.get(lang, office.hours.timezone)
    if c.hotline:
        hotline = "; ".join(f"{item.label.get(lang, '')}: {item.value}" for item in c.hotline)
    else:
        hotline = hotline_missing or c.help_site
    # {hotline_line}: one "• label: number" line per hotline, or nothing at all while none is set
    hotline_line = "\n".join(f"• {item.label.get(lang, '')}: {item.value}" for item in c.hotline)
    offices = "\n".join(f"• {o.city.get(lang, '')}: {o.address.get(lang, '')}" for o in c.asylum_offices)
    return {
        "help_site": c.help_site,
        "help_asylum": c.help_asylum,
        "help_stateless": c.help_stateless,
        "office": f"{office.name.get(lang, '')}, {office.address.get(lang, '')}",
        "office_phones": ", ".join(office.phones),
        "office_hours": f"{days} {office.hours.open}–{office.hours.close} ({zone})",
        "hotline": hotline,
        "hotline_line": hotline_line,
        "emergency": c.emergency["general"],
        "police": c.emergency["police"],
        "ambulance": c.emergency["ambulance"],
        "fire": c.emergency["fire"],
        "family_helpline": c.emergency["family_helpline"],
        "asylum_offices": offices,
        "igo_email": c.igo_email,
        "igo_phone": c.igo_phone,
        "legal_aid_site": c.legal_aid_site,
        "retention_days": str(config.storage.retention_days),
    }


PLACEHOLDERS = frozenset(
    {
        "help_site",
        "help_asylum",
        "help_stateless",
        "office",
        "office_phones",
        "office_hours",
        "hotline",
        "hotline_line",
        "emergency",
        "police",
        "ambulance",
        "fire",
        "family_helpline",
        "asylum_offices",
        "igo_email",
        "igo_phone",
        "legal_aid_site",
        "retention_days",
    }
)

_DAY_NAMES = {
    "ru": ("Пн", "Вт", "Ср", "Чт", "Пт", "Сб", "Вс"),
    "kk": ("Дс", "Сс", "Ср", "Бс", "Жм", "Сб", "Жс"),
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
}
_DAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _days_text(days: tuple[str, ...], lang: str) -> str:
    names = _DAY_NAMES.get(lang, _DAY_NAMES["en"])
    idx = sorted(_DAY_KEYS.index(d) for d in days)
    if not idx:
        return ""
    if idx == list(range(idx[0], idx[-1] + 1)) and len(idx) > 2:
        return f"{names[idx[0]]}–{names[idx[-1]]}"
    return ", ".join(names[i] for i in idx)


# A placeholder alone on its line: when its value is empty the whole line goes, so an unset contact
# (the hotline before launch) leaves no "Hotline:" label and no blank gap behind.
_LINE_PLACEHOLDER_RE = re.compile(r"^[ \t]*\{([^{}\s]*)\}[ \t]*(?:\n|$)", re.MULTILINE)


def fill(text: str, values: Mapping[str, str]) -> str:
    """Replace {name} placeholders; unknown ones are left visible (check reports them). A line that
    holds only a placeholder whose value is empty is removed."""
    if "}" not in text:
        return text
    text = _LINE_PLACEHOLDER_RE.sub(lambda m: m.group(0) if values.get(m.group(1), "x") else "", text)
    return PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), m.group(0)), text)


# ---------------------------------------------------------------- HTML check

_TAG_HINTS = {
    "br": "write a line break instead",
    "p": "separate paragraphs with an empty line",
    "ul": "write the items as lines starting with '•' or '1.'",
    "ol": "write the items as lines starting with '1.', '2.'",
    "li": "write the items as lines starting with '•' or '1.'",
    "div": "write a line break instead",
    "h1": "use <b> for a heading",
    "h2": "use <b> for a heading",
    "h3": "use <b> for a heading",
    "img": "a message cannot show an image: link to it with <a href>",
}
_ENTITY_RE = re.compile(r"&([A-Za-z][A-Za-z0-9]*);")
_KNOWN_ENTITIES = {"lt", "gt", "amp", "quot"}


class _TelegramHTMLChecker(HTMLParser):
    """Telegram accepts a small subset of HTML; anything else makes sendMessage fail, so every user
    asking that entry would get the error text. Each finding keeps its offset in the text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.starts = [0]
        for m in re.finditer("\n", text):
            self.starts.append(m.end())
        self.stack: list[tuple[str, int]] = []
        self.errors: list[tuple[str, int]] = []
        self.hrefs: list[tuple[str, int]] = []
        self.refused: list[str] = []  # start tags already reported: their end tags add nothing

    def _at(self) -> int:
        line, column = self.getpos()
        return self.starts[min(line, len(self.starts)) - 1] + column

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        at, named = self._at(), dict(attrs)
        if tag not in ALLOWED_TAGS:
            hint = _TAG_HINTS.get(tag, "use <b>, <i>, <u>, <s>, <a href>, <code>, <blockquote>")
            self.errors.append((f"HTML tag <{tag}> is not allowed by Telegram ({hint})", at))
            self.refused.append(tag)
            return
        if tag == "span" and named.get("class") != "tg-spoiler":
            self.errors.append(
                ('Telegram accepts <span> only as <span class="tg-spoiler"> (or write <tg-spoiler>)', at)
            )
            self.refused.append(tag)
            return
        if tag == "tg-emoji" and not (named.get("emoji-id") or "").isdigit():
            self.errors.append(('<tg-emoji> needs emoji-id="…" (the number of a custom emoji)', at))
        if tag == "a":
            href = named.get("href")
            if not href:
                self.errors.append(("<a> needs an href", at))
            else:
                self.hrefs.append((href, at))
        self.stack.append((tag, at))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.errors.append((f"<{tag}/> is not Telegram HTML: tags come in pairs, <b>…</b>", self._at()))

    def handle_endtag(self, tag: str) -> None:
        at = self._at()
        open_tags = [t for t, _ in self.stack]
        if tag not in open_tags and tag in self.refused:
            self.refused.remove(tag)
            return
        if tag not in open_tags:
            self.errors.append((f"HTML tag </{tag}> closes nothing open (tags must nest properly)", at))
            return
        if open_tags[-1] != tag:
            self.errors.append((f"HTML tag </{tag}> comes before </{open_tags[-1]}>: tags must nest properly", at))
        while self.stack and self.stack.pop()[0] != tag:
            pass

    def handle_comment(self, data: str) -> None:
        self.errors.append(("HTML comments (<!-- -->) are not allowed by Telegram: use a YAML comment (#)", self._at()))

    def handle_decl(self, decl: str) -> None:
        self.errors.append((f"<!{decl}> is not allowed by Telegram", self._at()))

    def handle_pi(self, data: str) -> None:
        self.errors.append((f"<?{data}> is not allowed by Telegram", self._at()))

    def unknown_decl(self, data: str) -> None:
        self.errors.append((f"<![{data}]> is not allowed by Telegram", self._at()))

    def close(self) -> None:
        super().close()
        for tag, at in self.stack:
            self.errors.append((f"HTML tag <{tag}> is never closed", at))


def html_issues(text: str) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(errors, hrefs) of a Telegram-HTML text, each with its offset in the text."""
    checker = _TelegramHTMLChecker(text)
    errors = [("a bare '<' must be written as &lt;", m.start()) for m in re.finditer(r"<(?![a-zA-Z/!?])", text)]
    for m in _ENTITY_RE.finditer(text):
        if m.group(1) not in _KNOWN_ENTITIES:
            errors.append(
                (
                    f"{m.group(0)} would be shown as typed: Telegram knows only &lt; &gt; &amp; &quot; and numbers "
                    "such as &#160;, so type the character itself",
                    m.start(),
                )
            )
    checker.feed(text)
    checker.close()
    return errors + checker.errors, checker.hrefs


def html_problems(text: str) -> tuple[list[str], list[str]]:
    """(errors, hrefs) of a Telegram-HTML text."""
    errors, hrefs = html_issues(text)
    return [e for e, _ in errors], [h for h, _ in hrefs]


# ---------------------------------------------------------------- loading

# Where in the file a piece of a text sits: (offset in the text, length) → line.
Locate = Callable[[int, int], int]


@dataclass
class _Ctx:
    config: Config
    today: dt.date
    p: Problems
    placeholder_sample: dict[str, dict[str, str]]
    config_ok: bool = True  # contacts usable: links filled from them can be checked
    # (normalised phrasing, entry id, language, file, index, its list) of every question, for duplicates
    phrasings: list[tuple[str, str, str, str, int, Any]] = field(default_factory=list)


def _locate(d: LineDict, key: str, raw: str, stripped_from: int = 0) -> Locate:
    """Lines of a text value of `d` that was stripped of `stripped_from` leading characters."""
    return lambda offset, length: d.value_line(key, stripped_from + offset, length) if raw else d.line_of(key)


def _locate_items(items: list[Any], line: int) -> Locate:
    """Lines of a text made of list items joined by line breaks."""
    lines = [items.line_at(i) for i in range(len(items))] if isinstance(items, LineList) else []
    starts = [0]
    for item in items:
        starts.append(starts[-1] + len(str(item)) + 1)

    def where(offset: int, length: int) -> int:
        n = sum(1 for s in starts[1:] if s <= offset)
        return lines[n] if n < len(lines) else line

    return where


def _as_str_list(ctx: _Ctx, file: str, d: LineDict, key: str, required: bool, what: str = "") -> tuple[str, ...]:
    value = d.get(key)
    if value is None:
        if required:
            ctx.p.error(file, d.line_of(key), f"'{key}' is missing")
        return ()
    if isinstance(value, str):
        folded = [(d.folded(key), value)]
        value = [value]
    elif isinstance(value, LineList):
        folded = [(value.folded(i), value[i]) for i in value.spans]
    else:
        folded = []
    if not isinstance(value, list):
        ctx.p.error(file, d.line_of(key), f"'{key}' must be a list")
        return ()
    out: list[str] = []
    for i, item in enumerate(value):
        if isinstance(item, str) and item.strip():
            out.append(item.strip())
            continue
        line = value.line_at(i) if isinstance(value, LineList) else d.line_of(key)
        if isinstance(item, int | float) and not isinstance(item, bool):
            out.append(str(item))
        elif isinstance(item, LineDict) and len(item) == 1:
            ctx.p.error(
                file,
                line,
                f"{what}'{key}' item {i + 1} holds ': ', which YAML reads as 'key: value': put it in quotes "
                f'("{next(iter(item))}: …")',
            )
        else:
            ctx.p.error(file, line, f"{what}'{key}' item {i + 1} is empty or not a text")
    for span, item in folded:
        if span is not None and isinstance(item, str):
            ctx.p.error(
                file,
                span.first + 1,
                f"{what}line {span.first + 1} is indented more than line {span.first}, so YAML joined it to the "
                f"'{key}' item there: {item.strip()!r}; give each its own '- ' line, lined up with the others",
            )
    return tuple(out)


def _check_text(
    ctx: _Ctx, file: str, where: Locate, text: str, what: str, extra: frozenset[str] = frozenset()
) -> list[tuple[str, int]]:
    """Placeholders and Telegram HTML of a text, each problem at its own line; returns its hrefs."""
    known = PLACEHOLDERS | extra
    for m in PLACEHOLDER_RE.finditer(text):
        name = m.group(1)
        if name not in known:
            close = nearest(name, known)
            advice = f"did you mean {{{close}}}?" if close else f"known: {', '.join(sorted(known))}"
            ctx.p.error(file, where(m.start(), len(m.group(0))), f"{what}: unknown placeholder {m.group(0)} ({advice})")
    stray = PLACEHOLDER_RE.sub(lambda m: " " * len(m.group(0)), text)
    brace = re.search(r"[{}]", stray)
    if brace:
        ctx.p.error(
            file,
            where(brace.start(), 1),
            f"{what}: a stray '{{' or '}}' (placeholders look like {{help_site}})",
        )
    errors, hrefs = html_issues(text)
    for err, at in errors:
        ctx.p.error(file, where(at, 1), f"{what}: {err}")
    return hrefs


def _note_questions(
    ctx: _Ctx, file: str, entry_id: str, lang: str, block: LineDict, questions: tuple[str, ...]
) -> None:
    raw = block.get("questions")
    for i, question in enumerate(questions):
        ctx.phrasings.append(
            (_phrase_key(question), entry_id, lang, file, i, raw if isinstance(raw, LineList) else block)
        )


_WORD_RE = re.compile(r"\w+")


def _phrase_key(text: str) -> str:
    """A phrasing as the matcher sees it, near enough: case, punctuation and ё/е do not matter."""
    return " ".join(_WORD_RE.findall(text.casefold().replace("ё", "е")))


def _parse_lang_block(
    ctx: _Ctx, file: str, entry_id: str, lang: str, block: Any, line: int, link: str | None
) -> LangBlock | None:
    if not isinstance(block, LineDict):
        ctx.p.error(file, line, f"entry '{entry_id}': '{lang}' must be a block with title, questions, answer")
        return None
    what = f"entry '{entry_id}' ({lang}): "
    for key in block:
        if key not in LANG_KEYS:
            hint = did_you_mean(key, LANG_KEYS)
            ctx.p.error(file, block.line_of(key), f"{what}unknown field '{key}'{hint}")
    title = block.get("title")
    if not isinstance(title, str) or not title.strip():
        ctx.p.error(file, block.line_of("title"), f"{what}'title' is missing")
        title = ""
    elif len(title) > TITLE_MAX:
        ctx.p.error(file, block.line_of("title"), f"{what}title is {len(title)} characters; a button fits {TITLE_MAX}")
    if isinstance(title, str) and (span := block.folded("title")) is not None:
        ctx.p.error(
            file,
            span.first + 1,
            f"{what}line {span.first + 1} is indented more than line {span.first}, so YAML joined it to the title: "
            f"{title.strip()!r}; keep the title on one line",
        )
    questions = _as_str_list(ctx, file, block, "questions", required=True, what=what)
    if not questions:
        ctx.p.error(file, block.line_of("questions"), f"{what}'questions' is empty")
    elif len(questions) < MIN_QUESTIONS_WARN:
        ctx.p.warn(
            file,
            block.line_of("questions"),
            f"{what}only {len(questions)} questions; at least {MIN_QUESTIONS_WARN} "
            "phrasings help the bot understand people",
        )
    _note_questions(ctx, file, entry_id, lang, block, questions)
    keywords = _as_str_list(ctx, file, block, "keywords", required=False, what=what)
    raw = block.get("answer")
    aline = block.line_of("answer")
    answer = raw if isinstance(raw, str) else ""
    if not answer.strip():
        ctx.p.error(file, aline, f"{what}'answer' is missing")
    lead = len(answer) - len(answer.lstrip())
    answer = answer.strip()
    where = _locate(block, "answer", answer, lead)
    label = f"entry '{entry_id}' ({lang}) answer"
    hrefs = _check_text(ctx, file, where, answer, label)
    values = ctx.placeholder_sample.get(lang, {})
    for href, at in hrefs:
        if not URL_RE.match(fill(href, values)) and (ctx.config_ok or "{" not in href):
            ctx.p.error(file, where(at, 1), f"{label}: malformed link {href!r}")
    filled = fill(answer, values)
    rendered_len = len(filled) + (len(fill(link, values)) + 40 if link else 0)
    if rendered_len > TELEGRAM_LIMIT:
        ctx.p.error(
            file,
            aline,
            f"{what}the answer is {rendered_len} characters with its link; Telegram's limit is {TELEGRAM_LIMIT}",
        )
    elif len(_visible(filled)) > ANSWER_SOFT_MAX:
        ctx.p.warn(file, aline, f"{what}the answer is {len(_visible(filled))} characters; aim for about 700")
    checked = block.get("checked", "draft")
    if not isinstance(checked, str) or not checked.strip():
        checked = "draft"
    return LangBlock(
        title=title.strip(),
        questions=questions,
        keywords=keywords,
        answer=answer,
        checked=checked.strip(),
    )


def _visible(html_text: str) -> str:
    return re.sub(r"<[^>]+>", "", html_text)


def _id_too_long(kind: str, value: str, formats: tuple[str, ...]) -> str | None:
    """Why an id cannot ride in Telegram's 64 bytes of button data, or None when it can."""
    worst = max(formats, key=lambda f: len(f.format(value).encode()))
    size = len(worst.format(value).encode())
    if size <= CALLBACK_LIMIT:
        return None
    room = CALLBACK_LIMIT - len(worst.format("").encode())
    return (
        f"{kind} id '{value}' is {len(value)} characters: its buttons carry '{worst.format('<id>')}', and Telegram "
        f"takes at most {CALLBACK_LIMIT} bytes there (the button would silently vanish): keep it to {room}"
    )


def _parse_entry(ctx: _Ctx, file: str, raw: Any, line: int, section_id: str) -> Entry | None:
    if not isinstance(raw, LineDict):
        ctx.p.error(file, line, "each entry must be a block starting with 'id:'")
        return None
    entry_id = raw.get("id")
    if not isinstance(entry_id, str) or not ID_RE.match(entry_id):
        ctx.p.error(file, raw.line_of("id"), f"entry id {entry_id!r} must be kebab-case, e.g. asylum-apply")
        return None
    too_long = _id_too_long("entry", entry_id, ENTRY_ID_FORMATS)
    if too_long:
        ctx.p.error(file, raw.line_of("id"), too_long)
    langs_cfg = ctx.config.languages
    for key in raw:
        if key not in ENTRY_KEYS and key not in langs_cfg:
            hint = did_you_mean(key, ENTRY_KEYS | set(langs_cfg))
            ctx.p.error(file, raw.line_of(key), f"entry '{entry_id}': unknown field '{key}'{hint}")
    if "section" in raw and raw["section"] != section_id:
        ctx.p.error(
            file,
            raw.line_of("section"),
            f"entry '{entry_id}': section {raw['section']!r} differs from the file's",
        )
    sources = _as_str_list(ctx, file, raw, "sources", required=True, what=f"entry '{entry_id}': ")
    if not sources:
        ctx.p.error(file, raw.line_of("sources"), f"entry '{entry_id}': at least one source URL is needed")
    for i, src in enumerate(sources):
        src_list = raw.get("sources")
        sline = src_list.line_at(i) if isinstance(src_list, LineList) else raw.line_of("sources")
        if not URL_RE.match(src):
            ctx.p.error(file, sline, f"entry '{entry_id}': source is not a valid web address: {src!r}")
    link = raw.get("link")
    if link is not None:
        if not isinstance(link, str):
            hint = ' (a placeholder needs quotes: link: "{help_site}")' if isinstance(link, LineDict) else ""
            ctx.p.error(file, raw.line_of("link"), f"entry '{entry_id}': 'link' must be a web address{hint}")
            link = None
        else:
            _check_text(ctx, file, _locate(raw, "link", link), link, f"entry '{entry_id}' link")
            real = fill(link, ctx.placeholder_sample.get(ctx.config.default_language, {}))
            if not URL_RE.match(real) and (ctx.config_ok or "{" not in link):
                ctx.p.error(file, raw.line_of("link"), f"entry '{entry_id}': 'link' is not a valid web address")
    reviewed = parse_date(raw.get("reviewed"))
    if reviewed is None:
        ctx.p.error(file, raw.line_of("reviewed"), f"entry '{entry_id}': 'reviewed' must be a date like 2026-11-24")
        reviewed = dt.date.min
    elif reviewed > ctx.today:
        ctx.p.error(file, raw.line_of("reviewed"), f"entry '{entry_id}': 'reviewed' date {reviewed} is in the future")
    urgent = raw.get("urgent", False)
    if not isinstance(urgent, bool):
        ctx.p.error(file, raw.line_of("urgent"), f"entry '{entry_id}': 'urgent' must be true or false")
        urgent = False
    related = _as_str_list(ctx, file, raw, "related", required=False, what=f"entry '{entry_id}': ")
    langs: dict[str, LangBlock] = {}
    for lang in langs_cfg:
        if lang not in raw:
            ctx.p.error(file, raw.line, f"entry '{entry_id}': the '{lang}' language block is missing")
            continue
        block = _parse_lang_block(ctx, file, entry_id, lang, raw[lang], raw.line_of(lang), link)
        if block is not None:
            langs[lang] = block
    return Entry(
        id=entry_id,
        section=section_id,
        sources=sources,
        link=link,
        reviewed=reviewed,
        urgent=urgent,
        related=related,
        langs=langs,
        file=file,
        line=raw.line,
        related_line=raw.line_of("related"),
    )


# ---------------------------------------------------------------- ui.yaml

UI_CHECKED = "checked"  # ui.yaml's sign-off marks: a top-level block per language, or one in a text


@dataclass(frozen=True)
class _UI:
    texts: dict[str, dict[str, str]]
    checked: dict[str, dict[str, str]]  # key → language → mark
    loaded: bool  # False when the file could not be read at all (then nothing else is reported)
    key_lines: dict[str, int]
    checked_line: int


def _mark(ctx: _Ctx, file: str, d: LineDict, key: str, what: str) -> dict[str, str] | str | None:
    """A `checked:` mark: a text for every language, or a text per language; None when absent."""
    value = d.get(key)
    if value is None:
        return None
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, LineDict):
        marks: dict[str, str] = {}
        for lang, mark in value.items():
            if lang not in ctx.config.languages:
                hint = did_you_mean(lang, ctx.config.languages)
                ctx.p.error(file, value.line_of(lang), f"{what}: '{lang}' is not one of the languages{hint}")
            elif not isinstance(mark, str) or not mark.strip():
                ctx.p.error(file, value.line_of(lang), f"{what}: '{lang}' needs who checked it and when, or draft")
            else:
                marks[lang] = mark.strip()
        return marks
    ctx.p.error(
        file,
        d.line_of(key),
        f"{what} must be who checked it and when (e.g. 'Aigerim, 2026-11-20') or draft, or one such text per "
        "language (ru: …, kk: …)",
    )
    return None


def _load_ui(ctx: _Ctx, path: Path, shown: str) -> _UI:
    try:
        data = read_yaml(path, shown)
    except YamlProblem as exc:
        ctx.p.error(exc.path, exc.line, exc.message)
        return _UI({}, {}, False, {}, 1)
    _control_problems(ctx, shown, data)
    if not isinstance(data, LineDict):
        ctx.p.error(shown, 1, "ui.yaml must map text keys to a text per language")
        return _UI({}, {}, False, {}, 1)
    languages = ctx.config.languages
    top = _mark(ctx, shown, data, UI_CHECKED, "'checked' (the sign-off of the UI texts)")
    if isinstance(top, str):
        top = {lang: top for lang in languages}
    ui: dict[str, dict[str, str]] = {}
    checked: dict[str, dict[str, str]] = {}
    for key, value in data.items():
        if key == UI_CHECKED:
            continue
        line = data.line_of(key)
        if not isinstance(value, LineDict):
            ctx.p.error(shown, line, f"UI text '{key}' needs a text per language")
            continue
        own = _mark(ctx, shown, value, UI_CHECKED, f"UI text '{key}': 'checked'")
        if isinstance(own, str):
            own = {lang: own for lang in languages}
        marks = {lang: (own or {}).get(lang) or (top or {}).get(lang) or "draft" for lang in languages}
        for lang in value:
            if lang != UI_CHECKED and lang not in languages:
                hint = did_you_mean(lang, languages)
                ctx.p.error(shown, value.line_of(lang), f"UI text '{key}': '{lang}' is not one of the languages{hint}")
        texts: dict[str, str] = {}
        for lang in languages:
            text = value.get(lang)
            where = _locate(value, lang, text if isinstance(text, str) else "")
            if isinstance(text, list):
                where = _locate_items(text, value.line_of(lang))
                text = "\n".join(str(x) for x in text)
            if not isinstance(text, str) or not text.strip():
                ctx.p.error(shown, value.line_of(lang), f"UI text '{key}' has no '{lang}' version")
                continue
            extra = UI_EXTRA_PLACEHOLDERS.get(str(key), frozenset())
            _check_text(ctx, shown, where, text, f"UI text '{key}' ({lang})", extra)
            texts[lang] = text.strip()
        ui[str(key)] = texts
        checked[str(key)] = marks
    checked_line = data.line_of(UI_CHECKED) if UI_CHECKED in data else 1
    return _UI(ui, checked, True, {k: data.line_of(k) for k in data}, checked_line)


def _ui_draft_warnings(p: Problems, shown: str, ui: _UI, languages: tuple[str, ...]) -> None:
    """UI texts no native reader has checked, per language, in one warning like the answers' drafts."""
    parts = []
    for lang in languages:
        drafts = [key for key, marks in ui.checked.items() if is_draft_mark(marks.get(lang, "draft"))]
        if drafts:
            which = f"all {len(drafts)}" if len(drafts) == len(ui.checked) else ", ".join(drafts)
            parts.append(f"{lang}: {which}")
    if parts:
        p.warn(
            shown,
            ui.checked_line,
            f"UI texts not yet checked by a native reader (checked: draft): {'; '.join(parts)}",
        )


def _load_synonyms(ctx: _Ctx, path: Path, shown: str) -> tuple[tuple[str, ...], ...]:
    try:
        data = read_yaml(path, shown)
    except YamlProblem as exc:
        ctx.p.error(exc.path, exc.line, exc.message)
        return ()
    _control_problems(ctx, shown, data)
    if isinstance(data, LineDict):
        for key in data:
            if key != "groups":
                ctx.p.error(shown, data.line_of(key), f"unknown field '{key}'{did_you_mean(key, ['groups'])}")
    groups = data.get("groups") if isinstance(data, LineDict) else None
    if not isinstance(groups, list):
        ctx.p.error(shown, 1, "synonyms.yaml needs 'groups:', a list of word lists")
        return ()
    out: list[tuple[str, ...]] = []
    for i, group in enumerate(groups):
        line = groups.line_at(i) if isinstance(groups, LineList) else 1
        if not isinstance(group, list) or len(group) < 2 or not all(isinstance(w, str) and w.strip() for w in group):
            ctx.p.error(shown, line, "each synonym group must list at least two words")
            continue
        out.append(tuple(w.strip() for w in group))
    return tuple(out)


def _load_off_topic(ctx: _Ctx, path: Path, shown: str) -> tuple[tuple[str, str, int], ...]:
    """faq/off_topic.yaml: subject → list of phrasings, as (text, file, line) in file order."""
    try:
        data = read_yaml(path, shown)
    except YamlProblem as exc:
        ctx.p.error(exc.path, exc.line, exc.message)
        return ()
    _control_problems(ctx, shown, data)
    if data is None:
        return ()
    if not isinstance(data, LineDict):
        ctx.p.error(shown, 1, f"{OFF_TOPIC_FILE} lists phrasings under subjects: 'weather:' then '- ...' lines")
        return ()
    out: list[tuple[str, str, int]] = []
    seen: dict[str, int] = {}
    for subject, items in data.items():
        line = data.line_of(subject)
        if not isinstance(items, LineList) or not items:
            ctx.p.error(shown, line, f"subject '{subject}' must be a list of phrasings, one per '- ' line")
            continue
        for i, text in enumerate(items):
            at = items.line_at(i)
            if not isinstance(text, str) or not text.strip():
                hint = ": put it in quotes" if isinstance(text, int | float) else ""
                ctx.p.error(shown, at, f"subject '{subject}': each phrasing must be a text{hint}")
                continue
            text = " ".join(text.split())
            if len(text) > OFF_TOPIC_MAX:
                ctx.p.error(shown, at, f"the phrasing is longer than {OFF_TOPIC_MAX} characters: shorten it")
                continue
            key = _phrase_key(text)
            if key in seen:
                ctx.p.warn(shown, at, f"the same phrasing is already on line {seen[key]}")
                continue
            seen[key] = at
            out.append((text, shown, at))
    return tuple(out)


def _off_topic_clashes(
    p: Problems,
    phrasings: Iterable[tuple[str, str, str, str, int, Any]],
    off_topic: Iterable[tuple[str, str, int]],
) -> None:
    """An off-topic phrasing that is also an entry's question would teach the bot both at once."""
    questions = {key: (entry_id, lang) for key, entry_id, lang, *_ in phrasings if key}
    for text, file, line in off_topic:
        clash = questions.get(_phrase_key(text))
        if clash is not None:
            p.error(
                file,
                line,
                f"this off-topic phrasing is also a question of entry '{clash[0]}' ({clash[1]}): "
                "keep it in one place (delete it here if the entry answers it)",
            )


def _control_problems(ctx: _Ctx, file: str, data: Any) -> None:
    for line, where, name in control_characters(data):
        ctx.p.error(
            file,
            line,
            f"{where} holds an invisible control character ({name}), which Telegram refuses: delete it "
            '(in "…" quotes, escapes such as \\0 or \\x1b write one)',
        )


# Values the bot fills in itself, known only to these UI texts.
UI_EXTRA_PLACEHOLDERS = {
    "contacts_card": frozenset({"status"}),
    "forget_done": frozenset({"what"}),
    "forget_what": frozenset({"events", "questions", "feedback"}),
    "operator_reply": frozenset({"text"}),
}

REQUIRED_UI = (
    "greeting",
    "choose_language",
    "language_set",
    "menu_title",
    "menu_button",
    "back_button",
    "contacts_button",
    "helpful",
    "feedback_thanks",
    "did_you_mean",
    "fallback",
    "empty_message",
    "smalltalk_hello",
    "smalltalk_thanks",
    "smalltalk_bye",
    "urgent_header",
    "contacts_card",
    "open_now",
    "closed_now",
    "hotline_missing",
    "more_link",
    "help_site_button",
    "non_text",
    "voice_extra",
    "error_reply",
    "forget_confirm",
    "forget_yes",
    "forget_no",
    "forget_done",
    "forget_what",
    "forget_cancelled",
    "help",
    "entry_gone",
    "slow_down",
    "group_hint",
    "ask_person_button",
    "ask_consent",
    "ask_yes",
    "ask_no",
    "ask_write_now",
    "ask_sent",
    "ask_sent_closed",
    "ask_unavailable",
    "operator_reply",
    "subscribed",
    "unsubscribed",
)


def _required_ui(p: Problems, shown: str, ui: _UI) -> None:
    """Every text the bot uses must be there; a misspelt key is named at its own line."""
    unknown = [k for k in ui.texts if k not in REQUIRED_UI and k not in UI_EXTRA_PLACEHOLDERS]
    for key in REQUIRED_UI:
        if key in ui.texts:
            continue
        typo = nearest(key, unknown)
        if typo is not None:
            p.error(
                shown, ui.key_lines.get(typo, 1), f"UI text '{typo}' is not one the bot uses (did you mean '{key}'?)"
            )
        else:
            p.error(shown, 1, f"UI text '{key}' is missing")


# ---------------------------------------------------------------- the whole folder

_ID_LINE_RE = re.compile(r"^\s*(?:-\s+)?id:\s*[\"']?([a-z0-9]+(?:-[a-z0-9]+)*)[\"']?\s*(?:#.*)?$", re.MULTILINE)


def _section_file(p: Problems, path: Path, name: str) -> tuple[Any, set[str] | None]:
    """(parsed data or None, ids in a file that failed to load). The ids are read line by line from
    the text so that other files' `related:` to them raise no false alarm; None when unreadable."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        p.error(name, 1, f"cannot read the file: {exc.strerror}")
        return None, None
    if not stat.S_ISREG(mode):
        p.warn(name, 1, f"skipped: this is {file_kind(mode)}, not a file (only regular *.yaml files are read)")
        return None, set()
    try:
        raw = read_capped(path, name)
    except YamlProblem as exc:
        p.error(exc.path, exc.line, exc.message)
        return None, None
    try:
        text = decode_text(raw, name)
    except YamlProblem as exc:
        p.error(exc.path, exc.line, exc.message)
        text = raw.decode("utf-8", errors="replace")
    else:
        try:
            return parse_yaml(text, name), set()
        except YamlProblem as exc:
            p.error(exc.path, exc.line, exc.message)
    return None, set(_ID_LINE_RE.findall(text))


def load_faq(faq_dir: Path, config: Config, today: dt.date, problems: Problems | None = None) -> FAQ:
    """Load and check every file in faq_dir. Raises ContentError listing every error found."""
    p = problems if problems is not None else Problems()
    base = faq_dir
    sample = {lang: placeholder_values(config, lang, "(hotline)") for lang in config.languages}
    ctx = _Ctx(config=config, today=today, p=p, placeholder_sample=sample, config_ok=not p.errors)

    def shown(path: Path) -> str:
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)

    if not base.is_dir():
        p.error(str(base), 1, "the FAQ folder does not exist")
        raise ContentError(p.errors)

    ui_path = base / "ui.yaml"
    ui = _UI({}, {}, False, {}, 1)
    if ui_path.exists() or ui_path.is_symlink():
        ui = _load_ui(ctx, ui_path, shown(ui_path))
        if ui.loaded:  # a file that failed to load is one problem, not one per missing text
            _required_ui(p, shown(ui_path), ui)
            _ui_draft_warnings(p, shown(ui_path), ui, config.languages)
    else:
        p.error(shown(ui_path), 1, "ui.yaml (the bot's own texts) is missing")
    syn_path = base / "synonyms.yaml"
    synonyms = _load_synonyms(ctx, syn_path, shown(syn_path)) if syn_path.exists() or syn_path.is_symlink() else ()
    off_path = base / OFF_TOPIC_FILE
    off_topic = _load_off_topic(ctx, off_path, shown(off_path)) if off_path.exists() or off_path.is_symlink() else ()

    entries: dict[str, Entry] = {}
    sections: list[Section] = []
    first_seen: dict[str, str] = {}
    unloaded: set[str] = set()  # ids in files that failed to load
    blind = False  # a file failed that could not even be read for its ids
    files = sorted(f for f in base.glob("*.yaml") if f.name not in SPECIAL_FILES and not f.name.startswith("_"))
    if not files:
        p.error(str(base), 1, "no FAQ files (*.yaml) found")
    for path in files:
        name = shown(path)
        data, found = _section_file(p, path, name)
        if data is None:
            blind = blind or found is None
            unloaded |= found or set()
            continue
        _control_problems(ctx, name, data)
        if not isinstance(data, LineDict):
            p.error(name, 1, "an FAQ file must start with 'section:', 'title:' and 'entries:'")
            continue
        for key in data:
            if key not in SECTION_KEYS:  # a misspelt key would otherwise be ignored without a word
                known = ", ".join(SECTION_KEYS)
                hint = did_you_mean(key, SECTION_KEYS)
                p.error(name, data.line_of(key), f"unknown field '{key}' at the top of the file{hint} (known: {known})")
        section_id = data.get("section")
        if not isinstance(section_id, str) or not ID_RE.match(section_id):
            p.error(name, data.line_of("section"), "'section' must be a kebab-case id, e.g. asylum")
            section_id = path.stem
        too_long = _id_too_long("section", section_id, SECTION_ID_FORMATS)
        if too_long:
            p.error(name, data.line_of("section"), too_long)
        if any(s.id == section_id for s in sections):
            p.error(name, data.line_of("section"), f"section '{section_id}' is already used by another file")
        titles: dict[str, str] = {}
        raw_titles = data.get("title")
        if isinstance(raw_titles, LineDict):
            for lang in raw_titles:
                if lang not in config.languages:
                    hint = did_you_mean(lang, config.languages)
                    p.error(
                        name, raw_titles.line_of(lang), f"the section title: '{lang}' is not one of the languages{hint}"
                    )
        for lang in config.languages:
            t = raw_titles.get(lang) if isinstance(raw_titles, LineDict) else None
            if not isinstance(t, str) or not t.strip():
                p.error(name, data.line_of("title"), f"the section title has no '{lang}' text")
                t = section_id
            elif len(t) > TITLE_MAX:
                p.error(name, data.line_of("title"), f"the section title ({lang}) is longer than {TITLE_MAX}")
            titles[lang] = t.strip()
        raw_entries = data.get("entries")
        if not isinstance(raw_entries, LineList) or not raw_entries:
            p.error(name, data.line_of("entries"), "'entries' must be a non-empty list")
            continue
        ids: list[str] = []
        for i, raw in enumerate(raw_entries):
            entry = _parse_entry(ctx, name, raw, raw_entries.line_at(i), section_id)
            if entry is None:
                if isinstance(raw, LineDict) and isinstance(raw.get("id"), str):
                    unloaded.add(raw["id"])  # reported already: no follow-on "does not exist"
                continue
            if entry.id in entries:
                p.error(name, entry.line, f"duplicate id '{entry.id}' (first defined at {first_seen[entry.id]})")
                continue
            first_seen[entry.id] = f"{name}:{entry.line}"
            entries[entry.id] = entry
            ids.append(entry.id)
        sections.append(Section(id=section_id, titles=titles, entry_ids=tuple(ids)))

    taught = _load_taught(base, shown(base / TAUGHT_FILE), entries, config, today, p, len(sections) == len(files))
    for entry in entries.values():
        for rel in entry.related:
            if rel not in entries and rel not in unloaded and not blind:
                hint = did_you_mean(rel, entries)
                p.error(entry.file, entry.related_line, f"entry '{entry.id}': related id '{rel}' does not exist{hint}")
            elif rel == entry.id:
                p.error(entry.file, entry.related_line, f"entry '{entry.id}' lists itself as related")
    _duplicate_phrasings(p, ctx.phrasings)
    _off_topic_clashes(p, ctx.phrasings, off_topic)
    _draft_warnings(p, entries.values())
    if p.errors:
        raise ContentError(p.errors)
    return FAQ(
        entries=entries,
        sections=tuple(sections),
        ui=ui.texts,
        synonyms=synonyms,
        warnings=tuple(str(w) for w in p.warnings),
        taught=taught,
        ui_checked=ui.checked,
        off_topic=tuple(text for text, _, _ in off_topic),
    )


def _load_taught(
    base: Path, shown: str, entries: dict[str, Entry], config: Config, today: dt.date, p: Problems, whole: bool
) -> tuple[Taught, ...]:
    """faq/taught.yaml, checked, its phrasings added to their entries' questions. When a section file
    could not be read (`whole` false), its entries' taught phrasings are skipped without an error of
    their own: the file's error says it all."""
    path = base / TAUGHT_FILE
    if not path.exists():
        return ()
    mine = Problems()
    taught = load_taught(path, shown, entries, config.languages, today, mine)
    for problem in mine.items:
        if not whole and "does not exist" in problem.message:
            continue
        p.items.append(problem)
    merge_taught(entries, taught)
    return taught


def _duplicate_phrasings(p: Problems, phrasings: Iterable[tuple[str, str, str, str, int, Any]]) -> None:
    """One phrasing, one entry: the same question in two entries makes both fit it perfectly, and
    the bot answers "did you mean" instead of either. Within one entry it is only a wasted line."""

    def line(where: Any, index: int) -> int:
        return int(where.line_at(index)) if isinstance(where, LineList) else int(where.line_of("questions"))

    first: dict[str, tuple[str, str, str, int, Any]] = {}
    for key, entry_id, lang, file, index, where in phrasings:
        if not key:
            continue
        seen = first.get(key)
        if seen is None:
            first[key] = (entry_id, lang, file, index, where)
        elif seen[0] != entry_id:
            p.error(
                file,
                line(where, index),
                f"entry '{entry_id}' ({lang}): the question is also in entry '{seen[0]}' "
                f"({seen[2]}:{line(seen[4], seen[3])}); the bot cannot tell two entries apart by it and would "
                "answer 'did you mean': keep it in one",
            )
        elif seen[1] == lang:
            p.warn(
                file,
                line(where, index),
                f"entry '{entry_id}' ({lang}): the same question is already on line {line(seen[4], seen[3])}",
            )


def _draft_warnings(p: Problems, entries: Any) -> None:
    per_file: dict[str, list[str]] = {}
    for entry in entries:
        for lang, block in entry.langs.items():
            if is_draft(block):
                per_file.setdefault(entry.file, []).append(f"{entry.id}/{lang}")
    for file, items in sorted(per_file.items()):
        p.warn(
            file,
            1,
            f"{len(items)} language blocks are drafts not yet checked by a native reader "
            f"(checked: draft): {', '.join(items)}",
        )


def is_draft_mark(mark: str) -> bool:
    """A `checked:` mark that says no native reader has checked the text yet."""
    return mark.strip().lower() in ("", "draft")


def is_draft(block: LangBlock) -> bool:
    """A language block no native reader has checked yet (`checked: draft`, or no `checked`)."""
    return is_draft_mark(block.checked)


def ui_drafts(faq: FAQ, lang: str) -> list[str]:
    """UI text keys whose `lang` version no native reader has checked yet (check and preview share this)."""
    return [key for key, marks in faq.ui_checked.items() if is_draft_mark(marks.get(lang, "draft"))]


def stale_entries(faq: FAQ, today: dt.date, months: int) -> list[Entry]:
    """Entries whose facts were last reviewed more than `months` ago (check and preview share this)."""
    limit = _months_before(today, months)
    return [entry for entry in faq.entries.values() if entry.reviewed < limit]


def stale_warnings(faq: FAQ, today: dt.date, months: int, p: Problems) -> None:
    """Entries whose facts were last reviewed more than `months` ago."""
    for entry in stale_entries(faq, today, months):
        p.warn(
            entry.file,
            entry.line,
            f"entry '{entry.id}' was last reviewed on {entry.reviewed}, more than {months} months ago",
        )


def _months_before(day: dt.date, months: int) -> dt.date:
    y, m = divmod(day.year * 12 + (day.month - 1) - months, 12)
    return dt.date(y, m + 1, min(day.day, 28))

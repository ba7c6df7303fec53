"""The FAQ: entries per language with their sources, loaded from faq/*.yaml and checked.

Loading keeps line numbers so that every problem reads `faq/asylum.yaml:12: message`. A FAQ with
errors is never returned: the caller keeps serving the last good one.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from bot.config import URL_RE, Config
from bot.problems import ContentError, Problems
from bot.taught import TAUGHT_FILE, Taught, load_taught, merge_taught
from bot.yamlio import LineDict, LineList, YamlProblem, read_yaml

ID_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
SECTION_KEYS = ("section", "title", "entries")  # the top of a section file
PLACEHOLDER_RE = re.compile(r"\{([^{}\s]*)\}")
TELEGRAM_LIMIT = 4096
TITLE_MAX = 32
ANSWER_SOFT_MAX = 900  # the style guide says about 700 before the links; warn well past it
MIN_QUESTIONS_WARN = 8
ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre", "tg-spoiler"}
SPECIAL_FILES = {"ui.yaml", "synonyms.yaml", TAUGHT_FILE}
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


class _TelegramHTMLChecker(HTMLParser):
    """Telegram accepts a small subset of HTML; anything else makes sendMessage fail."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS and tag != "span":
            self.errors.append(f"HTML tag <{tag}> is not allowed by Telegram (use <b>, <i>, <u>, <a href>)")
            return
        if tag == "a":
            href = dict(attrs).get("href")
            if not href:
                self.errors.append("<a> needs an href")
            else:
                self.hrefs.append(href)
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag not in ALLOWED_TAGS and tag != "span":
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"HTML tag </{tag}> closes nothing open (tags must nest properly)")
            return
        self.stack.pop()

    def close(self) -> None:
        super().close()
        if self.stack:
            self.errors.append(f"HTML tag <{self.stack[-1]}> is never closed")


def html_problems(text: str) -> tuple[list[str], list[str]]:
    """(errors, hrefs) of a Telegram-HTML text."""
    checker = _TelegramHTMLChecker()
    if re.search(r"<(?![a-zA-Z/])", text):
        checker.errors.append("a bare '<' must be written as &lt;")
    checker.feed(text)
    checker.close()
    return checker.errors, checker.hrefs


# ---------------------------------------------------------------- loading


@dataclass
class _Ctx:
    config: Config
    today: dt.date
    p: Problems
    placeholder_sample: dict[str, dict[str, str]]


def _as_str_list(ctx: _Ctx, file: str, d: LineDict, key: str, required: bool) -> tuple[str, ...]:
    value = d.get(key)
    if value is None:
        if required:
            ctx.p.error(file, d.line_of(key), f"'{key}' is missing")
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        ctx.p.error(file, d.line_of(key), f"'{key}' must be a list")
        return ()
    out: list[str] = []
    for i, item in enumerate(value):
        line = value.line_at(i) if isinstance(value, LineList) else d.line_of(key)
        if isinstance(item, int | float) and not isinstance(item, bool):
            item = str(item)
        if not isinstance(item, str) or not item.strip():
            ctx.p.error(file, line, f"'{key}' item {i + 1} is empty or not a text")
            continue
        out.append(item.strip())
    return tuple(out)


def _check_text_placeholders(
    ctx: _Ctx, file: str, line: int, text: str, what: str, extra: frozenset[str] = frozenset()
) -> None:
    for m in PLACEHOLDER_RE.finditer(text):
        if m.group(1) not in PLACEHOLDERS and m.group(1) not in extra:
            ctx.p.error(
                file,
                line,
                f"{what}: unknown placeholder {m.group(0)} (known: {', '.join(sorted(PLACEHOLDERS))})",
            )
    stray = PLACEHOLDER_RE.sub("", text)
    if "{" in stray or "}" in stray:
        ctx.p.error(file, line, f"{what}: a stray '{{' or '}}' (placeholders look like {{help_site}})")


def _parse_lang_block(
    ctx: _Ctx, file: str, entry_id: str, lang: str, block: Any, line: int, link: str | None
) -> LangBlock | None:
    if not isinstance(block, LineDict):
        ctx.p.error(file, line, f"entry '{entry_id}': '{lang}' must be a block with title, questions, answer")
        return None
    for key in block:
        if key not in LANG_KEYS:
            ctx.p.error(file, block.line_of(key), f"entry '{entry_id}' ({lang}): unknown field '{key}'")
    title = block.get("title")
    if not isinstance(title, str) or not title.strip():
        ctx.p.error(file, block.line_of("title"), f"entry '{entry_id}' ({lang}): 'title' is missing")
        title = ""
    elif len(title) > TITLE_MAX:
        ctx.p.error(
            file,
            block.line_of("title"),
            f"entry '{entry_id}' ({lang}): title is {len(title)} characters; a button fits {TITLE_MAX}",
        )
    questions = _as_str_list(ctx, file, block, "questions", required=True)
    if not questions:
        ctx.p.error(file, block.line_of("questions"), f"entry '{entry_id}' ({lang}): 'questions' is empty")
    elif len(questions) < MIN_QUESTIONS_WARN:
        ctx.p.warn(
            file,
            block.line_of("questions"),
            f"entry '{entry_id}' ({lang}): only {len(questions)} questions; at least {MIN_QUESTIONS_WARN} "
            "phrasings help the bot understand people",
        )
    keywords = _as_str_list(ctx, file, block, "keywords", required=False)
    answer = block.get("answer")
    aline = block.line_of("answer")
    if not isinstance(answer, str) or not answer.strip():
        ctx.p.error(file, aline, f"entry '{entry_id}' ({lang}): 'answer' is missing")
        answer = ""
    answer = answer.strip()
    _check_text_placeholders(ctx, file, aline, answer, f"entry '{entry_id}' ({lang}) answer")
    errors, hrefs = html_problems(answer)
    for err in errors:
        ctx.p.error(file, aline, f"entry '{entry_id}' ({lang}) answer: {err}")
    values = ctx.placeholder_sample.get(lang, {})
    for href in hrefs:
        real = fill(href, values)
        if not URL_RE.match(real):
            ctx.p.error(file, aline, f"entry '{entry_id}' ({lang}) answer: malformed link {href!r}")
    filled = fill(answer, values)
    rendered_len = len(filled) + (len(fill(link, values)) + 40 if link else 0)
    if rendered_len > TELEGRAM_LIMIT:
        ctx.p.error(
            file,
            aline,
            f"entry '{entry_id}' ({lang}): the answer is {rendered_len} characters with its link; "
            f"Telegram's limit is {TELEGRAM_LIMIT}",
        )
    elif len(_visible(filled)) > ANSWER_SOFT_MAX:
        ctx.p.warn(
            file,
            aline,
            f"entry '{entry_id}' ({lang}): the answer is {len(_visible(filled))} characters; aim for about 700",
        )
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


def _parse_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def _parse_entry(ctx: _Ctx, file: str, raw: Any, line: int, section_id: str) -> Entry | None:
    if not isinstance(raw, LineDict):
        ctx.p.error(file, line, "each entry must be a block starting with 'id:'")
        return None
    entry_id = raw.get("id")
    if not isinstance(entry_id, str) or not ID_RE.match(entry_id):
        ctx.p.error(file, raw.line_of("id"), f"entry id {entry_id!r} must be kebab-case, e.g. asylum-apply")
        return None
    langs_cfg = ctx.config.languages
    for key in raw:
        if key not in ENTRY_KEYS and key not in langs_cfg:
            ctx.p.error(file, raw.line_of(key), f"entry '{entry_id}': unknown field '{key}'")
    if "section" in raw and raw["section"] != section_id:
        ctx.p.error(
            file,
            raw.line_of("section"),
            f"entry '{entry_id}': section {raw['section']!r} differs from the file's",
        )
    sources = _as_str_list(ctx, file, raw, "sources", required=True)
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
            ctx.p.error(file, raw.line_of("link"), f"entry '{entry_id}': 'link' must be a web address")
            link = None
        else:
            _check_text_placeholders(ctx, file, raw.line_of("link"), link, f"entry '{entry_id}' link")
            real = fill(link, ctx.placeholder_sample.get(ctx.config.default_language, {}))
            if not URL_RE.match(real):
                ctx.p.error(file, raw.line_of("link"), f"entry '{entry_id}': 'link' is not a valid web address")
    reviewed = _parse_date(raw.get("reviewed"))
    if reviewed is None:
        ctx.p.error(file, raw.line_of("reviewed"), f"entry '{entry_id}': 'reviewed' must be a date like 2026-11-24")
        reviewed = dt.date.min
    elif reviewed > ctx.today:
        ctx.p.error(file, raw.line_of("reviewed"), f"entry '{entry_id}': 'reviewed' date {reviewed} is in the future")
    urgent = raw.get("urgent", False)
    if not isinstance(urgent, bool):
        ctx.p.error(file, raw.line_of("urgent"), f"entry '{entry_id}': 'urgent' must be true or false")
        urgent = False
    related = _as_str_list(ctx, file, raw, "related", required=False)
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


def _load_ui(ctx: _Ctx, path: Path, shown: str) -> dict[str, dict[str, str]]:
    try:
        data = read_yaml(path, shown)
    except YamlProblem as exc:
        ctx.p.error(exc.path, exc.line, exc.message)
        return {}
    if not isinstance(data, LineDict):
        ctx.p.error(shown, 1, "ui.yaml must map text keys to a text per language")
        return {}
    ui: dict[str, dict[str, str]] = {}
    for key, value in data.items():
        line = data.line_of(key)
        if not isinstance(value, LineDict):
            ctx.p.error(shown, line, f"UI text '{key}' needs a text per language")
            continue
        texts: dict[str, str] = {}
        for lang in ctx.config.languages:
            text = value.get(lang)
            if isinstance(text, list):
                text = "\n".join(str(x) for x in text)
            if not isinstance(text, str) or not text.strip():
                ctx.p.error(shown, value.line_of(lang), f"UI text '{key}' has no '{lang}' version")
                continue
            extra = UI_EXTRA_PLACEHOLDERS.get(str(key), frozenset())
            _check_text_placeholders(ctx, shown, value.line_of(lang), text, f"UI text '{key}' ({lang})", extra)
            for err in html_problems(text)[0]:
                ctx.p.error(shown, value.line_of(lang), f"UI text '{key}' ({lang}): {err}")
            texts[lang] = text.strip()
        ui[str(key)] = texts
    return ui


def _load_synonyms(ctx: _Ctx, path: Path, shown: str) -> tuple[tuple[str, ...], ...]:
    try:
        data = read_yaml(path, shown)
    except YamlProblem as exc:
        ctx.p.error(exc.path, exc.line, exc.message)
        return ()
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


def load_faq(faq_dir: Path, config: Config, today: dt.date, problems: Problems | None = None) -> FAQ:
    """Load and check every file in faq_dir. Raises ContentError listing every error found."""
    own = problems is None
    p = problems if problems is not None else Problems()
    base = faq_dir
    sample = {lang: placeholder_values(config, lang, "(hotline)") for lang in config.languages}
    ctx = _Ctx(config=config, today=today, p=p, placeholder_sample=sample)

    def shown(path: Path) -> str:
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)

    if not base.is_dir():
        p.error(str(base), 1, "the FAQ folder does not exist")
        raise ContentError(p.errors)

    ui: dict[str, dict[str, str]] = {}
    ui_path = base / "ui.yaml"
    if ui_path.exists():
        ui = _load_ui(ctx, ui_path, shown(ui_path))
        for key in REQUIRED_UI:
            if key not in ui:
                p.error(shown(ui_path), 1, f"UI text '{key}' is missing")
    else:
        p.error(shown(ui_path), 1, "ui.yaml (the bot's own texts) is missing")
    syn_path = base / "synonyms.yaml"
    synonyms = _load_synonyms(ctx, syn_path, shown(syn_path)) if syn_path.exists() else ()

    entries: dict[str, Entry] = {}
    sections: list[Section] = []
    first_seen: dict[str, str] = {}
    files = sorted(f for f in base.glob("*.yaml") if f.name not in SPECIAL_FILES and not f.name.startswith("_"))
    if not files:
        p.error(str(base), 1, "no FAQ files (*.yaml) found")
    for path in files:
        name = shown(path)
        try:
            data = read_yaml(path, name)
        except YamlProblem as exc:
            p.error(exc.path, exc.line, exc.message)
            continue
        if not isinstance(data, LineDict):
            p.error(name, 1, "an FAQ file must start with 'section:', 'title:' and 'entries:'")
            continue
        for key in data:
            if key not in SECTION_KEYS:  # a misspelt key would otherwise be ignored without a word
                known = ", ".join(SECTION_KEYS)
                p.error(name, data.line_of(key), f"unknown field '{key}' at the top of the file (known: {known})")
        section_id = data.get("section")
        if not isinstance(section_id, str) or not ID_RE.match(section_id):
            p.error(name, data.line_of("section"), "'section' must be a kebab-case id, e.g. asylum")
            section_id = path.stem
        if any(s.id == section_id for s in sections):
            p.error(name, data.line_of("section"), f"section '{section_id}' is already used by another file")
        titles: dict[str, str] = {}
        raw_titles = data.get("title")
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
            if rel not in entries:
                p.error(entry.file, entry.related_line, f"entry '{entry.id}': related id '{rel}' does not exist")
            elif rel == entry.id:
                p.error(entry.file, entry.related_line, f"entry '{entry.id}' lists itself as related")
    _draft_warnings(p, entries.values())
    if own and p.errors:
        raise ContentError(p.errors)
    if p.errors:
        raise ContentError(p.errors)
    return FAQ(
        entries=entries,
        sections=tuple(sections),
        ui=ui,
        synonyms=synonyms,
        warnings=tuple(str(w) for w in p.warnings),
        taught=taught,
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


def is_draft(block: LangBlock) -> bool:
    """A language block no native reader has checked yet (`checked: draft`, or no `checked`)."""
    return block.checked.lower() in ("", "draft")


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

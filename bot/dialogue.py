"""What the bot says: (message, language, content) → Reply. No Telegram types, no I/O, no clock.

Telegram handlers, the terminal chat and `python -m bot ask/eval` all call these functions, so what
the tests and the accuracy figures measure is exactly what users get.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Literal
from zoneinfo import ZoneInfo

from bot.config import Config
from bot.faq import FAQ, Entry, fill, placeholder_values
from bot.i18n import Texts
from bot.lexicon import lexicon
from bot.matcher import Candidate, Index
from bot.normalize import has_latin, latin_to_cyrillic, normalize, tokens
from bot.understanding import ranker
from bot.understanding.crisis import Crisis, category_info, detect
from bot.understanding.pipeline import Understanding, understand

TELEGRAM_LIMIT = 4096
LANGUAGE_NAMES = {"ru": "Русский", "kk": "Қазақша", "en": "English"}

# Reply kinds
ANSWER, SUGGEST, FALLBACK, SMALLTALK, URGENT = "answer", "did_you_mean", "fallback", "smalltalk", "urgent"
MENU, SECTION, CONTACTS, LANGUAGE, GREETING, INFO = (
    "menu",
    "section",
    "contacts",
    "language",
    "greeting",
    "info",
)
ANSWER_KINDS = (ANSWER, URGENT)


@dataclass(frozen=True)
class Button:
    label: str
    data: str | None = None  # callback data (at most 64 bytes)
    url: str | None = None


Keyboard = tuple[tuple[Button, ...], ...]


@dataclass(frozen=True)
class Reply:
    kind: str
    text: str
    lang: str
    buttons: Keyboard = ()
    entry_id: str | None = None
    score: float = 0.0
    suggestions: tuple[str, ...] = ()
    urgent: bool = False
    candidates: tuple[Candidate, ...] = ()
    set_language: str | None = None  # the user chose a language: store it
    feedback: tuple[str, bool] | None = None  # (entry id, helpful?) to store
    forget: bool = False  # the user confirmed erasing their data
    await_question: bool = False  # the user agreed to ask a person: their next message goes to staff
    crisis: str | None = None  # the crisis category of an urgent reply (bot/data/crisis.yaml)


@dataclass(frozen=True)
class Knowledge:
    """One immutable version of everything the dialogue needs; swapped whole on reload."""

    config: Config
    faq: FAQ
    index: Index
    texts: Texts
    understanding: Understanding
    values: dict[str, dict[str, str]] = field(default_factory=dict)  # placeholders per language
    # texts filled once per version and language (a reply uses half a dozen): only this version's
    # own texts are kept, so it cannot grow beyond them
    _filled: dict[tuple[str, str], str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def build(
        cls,
        config: Config,
        faq: FAQ,
        model: ranker.RankerModel | Literal["train"] | None = "train",
        warm: bool = True,
    ) -> Knowledge:
        """Everything for one FAQ version. `model`: the learned ranker's (trained here by default;
        None: the matcher decides alone). `warm=False`: the index's words are worked out later, by
        whoever calls `index.warm_up()` (the bot, in a thread after start-up)."""
        texts = Texts(faq.ui, config.default_language)
        values: dict[str, dict[str, str]] = {}
        for lang in config.languages:
            missing = fill(texts.get("hotline_missing", lang), placeholder_values(config, lang))
            values[lang] = placeholder_values(config, lang, missing)
        if model == "train":
            model = ranker.build(faq)
        index = Index(faq, warm=warm)
        understanding = Understanding.of(index, ranker.Ranker(model) if model is not None else None)
        return cls(config=config, faq=faq, index=index, texts=texts, understanding=understanding, values=values)

    def with_ranker(self, model: ranker.RankerModel) -> Knowledge:
        """This version with its learned ranker: a version that began serving with the matcher alone
        (its model trained meanwhile in a child process), swapped whole like any reload."""
        understanding = dataclasses.replace(self.understanding, ranker=ranker.Ranker(model))
        return dataclasses.replace(self, understanding=understanding, _filled={})

    def t(self, key: str, lang: str, **extra: str) -> str:
        """A UI text with every placeholder filled."""
        if not extra:
            return self.filled(self.texts.get(key, lang), lang)
        values = dict(self.values.get(lang, {}))
        values.update(extra)
        return fill(self.texts.get(key, lang), values)

    def filled(self, template: str, lang: str) -> str:
        """A text of this version (UI text, answer, link) with its placeholders filled, once."""
        hit = self._filled.get((template, lang))
        if hit is None:
            hit = self._filled[(template, lang)] = fill(template, self.values.get(lang, {}))
        return hit

    def lang(self, lang: str | None) -> str:
        return lang if lang in self.config.languages else self.config.default_language


# ---------------------------------------------------------------- keyboards


def _menu_row(k: Knowledge, lang: str, contacts: bool = True) -> tuple[Button, ...]:
    row = [Button(k.t("menu_button", lang), data="menu")]
    if contacts:
        row.append(Button(k.t("contacts_button", lang), data="contacts"))
    return tuple(row)


def _entry_button(k: Knowledge, entry: Entry, lang: str) -> Button:
    return Button(entry.langs[lang].title if lang in entry.langs else entry.id, data=f"faq:{entry.id}")


# ---------------------------------------------------------------- replies


def entry_reply(
    k: Knowledge,
    entry_id: str,
    lang: str,
    *,
    kind: str = ANSWER,
    score: float = 1.0,
    header: str = "",
    candidates: tuple[Candidate, ...] = (),
) -> Reply:
    """An FAQ answer with its link, related entries, menu, contacts and feedback buttons."""
    lang = k.lang(lang)
    entry = k.faq.entries.get(entry_id)
    if entry is None:
        return entry_gone(k, lang)
    block = entry.langs[lang]
    text = k.filled(block.answer, lang).rstrip()  # an empty {hotline_line} on the last line leaves no gap
    if entry.link:
        text += f"\n\n{k.t('more_link', lang)} {k.filled(entry.link, lang)}"
    if header:
        text = f"{header}\n\n{text}"
    rows: list[tuple[Button, ...]] = []
    for rel in entry.related:
        other = k.faq.entries.get(rel)
        if other is not None:
            rows.append((_entry_button(k, other, lang),))
    rows.append(_menu_row(k, lang))
    rows.append((Button(k.t("ask_person_button", lang), data="ask"),))
    rows.append(
        (
            Button(f"👍 {k.t('helpful', lang)}", data=f"fb:{entry.id}:1"),
            Button("👎", data=f"fb:{entry.id}:0"),
        )
    )
    return Reply(
        kind=kind,
        text=text,
        lang=lang,
        buttons=tuple(rows),
        entry_id=entry.id,
        score=score,
        urgent=entry.urgent or kind == URGENT,
        candidates=candidates,
    )


def menu_reply(k: Knowledge, lang: str, text: str | None = None, kind: str = MENU) -> Reply:
    lang = k.lang(lang)
    rows = [(Button(s.titles.get(lang, s.id), data=f"sec:{s.id}"),) for s in k.faq.sections]
    rows.append((Button(k.t("contacts_button", lang), data="contacts"),))
    return Reply(kind=kind, text=text or k.t("menu_title", lang), lang=lang, buttons=tuple(rows))


def section_reply(k: Knowledge, section_id: str, lang: str) -> Reply:
    lang = k.lang(lang)
    section = k.faq.section(section_id)
    if section is None:
        return entry_gone(k, lang)
    rows = [(_entry_button(k, k.faq.entries[e], lang),) for e in section.entry_ids if e in k.faq.entries]
    rows.append((Button(k.t("back_button", lang), data="menu"),))
    title = section.titles.get(lang, section.id)
    return Reply(kind=SECTION, text=f"<b>{_escape(title)}</b>", lang=lang, buttons=tuple(rows))


def office_open(config: Config, now: dt.datetime) -> bool:
    """Is the office open at `now` (any time zone), by its hours in its own zone?"""
    hours = config.contacts.office.hours
    local = now.astimezone(ZoneInfo(hours.timezone))
    day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[local.weekday()]
    opening = dt.time.fromisoformat(hours.open)
    closing = dt.time.fromisoformat(hours.close)
    return day in hours.days and opening <= local.time() < closing


def contacts_reply(k: Knowledge, lang: str, now: dt.datetime) -> Reply:
    lang = k.lang(lang)
    status = k.t("open_now" if office_open(k.config, now) else "closed_now", lang)
    text = k.t("contacts_card", lang, status=status)
    rows = (
        (Button(k.t("help_site_button", lang), url=k.config.contacts.help_site),),
        (Button(k.t("menu_button", lang), data="menu"),),
    )
    return Reply(kind=CONTACTS, text=text, lang=lang, buttons=rows)


def language_picker(k: Knowledge, lang: str) -> Reply:
    row = tuple(Button(LANGUAGE_NAMES.get(code, code), data=f"lang:{code}") for code in k.config.languages)
    return Reply(kind=LANGUAGE, text=k.t("choose_language", k.lang(lang)), lang=k.lang(lang), buttons=(row,))


def greeting_reply(k: Knowledge, lang: str) -> Reply:
    return menu_reply(k, lang, text=k.t("greeting", k.lang(lang)), kind=GREETING)


def entry_gone(k: Knowledge, lang: str) -> Reply:
    return menu_reply(k, lang, text=k.t("entry_gone", k.lang(lang)), kind=INFO)


def fallback_reply(k: Knowledge, lang: str, key: str = "fallback", candidates: tuple[Candidate, ...] = ()) -> Reply:
    lang = k.lang(lang)
    rows = (
        _menu_row(k, lang),
        (Button(k.t("ask_person_button", lang), data="ask"),),
        (Button(k.t("help_site_button", lang), url=k.config.contacts.help_site),),
    )
    return Reply(kind=FALLBACK, text=k.t(key, lang), lang=lang, buttons=rows, candidates=candidates)


def info_reply(k: Knowledge, key: str, lang: str, **extra: str) -> Reply:
    """A UI text with the menu under it (help, non-text messages, slow down, errors...)."""
    lang = k.lang(lang)
    return Reply(kind=INFO, text=k.t(key, lang, **extra), lang=lang, buttons=(_menu_row(k, lang),))


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ---------------------------------------------------------------- free text


def _smalltalk_kind(text: str) -> str | None:
    """hello / thanks / bye when the message is only that (plus filler words), else None."""
    lex = lexicon()
    norm = normalize(text)
    words = tokens(norm)
    if has_latin(norm):
        words = words + tokens(latin_to_cyrillic(norm))
    kinds = [kind for kind, vocab in lex.smalltalk.items() if any(w in vocab for w in words)]
    return kinds[0] if kinds else None


def _crisis_entry(k: Knowledge, crisis: Crisis, top: Candidate | None, threshold: float) -> str | None:
    """The FAQ entry under the crisis text: one the matcher is sure of when it is itself urgent or the
    category's own ("мужа задержали, что делать" gets the detention answer), else the category's entry
    if the FAQ has it, else the emergency entry."""
    if top is not None and top.score >= threshold:
        entry = k.faq.entries.get(top.entry_id)
        if entry is not None and (entry.urgent or top.entry_id == crisis.entry_id):
            return top.entry_id
    for entry_id in (crisis.entry_id, "emergency"):
        if entry_id in k.faq.entries:
            return entry_id
    return None


def crisis_reply(k: Knowledge, crisis: Crisis, lang: str, candidates: tuple[Candidate, ...] = ()) -> Reply:
    """The number that fits comes first (ui.yaml: crisis_<category>), then the FAQ answer the message
    matched, then "Ask a person". Never depends on office hours."""
    lang = k.lang(lang)
    mc = k.config.matcher
    top = candidates[0] if candidates else None
    head = k.t(f"crisis_{crisis.category}", lang)
    entry_id = _crisis_entry(k, crisis, top, mc.answer_threshold)
    _, show = category_info(crisis.category)
    if entry_id is not None and (
        show or (top is not None and top.entry_id == entry_id and entry_id != crisis.entry_id)
    ):
        reply = entry_reply(
            k, entry_id, lang, kind=URGENT, score=top.score if top else 0.0, header=head, candidates=candidates
        )
        return Reply(**{**reply.__dict__, "crisis": crisis.category})
    rows: list[tuple[Button, ...]] = []
    if entry_id is not None:
        rows.append((_entry_button(k, k.faq.entries[entry_id], lang),))
    rows.append((Button(k.t("ask_person_button", lang), data="ask"),))
    rows.append(_menu_row(k, lang))
    return Reply(
        kind=URGENT,
        text=head,
        lang=lang,
        buttons=tuple(rows),
        entry_id=entry_id,
        urgent=True,
        candidates=candidates,
        crisis=crisis.category,
    )


_URL_RE = re.compile(r"(?:https?://|www\.|t\.me/)\S+", re.IGNORECASE)


def reply_to_text(k: Knowledge, text: str, lang: str) -> Reply:
    """The engine's answer to a free-text message, in `lang`."""
    lang = k.lang(lang)
    mc = k.config.matcher
    text = _URL_RE.sub(" ", text)  # a link says nothing about the question, and its pieces read as unknown words
    crisis = detect(text)
    content = k.index.content_terms(text)
    if not content and crisis is not None and crisis.learned and _smalltalk_kind(text) is not None:
        crisis = None  # "hello" alone: the model's guess never outweighs plain small talk
    if not content and crisis is None:
        kind = _smalltalk_kind(text)
        if kind is not None:
            reply = menu_reply(k, lang, text=k.t(f"smalltalk_{kind}", lang), kind=SMALLTALK)
            return reply
        return fallback_reply(k, lang, key="empty_message")
    candidates = tuple(k.index.match(text, limit=max(5, mc.max_suggestions + 1)))
    if crisis is not None:
        return crisis_reply(k, crisis, lang, candidates)
    decision = understand(k.understanding, text, mc, candidates)
    if decision.kind == ANSWER and decision.entry_id is not None:
        return entry_reply(k, decision.entry_id, lang, score=decision.confidence, candidates=candidates)
    if decision.kind != SUGGEST or not decision.suggestions:
        return fallback_reply(k, lang, candidates=candidates)
    picks = [e for e in decision.suggestions if e in k.faq.entries]
    rows: list[tuple[Button, ...]] = [(_entry_button(k, k.faq.entries[e], lang),) for e in picks]
    rows.append(_menu_row(k, lang))
    return Reply(
        kind=SUGGEST,
        text=k.t("did_you_mean", lang),
        lang=lang,
        buttons=tuple(rows),
        score=decision.confidence,
        suggestions=tuple(picks),
        candidates=candidates,
    )


# ---------------------------------------------------------------- commands and buttons

_PAYLOAD_RE = re.compile(r"^(?:(?P<lang>[a-z]{2})_)?(?P<id>[a-z0-9]+(?:-[a-z0-9]+)*)$")


def start_reply(k: Knowledge, payload: str, lang: str) -> Reply:
    """/start with an optional deep-link payload: a language, an entry id, or <lang>_<entry-id>."""
    payload = payload.strip().lower()
    if payload in k.config.languages:
        reply = greeting_reply(k, payload)
        return _with_language(reply, payload)
    m = _PAYLOAD_RE.match(payload)
    if m and m.group("id") in k.faq.entries:
        chosen = m.group("lang")
        if chosen in k.config.languages:
            return _with_language(entry_reply(k, m.group("id"), chosen), chosen)
        return entry_reply(k, m.group("id"), lang)
    return greeting_reply(k, lang)


def _with_language(reply: Reply, lang: str) -> Reply:
    return Reply(**{**reply.__dict__, "set_language": lang})


def reply_to_button(k: Knowledge, data: str, lang: str, now: dt.datetime) -> Reply:
    """A pressed inline button. Any string may arrive here (old or forged buttons): never raises."""
    lang = k.lang(lang)
    data = (data or "")[:64]
    head, _, rest = data.partition(":")
    if head == "menu":
        return menu_reply(k, lang)
    if head == "contacts":
        return contacts_reply(k, lang, now)
    if head == "sec":
        return section_reply(k, rest, lang)
    if head == "faq":
        return entry_reply(k, rest, lang) if rest in k.faq.entries else entry_gone(k, lang)
    if head == "lang" and rest in k.config.languages:
        reply = greeting_reply(k, rest)
        text = f"{k.t('language_set', rest)}\n\n{reply.text}"
        return Reply(**{**reply.__dict__, "text": text, "set_language": rest})
    if head == "fb":
        entry_id, _, value = rest.partition(":")
        if entry_id in k.faq.entries and value in ("0", "1"):
            return Reply(
                kind=INFO,
                text=k.t("feedback_thanks", lang),
                lang=lang,
                buttons=(_menu_row(k, lang),),
                feedback=(entry_id, value == "1"),
            )
        return entry_gone(k, lang)
    if head == "ask":
        return ask_reply(k, rest, lang, now)
    if head == "forget":
        if rest == "yes":
            return Reply(kind=INFO, text="", lang=lang, buttons=(_menu_row(k, lang),), forget=True)
        return info_reply(k, "forget_cancelled", lang)
    return entry_gone(k, lang)


def ask_reply(k: Knowledge, step: str, lang: str, now: dt.datetime) -> Reply:
    """ "Ask a person": consent first (what is shared, with whom), then the user writes the question.
    Without an operators' chat the button leads to the hotline and contacts instead."""
    if k.config.telegram.operators_chat is None:
        card = contacts_reply(k, lang, now)
        return Reply(**{**card.__dict__, "text": f"{k.t('ask_unavailable', lang)}\n\n{card.text}"})
    if step == "yes":
        return Reply(kind=INFO, text=k.t("ask_write_now", lang), lang=lang, await_question=True)
    if step == "no":
        return menu_reply(k, lang)
    row = (Button(k.t("ask_yes", lang), data="ask:yes"), Button(k.t("ask_no", lang), data="ask:no"))
    return Reply(kind=INFO, text=k.t("ask_consent", lang), lang=lang, buttons=(row,))


def forget_prompt(k: Knowledge, lang: str) -> Reply:
    lang = k.lang(lang)
    row = (
        Button(k.t("forget_yes", lang), data="forget:yes"),
        Button(k.t("forget_no", lang), data="forget:no"),
    )
    return Reply(kind=INFO, text=k.t("forget_confirm", lang), lang=lang, buttons=(row,))


# ---------------------------------------------------------------- splitting


_TAG_RE = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s[^<>]*)?)>")
_ENTITY_RE = re.compile(r"&(?:#[0-9]+|#x[0-9a-fA-F]+|[a-zA-Z]+);")


def _units(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units: an emoji is two)."""
    return len(text.encode("utf-16-le")) // 2


@dataclass(frozen=True)
class _Markup:
    """Where a text's HTML is: spans a cut must not fall inside (tags, entities), and the elements
    (open tag start, open tag end, close tag start, the open tag itself, its name)."""

    inside: tuple[tuple[int, int], ...]
    elements: tuple[tuple[int, int, int, str, str], ...]

    @classmethod
    def of(cls, text: str) -> _Markup:
        inside = [m.span() for m in _ENTITY_RE.finditer(text)]
        elements: list[tuple[int, int, int, str, str]] = []
        stack: list[tuple[int, int, str, str]] = []
        for m in _TAG_RE.finditer(text):
            inside.append(m.span())
            closing, name = m.group(1) == "/", m.group(2).lower()
            if not closing:
                stack.append((m.start(), m.end(), m.group(0), name))
            elif stack and stack[-1][3] == name:  # unmatched tags are left alone (they are text)
                start, end, tag, _ = stack.pop()
                elements.append((start, end, m.start(), tag, name))
        return cls(tuple(inside), tuple(sorted(elements)))

    def allowed(self, pos: int) -> bool:
        return not any(a < pos < b for a, b in self.inside)

    def open_at(self, pos: int) -> list[tuple[str, str]]:
        """(open tag, name) of the elements a cut at `pos` falls inside, outermost first."""
        return [(tag, name) for start, end, close, tag, name in self.elements if start < pos <= close and end <= pos]


def split_message(text: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Split so that each part fits Telegram's limit (counted as Telegram does, in UTF-16 units,
    and with the tags, so it holds however Telegram parses them), on entity boundaries: at a
    paragraph, else a line, else a word break outside any <b>, <a>… element; only when none is
    within reach, inside one, and then the open elements are closed at the end of the part and
    opened again at the start of the next, so every part is valid HTML on its own. Never inside a
    tag or an &entity;. Empty parts are dropped (Telegram refuses empty messages)."""
    rest = text.strip()
    if len(rest) * 2 <= limit:  # fits whatever its characters are
        return [rest] if rest else []
    parts: list[str] = []
    while _units(rest) > limit:
        head, rest = _split_once(rest, limit)
        if head:
            parts.append(head)
    if rest:
        parts.append(rest)
    return parts


def _split_once(text: str, limit: int) -> tuple[str, str]:
    """(a first part within `limit`, the rest), `text` being longer than that."""
    markup = _Markup.of(text)
    budget = limit
    while True:
        cut = _cut_point(text, markup, _reach(text, budget))
        tags = markup.open_at(cut)
        if tags and sum(len(tag) for tag, _ in tags) >= cut:
            tags = []  # reopening them would leave no room for text (only with tiny limits)
        closing = "".join(f"</{name}>" for _, name in reversed(tags))
        head = text[:cut].rstrip() + closing
        over = _units(head) - limit
        if over <= 0 or budget <= 1:
            rest = text[cut:].lstrip()
            return head.strip(), ("".join(tag for tag, _ in tags) + rest) if rest else ""
        budget -= over


def _reach(text: str, limit: int) -> int:
    """How many characters of `text` fit in `limit` UTF-16 units."""
    if len(text) * 2 <= limit or _units(text[:limit]) <= limit:
        return min(limit, len(text))
    reach, used = 0, 0
    for ch in text:
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > limit:
            break
        reach += 1
    return reach


def _cut_point(text: str, markup: _Markup, reach: int) -> int:
    """Where to cut within `reach` characters: the best separator outside every element, else the
    best one inside an element, else a hard cut (never inside a tag or an entity)."""
    seps = ("\n\n", "\n", " ")
    fallback = None
    for sep in seps:
        pos = text.rfind(sep, 0, reach)
        while pos > reach // 3:
            if markup.allowed(pos):
                if not markup.open_at(pos):
                    return pos
                if fallback is None:
                    fallback = pos
            pos = text.rfind(sep, 0, pos)
    if fallback is not None:
        return fallback
    cut = reach
    while cut > 1 and not markup.allowed(cut):
        cut -= 1
    return cut if cut > 1 else max(1, reach)

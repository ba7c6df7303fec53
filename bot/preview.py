"""The whole FAQ as one self-contained HTML page, for review meetings and native-speaker checks.

Pure: a Knowledge version and today's date in, a page out. Answers are shown as users see them
(placeholders filled from config.yaml the way the bot fills them), the languages side by side;
drafts and entries not reviewed for a while are highlighted with the same rules `check` uses.
"""

from __future__ import annotations

import datetime as dt
import html
from html.parser import HTMLParser

from bot.config import URL_RE
from bot.dialogue import Knowledge
from bot.faq import Entry, fill, is_draft, is_draft_mark, stale_entries, ui_drafts

LANGUAGE_NAMES = {"ru": "Русский", "kk": "Қазақша", "en": "English"}
# Telegram's tags → what a browser shows for them (anything else is dropped, its text kept)
_TAGS = {t: t for t in ("b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "pre", "blockquote")}
_TAGS.update({"a": "a", "tg-spoiler": "span", "span": "span"})

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5rem;color:#212121}
h1{font-size:1.5rem}h2{font-size:1.25rem;margin-top:2.5rem;border-bottom:2px solid #1565c0}
.summary span{display:inline-block;margin-right:1.5rem}
.entry{border:1px solid #ddd;border-radius:6px;margin:1.2rem 0;padding:.6rem 1rem}
.entry.stale{border:2px solid #e65100;background:#fff8f0}
.meta{font-size:.9rem;color:#555}.meta ul{margin:.2rem 0}
.badge{display:inline-block;padding:0 .4rem;border-radius:3px;font-size:.8rem;font-weight:600;color:#fff}
.badge.stale{background:#e65100}.badge.draft{background:#6a1b9a}.badge.urgent{background:#c62828}
.langs{display:grid;grid-template-columns:repeat(auto-fit,minmax(280px,1fr));gap:.8rem;margin-top:.5rem}
.lang{border-top:3px solid #90caf9;padding:.3rem .5rem;background:#fafafa}
.lang.draft{border-top-color:#6a1b9a;background:#f6effa}
.answer{white-space:pre-wrap;background:#fff;border:1px solid #eee;padding:.5rem;margin:.4rem 0}
.spoiler{background:#ccc}.kw{color:#555;font-size:.9rem}h3{margin:.2rem 0}h4{margin:.2rem 0}
table.ui{border-collapse:collapse;width:100%}table.ui td,table.ui th{border:1px solid #ddd;padding:.3rem .5rem;
vertical-align:top;text-align:left}table.ui td{white-space:pre-wrap}table.ui td.draft{background:#f6effa}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


class _TelegramToHTML(HTMLParser):
    """Re-writes a Telegram-HTML answer as safe, well-formed page HTML: known tags only, links only
    to http(s) addresses, every text escaped, every tag closed."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        page_tag = _TAGS.get(tag)
        if page_tag is None:
            return
        if tag == "a":
            href = dict(attrs).get("href") or ""
            if URL_RE.match(href):
                self.out.append(f'<a href="{_e(href)}" rel="noopener noreferrer">')
            else:
                self.out.append("<a>")
        elif page_tag == "span":
            spoiler = tag == "tg-spoiler" or dict(attrs).get("class") == "tg-spoiler"
            self.out.append('<span class="spoiler">' if spoiler else "<span>")
        else:
            self.out.append(f"<{page_tag}>")
        self.stack.append(page_tag)

    def handle_endtag(self, tag: str) -> None:
        page_tag = _TAGS.get(tag)
        if page_tag is None or page_tag not in self.stack:
            return
        while self.stack:
            top = self.stack.pop()
            self.out.append(f"</{top}>")
            if top == page_tag:
                break

    def handle_data(self, data: str) -> None:
        self.out.append(html.escape(data, quote=False))

    def result(self) -> str:
        self.close()
        return "".join(self.out) + "".join(f"</{t}>" for t in reversed(self.stack))


def telegram_html(text: str) -> str:
    """A Telegram-HTML text as page HTML (see _TelegramToHTML)."""
    parser = _TelegramToHTML()
    parser.feed(text)
    return parser.result()


def _link(url: str) -> str:
    if URL_RE.match(url):
        return f'<a href="{_e(url)}" rel="noopener noreferrer">{_e(url)}</a>'
    return _e(url)


def _entry(k: Knowledge, entry: Entry, stale: bool, months: int) -> str:
    badges = []
    if stale:
        badges.append(f'<span class="badge stale">not reviewed for over {months} months</span>')
    if entry.urgent:
        badges.append('<span class="badge urgent">urgent</span>')
    related = ", ".join(f'<a href="#entry-{_e(r)}">{_e(r)}</a>' for r in entry.related) or "–"
    sources = "".join(f"<li>{_link(s)}</li>" for s in entry.sources)
    blocks = []
    for lang in k.config.languages:
        block = entry.langs.get(lang)
        if block is None:
            continue
        draft = is_draft(block)
        values = k.values.get(lang, {})
        answer = telegram_html(fill(block.answer, values))
        if entry.link:
            link = fill(entry.link, values)
            answer += f"\n\n{_e(k.t('more_link', lang))} {_link(link)}"
        questions = "".join(f"<li>{_e(q)}</li>" for q in block.questions)
        keywords = ", ".join(_e(w) for w in block.keywords) or "–"
        badge = ' <span class="badge draft">draft</span>' if draft else ""
        blocks.append(
            f'<div class="lang{" draft" if draft else ""}" data-lang="{_e(lang)}" data-checked="{_e(block.checked)}">'
            f"<h4>{_e(LANGUAGE_NAMES.get(lang, lang))} · {_e(block.title)}{badge}</h4>"
            f'<div class="meta">checked: {_e(block.checked)}</div>'
            f'<div class="answer">{answer}</div>'
            f"<div><b>Questions ({len(block.questions)})</b><ul>{questions}</ul></div>"
            f'<div class="kw"><b>Keywords:</b> {keywords}</div></div>'
        )
    reviewed = f"reviewed {entry.reviewed.isoformat()}"
    return (
        f'<article class="entry{" stale" if stale else ""}" id="entry-{_e(entry.id)}" '
        f'data-stale="{str(stale).lower()}" data-reviewed="{entry.reviewed.isoformat()}">'
        f"<h3>{_e(entry.id)} {' '.join(badges)}</h3>"
        f'<div class="meta">{reviewed} · {_e(entry.file)}:{entry.line} · related: {related}'
        f"<br>Sources:<ul>{sources}</ul></div>"
        f'<div class="langs">{"".join(blocks)}</div></article>'
    )


def _ui_texts(k: Knowledge) -> str:
    """The bot's own texts (ui.yaml), languages side by side, drafts highlighted like the answers'."""
    languages = k.config.languages
    head = "".join(f"<th>{_e(LANGUAGE_NAMES.get(lang, lang))}</th>" for lang in languages)
    rows = []
    for key, texts in k.faq.ui.items():
        marks = k.faq.ui_checked.get(key, {})
        cells = []
        for lang in languages:
            mark = marks.get(lang, "draft")
            draft = is_draft_mark(mark)
            badge = ' <span class="badge draft">draft</span>' if draft else ""
            cells.append(
                f'<td class="{"draft" if draft else ""}" data-lang="{_e(lang)}" data-checked="{_e(mark)}">'
                f"{telegram_html(fill(texts.get(lang, ''), k.values.get(lang, {})))}"
                f'<div class="meta">checked: {_e(mark)}{badge}</div></td>'
            )
        rows.append(f'<tr id="ui-{_e(key)}"><th>{_e(key)}</th>{"".join(cells)}</tr>')
    return (
        '<section id="ui-texts"><h2>The bot\'s own texts (ui.yaml)</h2>'
        f'<table class="ui"><tr><th>text</th>{head}</tr>{"".join(rows)}</table></section>'
    )


def render_preview(k: Knowledge, today: dt.date, stale_months: int = 6) -> str:
    """Every entry by section, languages side by side, with a summary of drafts and stale entries."""
    faq = k.faq
    stale = {e.id for e in stale_entries(faq, today, stale_months)}
    drafts = [(e.id, lang) for e in faq.entries.values() for lang, b in e.langs.items() if is_draft(b)]
    staff_lang = k.config.default_language
    nav = " · ".join(f'<a href="#section-{_e(s.id)}">{_e(s.titles.get(staff_lang, s.id))}</a>' for s in faq.sections)
    sections = []
    for s in faq.sections:
        titles = " / ".join(_e(s.titles.get(lang, s.id)) for lang in k.config.languages)
        entries = "".join(
            _entry(k, faq.entries[eid], eid in stale, stale_months) for eid in s.entry_ids if eid in faq.entries
        )
        sections.append(f'<section id="section-{_e(s.id)}"><h2>{titles}</h2>{entries}</section>')
    ui_draft = sum(len(ui_drafts(faq, lang)) for lang in k.config.languages)
    summary = (
        f'<p class="summary" id="summary" data-entries="{len(faq.entries)}" data-sections="{len(faq.sections)}" '
        f'data-drafts="{len(drafts)}" data-draft-entries="{len({e for e, _ in drafts})}" data-stale="{len(stale)}" '
        f'data-ui-drafts="{ui_draft}">'
        f"<span><b>{len(faq.entries)}</b> entries in {len(faq.sections)} sections</span>"
        f"<span><b>{len(drafts)}</b> language blocks are drafts (in {len({e for e, _ in drafts})} entries)</span>"
        f"<span><b>{len(stale)}</b> entries not reviewed for over {stale_months} months</span>"
        f'<span><b>{ui_draft}</b> of the bot\'s own texts are drafts (<a href="#ui-texts">ui.yaml</a>)</span></p>'
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>Komek FAQ preview {today.isoformat()}</title><style>{_CSS}</style></head><body>\n"
        f"<h1>Komek FAQ preview</h1>\n"
        f'<p class="meta">As of {today.isoformat()}. Answers are shown as the bot sends them, with contacts '
        'filled in from config.yaml. <span class="badge draft">draft</span> = not yet checked by a native '
        f'reader; <span class="badge stale">stale</span> = facts last reviewed over {stale_months} months ago. '
        "<code>python -m bot check</code> is the authority on errors.</p>\n"
        f"{summary}\n<nav>{nav}</nav>\n" + "\n".join(sections) + f"\n{_ui_texts(k)}\n</body></html>\n"
    )

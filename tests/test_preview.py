"""`python -m bot preview` end to end: the real CLI on the real faq/ and on an edited copy; the page
parsed with html.parser (well-formed, self-contained, figures right, drafts and stale entries marked)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from conftest import ContentCopy, RunCli
from test_report import WellFormed, parse_html

from bot.dialogue import Knowledge
from bot.faq import is_draft, ui_drafts
from bot.preview import telegram_html


def value(attrs: dict[str, str | None], name: str) -> str:
    """An attribute that must have a value (html.parser gives None for a bare attribute)."""
    found = attrs[name]
    assert found is not None, (name, attrs)
    return found


def articles(doc: WellFormed) -> dict[str, dict[str, str | None]]:
    return {value(a, "id")[6:]: a for t, a in doc.elements if t == "article"}


def lang_blocks(doc: WellFormed) -> list[dict[str, str | None]]:
    return [a for t, a in doc.elements if t == "div" and "data-lang" in a]


def test_preview_of_the_real_faq(cli: RunCli, knowledge: Knowledge, tmp_path: Path) -> None:
    out = tmp_path / "preview.html"
    result = cli("preview", "--out", out)
    assert result.returncode == 0, result.stderr
    page = out.read_text(encoding="utf-8")
    doc = parse_html(page)
    faq = knowledge.faq

    for tag, attrs in doc.elements:
        assert tag not in ("script", "link", "img", "iframe", "object", "embed"), tag
        assert "src" not in attrs
    assert "url(" not in page and "@import" not in page

    summary = next(a for t, a in doc.elements if a.get("id") == "summary")
    drafts = sum(is_draft(b) for e in faq.entries.values() for b in e.langs.values())
    assert summary["data-entries"] == str(len(faq.entries))
    assert summary["data-sections"] == str(len(faq.sections))
    assert summary["data-drafts"] == str(drafts)

    found = articles(doc)
    assert list(found) == [eid for s in faq.sections for eid in s.entry_ids]  # grouped by section, in order
    sections = [a["id"] for t, a in doc.elements if t == "section"]
    assert sections == [f"section-{s.id}" for s in faq.sections] + ["ui-texts"]  # the bot's own texts last
    blocks = lang_blocks(doc)
    assert len(blocks) == len(faq.entries) * len(knowledge.config.languages)
    assert sum("draft" in (b["class"] or "") for b in blocks) == drafts

    # the bot's own texts: one row per key, a cell per language, drafts marked by check's rule
    ui_rows = [a for t, a in doc.elements if t == "tr" and (a.get("id") or "").startswith("ui-")]
    assert [value(a, "id")[3:] for a in ui_rows] == list(faq.ui)
    ui_cells = [a for t, a in doc.elements if t == "td" and "data-checked" in a]
    assert len(ui_cells) == len(faq.ui) * len(knowledge.config.languages)
    ui_draft = sum(len(ui_drafts(faq, lang)) for lang in knowledge.config.languages)
    assert summary["data-ui-drafts"] == str(ui_draft) == str(sum("draft" in (a["class"] or "") for a in ui_cells))

    # sources are links; answers are shown with placeholders filled as the bot fills them
    hrefs = {a.get("href") for t, a in doc.elements if t == "a"}
    for entry in faq.entries.values():
        assert set(entry.sources) <= hrefs
    text = "".join(doc.text)
    assert "{office_phones}" not in text and "{help_site}" not in text
    phones = knowledge.values["ru"]["office_phones"]
    assert phones and phones in text
    entry = faq.entries["asylum-apply"]
    for lang in knowledge.config.languages:
        assert entry.langs[lang].title in text
        assert entry.langs[lang].questions[0] in text


def test_preview_highlights_the_draft_and_the_stale_entry(
    cli: RunCli, content_copy: ContentCopy, tmp_path: Path
) -> None:
    today = dt.datetime.now(dt.UTC).date()
    recent = (today - dt.timedelta(days=10)).isoformat()
    for path in content_copy.faq.glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        text = re.sub(r"checked: draft", "checked: Aigerim, 2026-11", text)
        text = re.sub(r"(?m)^    reviewed: .*$", f"    reviewed: {recent}", text)
        path.write_text(text, encoding="utf-8")
    asylum = content_copy.faq / "asylum.yaml"
    text = asylum.read_text(encoding="utf-8")
    first = re.search(r"(?m)^  - id: (\S+)", text)
    assert first is not None
    first_id = first.group(1)
    text = text.replace(f"    reviewed: {recent}", "    reviewed: 2020-01-15", 1)  # the first entry goes stale
    parts = text.split("checked: Aigerim, 2026-11")
    text = "checked: Aigerim, 2026-11".join(parts[:2]) + "checked: draft" + "checked: Aigerim, 2026-11".join(parts[2:])
    asylum.write_text(text, encoding="utf-8")  # ...and its second language block (kk) is a draft again
    ui = content_copy.faq / "ui.yaml"  # the bot's own texts signed off but one, whose kk is a draft again
    text = ui.read_text(encoding="utf-8").replace(": draft\n", ": Aigerim, 2026-11\n")
    ui.write_text(text.replace("\nmenu_title:\n", "\nmenu_title:\n  checked: {kk: draft}\n", 1), encoding="utf-8")

    out = tmp_path / "p.html"
    args = ("preview", "--faq", content_copy.faq, "--config", content_copy.config, "--out", out)
    result = cli(*args)
    assert result.returncode == 0, result.stderr
    doc = parse_html(out.read_text(encoding="utf-8"))

    found = articles(doc)
    stale = [eid for eid, a in found.items() if "stale" in (a["class"] or "").split()]
    assert stale == [first_id]
    assert found[first_id]["data-stale"] == "true" and found[first_id]["data-reviewed"] == "2020-01-15"
    drafts = [b for b in lang_blocks(doc) if "draft" in (b["class"] or "").split()]
    assert [(b["data-lang"], b["data-checked"]) for b in drafts] == [("kk", "draft")]
    summary = next(a for t, a in doc.elements if a.get("id") == "summary")
    assert (summary["data-drafts"], summary["data-draft-entries"], summary["data-stale"]) == ("1", "1", "1")
    assert summary["data-ui-drafts"] == "1"
    ui_drafted = [a for t, a in doc.elements if t == "td" and "draft" in (a.get("class") or "").split()]
    assert [(a["data-lang"], a["data-checked"]) for a in ui_drafted] == [("kk", "draft")]
    assert "not reviewed for over 6 months" in "".join(doc.text)

    # the same rule as `check --stale-months`: a longer limit, nothing stale
    result = cli(*args, "--stale-months", "200")
    doc = parse_html(out.read_text(encoding="utf-8"))
    assert not [a for a in articles(doc).values() if "stale" in (a["class"] or "").split()]
    check = cli("check", "--faq", content_copy.faq, "--config", content_copy.config, "--stale-months", "6")
    assert check.stdout.count("months ago") == 1 and f"'{first_id}'" in check.stdout


def test_broken_faq_gives_the_check_problems_and_exit_1(cli: RunCli, content_copy: ContentCopy) -> None:
    asylum = content_copy.faq / "asylum.yaml"
    asylum.write_text(asylum.read_text(encoding="utf-8") + "\n  - id: [broken\n", encoding="utf-8")
    result = cli("preview", "--faq", content_copy.faq, "--config", content_copy.config)
    assert result.returncode == 1
    assert "asylum.yaml:" in result.stderr and "Traceback" not in result.stderr


def test_telegram_html_becomes_safe_well_formed_page_html() -> None:
    out = telegram_html(
        '<b>Bold <i>both</b> <a href="javascript:alert(1)">bad</a> <a href="https://help.unhcr.org/x?a=1&amp;b=2">ok</a>'
        " <script>evil()</script> <tg-spoiler>hidden</tg-spoiler> 5 &lt; 6 <u>open"
    )
    assert out == (
        "<b>Bold <i>both</i></b> <a>bad</a> "
        '<a href="https://help.unhcr.org/x?a=1&amp;b=2" rel="noopener noreferrer">ok</a>'
        ' evil() <span class="spoiler">hidden</span> 5 &lt; 6 <u>open</u>'
    )
    parse_html(out)

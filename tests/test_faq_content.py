"""The real faq/: every topic is there in every language, fits Telegram, and keeps to the style guide
(contacts only through placeholders, sources from the fact sheet, safety numbers first)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from conftest import ROOT, RunCli

from bot.dialogue import TELEGRAM_LIMIT, Knowledge, entry_reply
from bot.normalize import fold, normalize

EXPECTED_IDS = [
    "refugee-definition",
    "asylum-apply",
    "asylum-border",
    "asylum-documents",
    "asylum-decision",
    "asylum-appeal",
    "refugee-certificate",
    "refugee-rights",
    "employment",
    "healthcare",
    "education",
    "family-reunification",
    "detention-deportation",
    "resettlement",
    "financial-help",
    "legal-aid",
    "stateless-definition",
    "stateless-status",
    "citizenship",
    "birth-registration",
    "lost-documents",
    "contacts",
    "hotline",
    "emergency",
    "gbv",
    "fraud",
    "feedback-complaints",
    "about-unhcr",
    "key-figures",
    "conventions",
    "partners",
    "central-asia",
    "ukrainians",
    "afghans",
]
LANGS = ("ru", "kk", "en")
FACTS = ROOT.parent / "shared" / "facts"


def blocks(knowledge: Knowledge) -> list[tuple[str, str]]:
    return [(e, lang) for e in knowledge.faq.entries for lang in LANGS]


def test_all_34_topics_exist(knowledge: Knowledge) -> None:
    assert len(EXPECTED_IDS) == len(set(EXPECTED_IDS)) == 34
    missing = [i for i in EXPECTED_IDS if i not in knowledge.faq.entries]
    assert not missing


@pytest.mark.parametrize("entry_id", EXPECTED_IDS)
def test_entry_is_complete_in_every_language(knowledge: Knowledge, entry_id: str) -> None:
    entry = knowledge.faq.entries[entry_id]
    assert entry.sources
    assert dt.date(2020, 1, 1) <= entry.reviewed <= dt.date.today()
    for lang in LANGS:
        block = entry.langs[lang]
        assert block.title.strip() and len(block.title) <= 32
        assert len(block.questions) >= 8, f"{entry_id}/{lang}: {len(block.questions)} questions"
        assert block.answer.strip()


def test_every_rendered_answer_fits_telegram(knowledge: Knowledge) -> None:
    too_long = []
    for entry_id, lang in blocks(knowledge):
        plain = entry_reply(knowledge, entry_id, lang)
        urgent = entry_reply(knowledge, entry_id, lang, header=knowledge.t("urgent_header", lang))
        for reply in (plain, urgent):
            assert "{" not in reply.text, f"{entry_id}/{lang}: an unfilled placeholder"
            if len(reply.text) > TELEGRAM_LIMIT:
                too_long.append((entry_id, lang, len(reply.text)))
    assert not too_long


# A phone number: 7 or more digits, possibly split by spaces, dashes, dots or brackets.
PHONE = re.compile(r"\+?\d(?:[\s\-.()]*\d){6,}")
# The emergency numbers typed literally, instead of {emergency}, {police}...
EMERGENCY = re.compile(r"(?<![\d\w{])(?:101|102|103|104|111|112)(?![\d\w}])")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
URL = re.compile(r"https?://|www\.|\b[\w-]+(?:\.[\w-]+)*\.(?:kz|org|com|ru|net|gov|int|info|uz|kg|tj)\b", re.I)
GENERIC_ADDRESS_WORDS = {"street", "microdistrict", "индекс", "микрорайон", "шағынаудан"}


def street_names(knowledge: Knowledge) -> set[str]:
    """Street names of the office and the asylum offices in config.yaml, folded (e.g. 'байзаков')."""
    c = knowledge.config.contacts
    addresses = [c.office.address[lang] for lang in LANGS]
    addresses += [o.address[lang] for o in c.asylum_offices for lang in LANGS]
    cities = {w for o in c.asylum_offices for lang in LANGS for w in normalize(o.city[lang]).split()}
    names = set()
    for address in addresses:
        for word in re.findall(r"[^\W\d_]{5,}", address):
            norm = fold(normalize(word))
            if word[0].isupper() and normalize(word) not in cities and normalize(word) not in GENERIC_ADDRESS_WORDS:
                names.add(norm[:6])
    return names


def test_street_names_are_found_in_the_config(knowledge: Knowledge) -> None:
    names = street_names(knowledge)
    assert {"байзак", "baizak", "достык", "dostyk"} <= names


def test_raw_answers_type_no_contacts(knowledge: Knowledge) -> None:
    """Phones, e-mails, web addresses and street names come from placeholders, never typed in."""
    streets = street_names(knowledge)
    found = []
    for entry_id, lang in blocks(knowledge):
        answer = knowledge.faq.entries[entry_id].langs[lang].answer
        for what, rx in (("phone", PHONE), ("emergency number", EMERGENCY), ("e-mail", EMAIL), ("URL", URL)):
            found += [(entry_id, lang, what, m.group(0)) for m in rx.finditer(answer)]
        folded = fold(normalize(answer))
        found += [(entry_id, lang, "street", s) for s in streets if s in folded]
    assert not found


@pytest.mark.parametrize(
    "text",
    [
        "звоните 112",
        "тел. +7 727 258 45 98",
        "пишите inspector@unhcr.org",
        "см. help.unhcr.org/centralasia",
        "8-700-123-45-67",
    ],
)
def test_the_contact_patterns_catch_typed_contacts(text: str) -> None:
    assert any(rx.search(text) for rx in (PHONE, EMERGENCY, EMAIL, URL))


def test_placeholders_and_figures_are_not_mistaken_for_contacts() -> None:
    for text in ("звоните {emergency}", "{office_phones}", "на 30 июня 2024 г.", "5 календарных дней", "около 1 000"):
        assert not any(rx.search(text) for rx in (PHONE, EMERGENCY, EMAIL, URL)), text


def test_related_ids_exist(knowledge: Knowledge) -> None:
    for entry in knowledge.faq.entries.values():
        for rel in entry.related:
            assert rel in knowledge.faq.entries, f"{entry.id}: related {rel}"
            assert rel != entry.id


@pytest.mark.parametrize("entry_id", ["emergency", "gbv"])
@pytest.mark.parametrize("lang", LANGS)
def test_safety_answers_open_with_the_numbers(knowledge: Knowledge, entry_id: str, lang: str) -> None:
    answer = knowledge.faq.entries[entry_id].langs[lang].answer
    lines = answer.splitlines()
    assert any("{emergency}" in line for line in lines[:3]), lines[:3]
    assert any("{family_helpline}" in line for line in lines[:6]), lines[:6]
    # the dialogue skips its own urgent header when the answer opens with {emergency} (first 200 chars)
    assert "{emergency}" in answer[:200]


def test_safety_entries_are_marked_urgent(knowledge: Knowledge) -> None:
    for entry_id in ("emergency", "gbv", "detention-deportation"):
        assert knowledge.faq.entries[entry_id].urgent


@pytest.mark.skipif(not FACTS.is_dir(), reason=f"the fact sheet folder {FACTS} (../shared/facts) is not checked out")
def test_every_source_is_in_the_fact_sheet(knowledge: Knowledge) -> None:
    facts = (FACTS / "kazakhstan.md").read_text("utf-8")
    office_page = FACTS / "unhcr-kazakhstan-office-page.ru.md"
    if office_page.exists():
        facts += office_page.read_text("utf-8")
    unknown = sorted({(e.id, src) for e in knowledge.faq.entries.values() for src in e.sources if src not in facts})
    assert not unknown


def test_check_passes_on_the_real_content(cli: RunCli) -> None:
    result = cli("check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^OK: \d+ entries in \d+ sections, 3 languages", result.stdout, re.M)

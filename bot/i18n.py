"""Which language to answer in, and the bot's own texts in that language.

Order of choice: the user's stored choice, else Telegram's language_code when it is one of ours,
else a guess from the message itself (Ukrainian gets Russian, the closest language we serve).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from bot.lexicon import lexicon
from bot.normalize import has_cyrillic, has_latin, latin_to_cyrillic, normalize, tokens

_KAZAKH_ONLY = re.compile(r"[әғқңөұүһ]")
_UKRAINIAN_ONLY = re.compile(r"[їєґ]")
_I_LETTER = re.compile(r"і")
# Common words that mark Kazakh typed without Kazakh letters, or Russian typed in Latin letters.
_KAZAKH_HINTS = frozenset(
    [
        "калай",
        "кайда",
        "кашан",
        "канша",
        "кандай",
        "неге",
        "керек",
        "бар",
        "жок",
        "ма",
        "ме",
        "ба",
        "бе",
        "па",
        "пе",
        "маган",
        "менин",
        "мен",
        "сиз",
        "сизге",
        "боскын",
        "азаматтык",
        "куалик",
        "курал",
        "кужат",
        "алу",
        "алам",
        "аламын",
        "болады",
        "бола",
        "берилед",
        "бериледи",
        "жумыс",
        "бала",
        "балам",
        "отбасы",
        "кызмет",
        "комек",
        "рахмет",
        "салем",
        "саламатсызба",
    ]
)
_TRANSLIT_HINTS = frozenset(
    [
        "kak",
        "gde",
        "chto",
        "shto",
        "kuda",
        "mne",
        "menya",
        "nado",
        "nuzhno",
        "mozhno",
        "pomogite",
        "pozhaluysta",
        "zdravstvuyte",
        "esli",
        "pochemu",
        "kogda",
        "poluchit",
        "status",
        "bezhenca",
        "bezhenets",
        "ubezhishe",
        "dokumenty",
        "rabota",
        "spravka",
    ]
)


def detect_language(text: str, languages: tuple[str, ...]) -> str | None:
    """Guess ru/kk/en (uk → ru) from the text; None when there is nothing to go on."""
    raw = text.casefold()
    if _KAZAKH_ONLY.search(raw) and "kk" in languages:
        return "kk"
    if _UKRAINIAN_ONLY.search(raw) and "ru" in languages:
        return "ru"
    norm = normalize(text)
    words = tokens(norm)
    if not words:
        return None
    if has_cyrillic(norm) and (not has_latin(norm) or sum(has_cyrillic(w) for w in words) * 2 >= len(words)):
        if _I_LETTER.search(raw):  # і is both Kazakh and Ukrainian
            uk_hits = sum(w in lexicon().language_words.get("uk", frozenset()) for w in words)
            kk_hits = sum(w in _KAZAKH_HINTS for w in words)
            return "kk" if kk_hits > uk_hits and "kk" in languages else "ru"
        kk_hits = sum(w in _KAZAKH_HINTS for w in words)
        ru_hits = sum(w in lexicon().language_words.get("ru", frozenset()) for w in words)
        if kk_hits > ru_hits and "kk" in languages:
            return "kk"
        return "ru" if "ru" in languages else None
    if has_latin(norm):
        translit_hits = sum(w in _TRANSLIT_HINTS for w in words)
        en_words = lexicon().language_words.get("en", frozenset())
        en_hits = sum(w in en_words for w in words)
        cyr = tokens(latin_to_cyrillic(norm))
        ru_hits = sum(w in lexicon().language_words.get("ru", frozenset()) for w in cyr)
        if translit_hits + ru_hits > en_hits and "ru" in languages:
            return "ru"
        return "en" if "en" in languages else None
    return None


def choose_language(
    stored: str | None,
    telegram_code: str | None,
    text: str,
    languages: tuple[str, ...],
    default: str,
) -> str:
    """The reply language for this message."""
    if stored in languages:
        return stored
    if telegram_code:
        code = telegram_code.split("-")[0].lower()
        if code in languages:
            return code
        if code in ("uk", "be") and "ru" in languages:
            return "ru"
    return detect_language(text, languages) or default


class Texts:
    """UI texts of one FAQ version; a missing key falls back to the default language, then the key."""

    def __init__(self, ui: Mapping[str, Mapping[str, str]], default: str) -> None:
        self._ui = ui
        self._default = default

    def get(self, key: str, lang: str) -> str:
        texts = self._ui.get(key, {})
        return texts.get(lang) or texts.get(self._default) or key

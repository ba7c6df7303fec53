"""Language knowledge shipped with the code: stopwords, small-talk words, off-topic words (crisis
wording is bot/data/crisis.yaml).

Loaded once from bot/data/lexicon.yaml and folded the same way as user text, so one list covers
"сәлем" and "салем", "здравствуйте" and "zdravstvuyte".
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from bot.normalize import latin_to_cyrillic, normalize, tokens


@dataclass(frozen=True)
class Lexicon:
    stopwords: frozenset[str]
    smalltalk: dict[str, frozenset[str]]
    language_words: dict[str, frozenset[str]]  # stopwords per language, for language detection
    off_topic: tuple[str, ...] = ()  # stems of words that name other services (weather, a driving licence...)


def _words(text: str) -> list[str]:
    norm = normalize(text)
    out = tokens(norm)
    if any("a" <= ch <= "z" for ch in norm):
        out += tokens(latin_to_cyrillic(norm))
    return out


@lru_cache(maxsize=1)
def lexicon() -> Lexicon:
    raw = yaml.safe_load((Path(__file__).parent / "data" / "lexicon.yaml").read_text("utf-8"))
    per_lang = {lang: frozenset(tokens(normalize(text))) for lang, text in raw["stopwords"].items()}
    stop: set[str] = set()
    for lang, text in raw["stopwords"].items():
        stop.update(_words(text) if lang == "ru-lat" else per_lang[lang])
    smalltalk = {kind: frozenset(_words(text)) for kind, text in raw["smalltalk"].items()}
    return Lexicon(
        stopwords=frozenset(stop),
        smalltalk=smalltalk,
        language_words=per_lang,
        off_topic=tuple(sorted(set(_words(raw.get("off_topic", ""))))),
    )

"""Danger, violence and detention wording: these messages get emergency numbers before anything else.

Deliberately simple and over-inclusive: a false alarm costs a few extra lines of phone numbers, a
miss can cost much more. Rules live in bot/data/lexicon.yaml.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.lexicon import lexicon
from bot.normalize import has_latin, latin_to_cyrillic, normalize, tokens


@dataclass(frozen=True)
class Alarm:
    category: str  # detention | violence | danger
    entry_id: str  # the FAQ entry to show when the matcher has nothing better


def _stem_hits(word: str, stem: str) -> bool:
    # a short stem ("бет" from "бьет") must be the whole word, or it would match half the language
    return word == stem if len(stem) <= 3 else word.startswith(stem)


def _phrase_hits(words: list[str], phrase: tuple[str, ...]) -> bool:
    return all(any(_stem_hits(w, stem) for w in words) for stem in phrase)


def detect(text: str) -> Alarm | None:
    """The first safety category whose wording appears in the message, if any."""
    norm = normalize(text)
    words = tokens(norm)
    if has_latin(norm):
        words += tokens(latin_to_cyrillic(norm))
    if not words:
        return None
    for rule in lexicon().safety:
        if any(_phrase_hits(words, phrase) for phrase in rule.phrases):
            return Alarm(rule.category, rule.entry_id)
    return None

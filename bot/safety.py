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


def _keys(words: list[str]) -> frozenset[str]:
    """Every stem that hits one of these words: a short stem ("бет" from "бьет") only as the whole word,
    or it would match half the language; a longer one as any prefix. Phrase checks become set look-ups."""
    keys: set[str] = set()
    for w in words:
        if len(w) <= 3:
            keys.add(w)
        keys.update(w[:n] for n in range(4, len(w) + 1))
    return frozenset(keys)


def detect(text: str) -> Alarm | None:
    """The first safety category whose wording appears in the message, if any."""
    norm = normalize(text)
    words = tokens(norm)
    if has_latin(norm):
        words += tokens(latin_to_cyrillic(norm))
    if not words:
        return None
    keys = _keys(words)
    for rule in lexicon().safety:
        if any(all(stem in keys for stem in phrase) for phrase in rule.phrases):
            return Alarm(rule.category, rule.entry_id)
    return None

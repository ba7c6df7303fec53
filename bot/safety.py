"""Danger, violence and detention wording: these messages get emergency numbers before anything else.

Deliberately simple and over-inclusive: a false alarm costs a few extra lines of phone numbers, a
miss can cost much more. Rules live in bot/data/lexicon.yaml.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from bot.lexicon import lexicon
from bot.normalize import has_latin, latin_to_cyrillic, normalize, tokens


@dataclass(frozen=True)
class Alarm:
    category: str  # detention | violence | danger
    entry_id: str  # the FAQ entry to show when the matcher has nothing better


@lru_cache(maxsize=8192)
def _word_keys(w: str) -> frozenset[str]:
    """Every stem that hits this word: a short stem ("бет" from "бьет") only as the whole word, or it
    would match half the language; a longer one as any prefix."""
    keys = {w[:n] for n in range(4, len(w) + 1)}
    if len(w) <= 3:
        keys.add(w)
    return frozenset(keys)


def _keys(words: list[str]) -> frozenset[str]:
    """The stems of every word: phrase checks become set look-ups."""
    return frozenset().union(*map(_word_keys, words))


@lru_cache(maxsize=1)
def _by_first_stem() -> dict[str, list[tuple[int, tuple[str, ...]]]]:
    """Safety phrases indexed by their first stem: a message is checked only against the phrases
    whose first stem it contains."""
    index: dict[str, list[tuple[int, tuple[str, ...]]]] = {}
    for order, rule in enumerate(lexicon().safety):
        for phrase in rule.phrases:
            index.setdefault(phrase[0], []).append((order, phrase))
    return index


def detect(text: str) -> Alarm | None:
    """The first safety category whose wording appears in the message, if any."""
    norm = normalize(text)
    words = tokens(norm)
    if has_latin(norm):
        words += tokens(latin_to_cyrillic(norm))
    if not words:
        return None
    keys = _keys(words)
    index = _by_first_stem()
    hit = min(
        (
            order
            for key in keys & index.keys()  # only the stems that start a phrase
            for order, phrase in index[key]
            if all(stem in keys for stem in phrase)
        ),
        default=None,
    )
    if hit is None:
        return None
    rule = lexicon().safety[hit]
    return Alarm(rule.category, rule.entry_id)

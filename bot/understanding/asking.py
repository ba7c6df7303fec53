"""The part of a long message that asks: sentences and clauses with a question mark or a question word.

People write a story and then ask ("I came three days ago, they are looking for me at home... where
do I apply?"). The story's words pull a bag-of-words model towards whatever the story mentions; the
asking part says what they want. `weighted_parts` splits a message into sentences and clauses and
gives each a weight: the asking parts 1, the story `STORY_WEIGHT`. A message of one part, or one
in which no part asks, is weighed evenly (weight 1 everywhere), so short messages are unchanged.
Pure: no I/O.
"""

from __future__ import annotations

import re

from bot.normalize import normalize, tokens

STORY_WEIGHT = 0.35  # a story part's weight beside an asking part's 1.0
MIN_WORDS = 8  # a message shorter than this is one part, whatever its punctuation

# sentence ends and clause breaks; the question mark stays with its sentence
_SENTENCE_RE = re.compile(
    r"(?<=[?？؟])|[.!。;\n]+|(?:,\s*(?=(?:но|а|и|поэтому|потом|однако|but|so|and then|бірақ|сондықтан|але|тому)\b))"
)

# question words and particles, folded as `tokens` folds them (қ→к, і→и, ь dropped)
QUESTION_WORDS = frozenset(
    [
        "как",
        "какой",
        "какая",
        "какие",
        "каким",
        "где",
        "куда",
        "откуда",
        "когда",
        "сколько",
        "зачем",
        "почему",
        "что",
        "чего",
        "чем",
        "кто",
        "кому",
        "кого",
        "можно",
        "ли",
        "нужно",
        "надо",
        "могу",
        "может",
        "могут",
        "должен",
        "обязан",
        "подскажите",
        "скажите",
        "объясните",
        "помогите",
        "посоветуйте",
        "разве",
        "неужели",
        "правда",
        "калай",
        "кандай",
        "кайда",
        "кашан",
        "канша",
        "неге",
        "нени",
        "ким",
        "кимге",
        "бола",
        "ма",
        "ме",
        "ба",
        "бе",
        "па",
        "пе",
        "how",
        "what",
        "where",
        "when",
        "which",
        "who",
        "whom",
        "why",
        "як",
        "який",
        "яка",
        "яки",
        "де",
        "куди",
        "коли",
        "скилки",
        "навищо",
        "чому",
        "чи",
        "можна",
        "треба",
        "потрибно",
        "пидкажит",
        "kak",
        "gde",
        "kuda",
        "kogda",
        "skolko",
        "zachem",
        "pochemu",
        "chto",
        "mozhno",
        "nuzhno",
        "mogu",
    ]
)
# English auxiliaries ask only at the start of a clause ("can I...", "is it...")
LEADING_QUESTION_WORDS = frozenset(
    ["can", "could", "should", "must", "may", "is", "are", "do", "does", "will", "would", "need", "am"]
)


def _marked(part: str) -> bool:
    return "?" in part or "？" in part


def _asks(part: str, strict: bool = False) -> bool:
    """Does the part ask? A question mark, or a question word; `strict` (the message has question
    marks elsewhere): a question word only at the start of the part, since in the middle of a story
    что, где, можно, могу are mostly not questions ("работаем где придется")."""
    if _marked(part):
        return True
    words = tokens(normalize(part))
    if not words:
        return False
    if words[0] in LEADING_QUESTION_WORDS or words[0] in QUESTION_WORDS:
        return True
    return not strict and any(w in QUESTION_WORDS for w in words)


def split_parts(text: str) -> list[str]:
    """Sentences and clauses, in order, without empty ones."""
    return [p.strip() for p in _SENTENCE_RE.split(text) if p and p.strip()]


def weighted_parts(text: str) -> list[tuple[str, float]]:
    """(part, weight) for each sentence or clause; see the module docstring."""
    if len(text.split()) < MIN_WORDS:
        return [(text, 1.0)]
    parts = split_parts(text)
    if len(parts) < 2:
        return [(text, 1.0)]
    strict = any(_marked(p) for p in parts)
    asking = [_asks(p, strict) for p in parts]
    if not any(asking) or all(asking):
        return [(p, 1.0) for p in parts]
    return [(p, 1.0 if a else STORY_WEIGHT) for p, a in zip(parts, asking, strict=True)]


def asking_text(text: str) -> str:
    """Only the asking parts of a long message (the whole message when no part stands out)."""
    parts = weighted_parts(text)
    kept = [p for p, w in parts if w >= 1.0]
    return " ".join(kept) if kept else text

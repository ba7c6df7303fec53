"""Typing noise for the ranker's training data: the FAQ's phrasings typed the way people type them.

Each function takes a text and a seeded `random.Random` and returns a variant; `variants` applies a
few of them at random to make a handful of noisy copies of one phrasing. Deterministic for a given
seed, so the same FAQ always trains the same model. Pure: no I/O.

What people do (from the issue's independent set and our own eval sets): hit a neighbouring key,
drop or double a letter, swap two, write an unstressed о as а or е as и, leave out ь/ъ, type Kazakh
letters as the nearest Russian ones (қ→к, ә→а), write Russian in Latin letters in one of several
habits ("zh"/"j", "kh"/"x"/"h", "sh"/"w"), and run words together.
"""

from __future__ import annotations

import random
from collections.abc import Callable

_ROWS_RU = ("йцукенгшщзхъ", "фывапролджэ", "ячсмитьбю")
_ROWS_EN = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _neighbours(rows: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for r, row in enumerate(rows):
        for i, ch in enumerate(row):
            near = [row[j] for j in (i - 1, i + 1) if 0 <= j < len(row)]
            for other in (r - 1, r + 1):
                if 0 <= other < len(rows):
                    near += [rows[other][j] for j in (i - 1, i, i + 1) if 0 <= j < len(rows[other])]
            out[ch] = "".join(near)
    return out


NEIGHBOURS = {**_neighbours(_ROWS_RU), **_neighbours(_ROWS_EN)}
KAZAKH_AS_RUSSIAN = str.maketrans(
    {"ә": "а", "ғ": "г", "қ": "к", "ң": "н", "ө": "о", "ұ": "у", "ү": "у", "һ": "х", "і": "и"}
)
VOWEL_SLIPS = {"о": "а", "а": "о", "е": "и", "и": "е", "я": "е", "э": "е"}

# Russian in Latin letters: common habits, one chosen per text (people are consistent within a message)
_TRANSLIT_BASE = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "з": "z", "и": "i", "й": "y",
    "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t", "у": "u",
    "ф": "f", "ы": "y", "э": "e", "ъ": "", "ь": "",
    "ә": "a", "ғ": "g", "қ": "k", "ң": "n", "ө": "o", "ұ": "u", "ү": "u", "һ": "h", "і": "i",
}  # fmt: skip
TRANSLIT_STYLES: tuple[dict[str, str], ...] = (
    {**_TRANSLIT_BASE, "ж": "zh", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch", "ю": "yu", "я": "ya"},
    {**_TRANSLIT_BASE, "ж": "j", "х": "x", "ц": "c", "ч": "ch", "ш": "sh", "щ": "sh", "ю": "yu", "я": "ya"},
    {**_TRANSLIT_BASE, "ж": "zh", "х": "h", "ц": "c", "ч": "ch", "ш": "sh", "щ": "sch", "ю": "ju", "я": "ja",
     "й": "j", "ь": "'"},
    {**_TRANSLIT_BASE, "ж": "j", "х": "h", "ц": "ts", "ч": "ch", "ш": "w", "щ": "w", "ю": "iu", "я": "ia",
     "ы": "i", "й": "i"},
)  # fmt: skip


def _letter_positions(text: str) -> list[int]:
    return [i for i, ch in enumerate(text) if ch.isalpha()]


def neighbour_key(text: str, rng: random.Random) -> str:
    """One letter replaced by a neighbouring key (ЙЦУКЕН or QWERTY)."""
    spots = [i for i in _letter_positions(text) if text[i].lower() in NEIGHBOURS]
    if not spots:
        return text
    i = rng.choice(spots)
    return text[:i] + rng.choice(NEIGHBOURS[text[i].lower()]) + text[i + 1 :]


def drop_letter(text: str, rng: random.Random) -> str:
    spots = [i for i in _letter_positions(text) if i > 0 and text[i - 1].isalpha()]  # keep first letters
    if not spots:
        return text
    i = rng.choice(spots)
    return text[:i] + text[i + 1 :]


def double_letter(text: str, rng: random.Random) -> str:
    spots = _letter_positions(text)
    if not spots:
        return text
    i = rng.choice(spots)
    return text[: i + 1] + text[i] + text[i + 1 :]


def swap_letters(text: str, rng: random.Random) -> str:
    spots = [i for i in _letter_positions(text) if i + 1 < len(text) and text[i + 1].isalpha()]
    if not spots:
        return text
    i = rng.choice(spots)
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


def vowel_slip(text: str, rng: random.Random) -> str:
    """An unstressed vowel written as it sounds: о→а, а→о, е→и, и→е, я→е."""
    spots = [i for i, ch in enumerate(text) if ch in VOWEL_SLIPS]
    if not spots:
        return text
    i = rng.choice(spots)
    return text[:i] + VOWEL_SLIPS[text[i]] + text[i + 1 :]


def drop_signs(text: str, rng: random.Random) -> str:
    """ь and ъ left out (and й typed as и, ё as е, as on a phone without them)."""
    del rng
    return text.replace("ь", "").replace("ъ", "").replace("ё", "е")


def kazakh_as_russian(text: str, rng: random.Random) -> str:
    """Kazakh letters typed as the nearest Russian ones (a keyboard without the Kazakh layout)."""
    del rng
    return text.translate(KAZAKH_AS_RUSSIAN)


def to_latin(text: str, rng: random.Random) -> str:
    """Cyrillic written in Latin letters, in one of several habits."""
    style = rng.choice(TRANSLIT_STYLES)
    return "".join(style.get(ch, style.get(ch.lower(), ch)) for ch in text)


def run_together(text: str, rng: random.Random) -> str:
    """Two neighbouring words written as one ("какподать")."""
    spaces = [i for i, ch in enumerate(text) if ch == " "]
    if not spaces:
        return text
    i = rng.choice(spaces)
    return text[:i] + text[i + 1 :]


def drop_word(text: str, rng: random.Random) -> str:
    """A word left out (short, clipped messages)."""
    words = text.split()
    if len(words) < 3:
        return text
    del words[rng.randrange(len(words))]
    return " ".join(words)


Noise = Callable[[str, random.Random], str]
TYPOS: tuple[Noise, ...] = (neighbour_key, drop_letter, double_letter, swap_letters, vowel_slip)
OTHER: tuple[Noise, ...] = (drop_signs, run_together, drop_word)


def has_cyrillic(text: str) -> bool:
    return any("а" <= ch <= "я" or ch in "ёәғқңөұүһі" for ch in text.lower())


def noisy(text: str, rng: random.Random, typos: int = 2) -> str:
    """One noisy copy: up to `typos` typing slips, sometimes a sign dropped or words run together."""
    out = text.lower()
    for _ in range(rng.randint(1, max(1, typos))):
        out = rng.choice(TYPOS)(out, rng)
    if rng.random() < 0.3:
        out = rng.choice(OTHER)(out, rng)
    return out


def variants(text: str, rng: random.Random, count: int = 3) -> list[str]:
    """`count` noisy copies of a phrasing; a Cyrillic one also gets a Kazakh-as-Russian copy (when it
    changes anything) and a copy in Latin letters."""
    out = [noisy(text, rng) for _ in range(count)]
    if has_cyrillic(text):
        plain = kazakh_as_russian(text.lower(), rng)
        if plain != text.lower():
            out.append(plain)
        latin = to_latin(text.lower(), rng)
        out.append(noisy(latin, rng, typos=1) if rng.random() < 0.5 else latin)
    return out

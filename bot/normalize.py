"""Text normalisation for matching: what people type on cheap phones, folded to one comparable form.

Pipeline: NFKC, casefold, ё→е, control and format characters (zero-width joiners, RTL overrides)
dropped, emoji, symbols and punctuation turned into spaces, whitespace collapsed. `fold` then maps
Kazakh and Ukrainian letters to their nearest Russian ones, so "босқын" typed as "боскын" and
Ukrainian "біженець" land near Russian "беженец". `latin_to_cyrillic` reads Russian typed in Latin
letters ("kak poluchit status bezhenca").
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

MAX_INPUT_CHARS = 4_096  # Telegram's own message limit; anything longer is cut before any work

_KEEP_CATEGORIES = {"Lu", "Ll", "Lt", "Lm", "Lo", "Nd", "Mn", "Mc"}
_APOSTROPHES = "'’ʼ`´‘"

_FOLD = str.maketrans(
    {
        "ә": "а",
        "ғ": "г",
        "қ": "к",
        "ң": "н",
        "ө": "о",
        "ұ": "у",
        "ү": "у",
        "һ": "х",
        "і": "и",
        "ї": "и",
        "є": "е",
        "ґ": "г",
        "ў": "у",
        "ё": "е",
        "ъ": "",
        "ь": "",
    }
)


def _clean_char(ch: str) -> str:
    if ch.isspace():
        return " "
    if ch in _APOSTROPHES:
        return ""  # "м'ята", "don't": the apostrophe is part of the word
    cat = unicodedata.category(ch)
    if cat in _KEEP_CATEGORIES:
        return ch
    if cat in ("Cc", "Cf", "Cs", "Co", "Cn"):
        return ""  # controls, zero-width joiners, bidi overrides: invisible, never meaningful
    return " "  # punctuation, symbols, emoji


class _CleanTable(dict[int, str]):
    """`_clean_char` for str.translate, worked out once per character (translate runs in C); at most
    _CLEAN_CACHED characters are kept, so text full of rare characters cannot grow it without end."""

    def __missing__(self, code: int) -> str:
        out = _clean_char(chr(code))
        if len(self) < _CLEAN_CACHED:
            self[code] = out
        return out


_CLEAN_CACHED = 16_384
_CLEAN = _CleanTable()


# Lower-case letters and digits that every step below leaves as they are, in words one space apart:
# a text of only these is already a fixed point, and needs no second pass to prove it
_SETTLED = re.compile(r"(?:[a-z0-9а-яәғқңөұүһіїєґў]+(?: [a-z0-9а-яәғқңөұүһіїєґў]+)*)?")


@lru_cache(maxsize=512)  # one message is normalised by safety, the matcher and small talk alike
def normalize(text: str) -> str:
    """Fold case, width and punctuation away; idempotent; never raises on any str."""
    text = text[:MAX_INPUT_CHARS]
    for _ in range(3):  # casefold can un-normalise a few characters; settle to a fixed point
        folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
        folded = folded.replace("ё", "е")
        cleaned = folded.translate(_CLEAN)
        cleaned = " ".join(cleaned.split())
        # combining marks left alone at a word start (after stripping) mean nothing to a reader
        cleaned = re.sub(r"(^|\s)[\u0300-\u036f]+", r"\1", cleaned).strip()
        cleaned = cleaned[:MAX_INPUT_CHARS].rstrip()  # NFKC can lengthen text ("½" → "1⁄2")
        if cleaned == text:
            break
        text = cleaned
        if _SETTLED.fullmatch(text):
            break
    return text


def fold(word: str) -> str:
    """Map Kazakh/Ukrainian-specific letters to Russian ones and drop ь/ъ (people often skip them)."""
    return word.translate(_FOLD)


_LATIN_RE = re.compile(r"[a-z]")
_CYRILLIC_RE = re.compile(r"[\u0400-\u04ff]")

# Longest first. Russian typed in Latin letters is not one standard: cover the common habits
# (ISO-ish "zh", Uzbek-style "j", "x" for х, "w" for ш, "c" for ц).
_TRANSLIT = [
    ("shch", "щ"),
    ("sch", "щ"),
    ("tsh", "ч"),
    ("zh", "ж"),
    ("kh", "х"),
    ("ts", "ц"),
    ("tz", "ц"),
    ("ch", "ч"),
    ("sh", "ш"),
    ("yu", "ю"),
    ("ya", "я"),
    ("yo", "е"),
    ("ye", "е"),
    ("yi", "ы"),
    ("ju", "ю"),
    ("ja", "я"),
    ("jo", "е"),
    ("iu", "ю"),
    ("ia", "я"),
    ("ck", "к"),
    ("ph", "ф"),
    ("a", "а"),
    ("b", "б"),
    ("c", "ц"),
    ("d", "д"),
    ("e", "е"),
    ("f", "ф"),
    ("g", "г"),
    ("h", "х"),
    ("i", "и"),
    ("j", "ж"),
    ("k", "к"),
    ("l", "л"),
    ("m", "м"),
    ("n", "н"),
    ("o", "о"),
    ("p", "п"),
    ("q", "к"),
    ("r", "р"),
    ("s", "с"),
    ("t", "т"),
    ("u", "у"),
    ("v", "в"),
    ("w", "ш"),
    ("x", "х"),
    ("y", "ы"),
    ("z", "з"),
    ("š", "ш"),
    ("č", "ч"),
    ("ž", "ж"),
]
_TRANSLIT_RE = re.compile("|".join(re.escape(k) for k, _ in _TRANSLIT))
_TRANSLIT_MAP = dict(_TRANSLIT)
_VOWELS_CYR = "аеиоуыэюя"


_FINAL_J_RE = re.compile(r"([" + _VOWELS_CYR + r"])[ыж]$")


@lru_cache(maxsize=16_384)
def _translit_word(word: str) -> str:
    out = _TRANSLIT_RE.sub(lambda m: _TRANSLIT_MAP[m.group(0)], word)
    # "y"/"j" after a vowel at a word end is й ("novyj", "moy"), and "yy"/"iy" endings are ый/ий
    return _FINAL_J_RE.sub(r"\1й", out)


def has_latin(text: str) -> bool:
    return bool(_LATIN_RE.search(text))


def has_cyrillic(text: str) -> bool:
    return bool(_CYRILLIC_RE.search(text))


def latin_to_cyrillic(text: str) -> str:
    """Read Latin-letter words as transliterated Russian; other words are kept as they are."""
    return " ".join(_translit_word(w) if _LATIN_RE.search(w) else w for w in text.split())


_TOKEN_RE = re.compile(r"\w+")


def tokens(normalized: str) -> list[str]:
    """Words of a normalised text, folded; digits-only tokens are kept (e.g. '90 дней')."""
    return list(_tokens(normalized))


@lru_cache(maxsize=64)  # safety, small talk, language and the matcher each take a message's words
def _tokens(normalized: str) -> tuple[str, ...]:
    # folding first: a lone "ъ"/"ь" folds to nothing and is then no word at all
    return tuple(t for t in _TOKEN_RE.findall(fold(normalized)) if t != "_")

"""Crisis recognition: does a message speak of danger to life now, and of which kind?

A miss here is the worst failure the bot can have and a false alarm costs a few lines, so the rules
are written wide. They live in bot/data/crisis.yaml as concepts, not as one word list: each rule is a
set of slots that must all be present, a slot being alternatives of word stems in every language the
bot reads (Russian, Ukrainian, Kazakh in either alphabet, English, Russian in Latin letters).

How a message word meets a stem, after normalisation (case, Kazakh and Ukrainian letters folded):
- a stem of 1–3 letters only as the whole word ("бет", folded "бьет", is not "бетон");
- a longer stem as the start of a word ("избива" in "избивает"), with one typo allowed from 5 letters
  on (a letter missing, doubled, swapped or wrong: "избевает", "изибвает");
- inside a long word, for words typed together ("хочуумереть");
- Latin words both as written (English) and transliterated (Russian in Latin letters).

Before matching, everyday phrases that borrow crisis words ("убить время", "kill time", "my phone
died") are taken out. A rule whose trigger word follows a negation within three words ("никто не бьет") does not fire.
Danger that lies in the past and is told as the reason for fleeing ("меня избивали дома, поэтому я
уехал, как подать на убежище") is the asylum question it is, unless the message also says it is
happening now; self-harm, medical and nowhere-to-sleep messages are never set aside this way.

The learned model (crisis_model.py) sits beside the rules: it finds the crisis where no rule stands
("he knows where we live") and overrules a rule when it is sure the message is calm ("how can I tell
if someone is thinking about suicide? asking in general"); see `detect`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import yaml

from bot.normalize import has_latin, latin_to_cyrillic, normalize, tokens
from bot.understanding import crisis_model

DATA = Path(__file__).resolve().parent.parent / "data" / "crisis.yaml"
_FUZZY_MIN = 7  # stems at least this long also meet a word with one typo (Latin: 5)
_FUZZY_MIN_LATIN = 5
_RUN_TOGETHER = 9  # a word this long is searched inside for stems of 6+ letters...
_NEGATION_REACH = (
    3  # "не", "no", "никто" up to this many words before a trigger cancel it ("no, I don't need an ambulance")
)
_RUN_ON = 14  # ...and one this long (surely words typed together) for stems of 3+


@dataclass(frozen=True)
class Crisis:
    category: str  # the first category that matched, by the order in crisis.yaml
    categories: tuple[str, ...]  # every category that matched, in that order
    entry_id: str  # the FAQ entry that belongs to the category
    learned: bool = False  # found by the model alone, no rule standing (crisis_model.py)


@dataclass(frozen=True)
class _Rule:
    category: str
    slots: tuple[frozenset[str], ...]  # every slot must be met; a slot is met by any of its stems
    weak: bool = False  # "~" in crisis.yaml: a general question or a past story sets it aside


@dataclass(frozen=True)
class _Category:
    name: str
    entry: str
    show_entry: bool
    past_can_excuse: bool  # told as the reason for fleeing, with no sign of "now": not an alarm


@dataclass(frozen=True)
class _Rules:
    categories: tuple[_Category, ...]
    rules: tuple[_Rule, ...]
    phrases: _Phrases  # alternatives of several words: the words in a row
    by_stem: dict[str, tuple[int, ...]]  # stem -> rules that have it in a slot
    stems: frozenset[str]
    longest_fuzzy: int  # the longest stem that meets a word with one typo
    long_stems_by_len: dict[int, frozenset[str]]  # stems of 4+ letters, for words typed together
    deletes: dict[str, frozenset[str]]  # one-deletion variants of 5+-letter stems -> stems
    neutral: _Phrases  # everyday phrases taken out before matching
    negations: frozenset[str]
    past: _Phrases  # phrases that tell a story of the past / of fleeing
    now: _Phrases  # phrases that say it is happening now
    general: _Phrases  # phrases of a general question ("can police detain…", "is it free")
    bare_cry: frozenset[str]  # "help", "SOS"...: alone (with filler) they are a cry for help
    filler: frozenset[str]  # words that may stand beside a bare cry


def _fold(word: str) -> str:
    """й as и: transliteration writes "soboi" for "собой", typists "хочю" for "хочу" only rarely."""
    return word.replace("й", "и")


def _stem(text: str) -> list[str]:
    """A rule's stem as it meets message words; "=word" (only the whole word) keeps its mark."""
    exact = text.strip().startswith("=")
    words = [_fold(w) for w in tokens(normalize(text))]
    return ["=" + words[0]] if exact and len(words) == 1 else words


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


@lru_cache(maxsize=1)
def rules() -> _Rules:
    """bot/data/crisis.yaml, read once."""
    raw = yaml.safe_load(DATA.read_text("utf-8"))
    categories: list[_Category] = []
    out: list[_Rule] = []
    for name, spec in raw["categories"].items():
        categories.append(
            _Category(
                name=name,
                entry=str(spec["entry"]),
                show_entry=bool(spec.get("show_entry", True)),
                past_can_excuse=bool(spec.get("past_can_excuse", False)),
            )
        )
        for line in spec.get("rules") or []:
            text = str(line).strip()
            weak = text.startswith("~")
            slots = []
            for slot in text.lstrip("~").split("+"):
                stems = frozenset(" ".join(_stem(alt)) for alt in slot.split("|") if _stem(alt))
                if stems:
                    slots.append(stems)
            if slots:
                out.append(_Rule(name, tuple(slots), weak))
    phrases = tuple(sorted({tuple(p.split()) for rule in out for group in rule.slots for p in group if " " in p}))
    by_stem: dict[str, list[int]] = {}
    for i, rule in enumerate(out):
        for rule_slot in rule.slots:
            for stem in rule_slot:
                by_stem.setdefault(stem, []).append(i)
    stems = frozenset(s for s in by_stem if " " not in s)
    deletes: dict[str, set[str]] = {}
    for s in stems:
        if not s.startswith("=") and len(s) >= (_FUZZY_MIN_LATIN if s.isascii() else _FUZZY_MIN):
            for d in _deletions(s) | {s}:
                deletes.setdefault(d, set()).add(s)
    long_by_len: dict[int, set[str]] = {}
    for s in stems:
        if len(s) >= 3 and not s.startswith("="):
            long_by_len.setdefault(len(s), set()).add(s)

    def words(key: str) -> frozenset[str]:
        return frozenset(w for item in raw.get(key) or [] for w in _stem(str(item)))

    return _Rules(
        categories=tuple(categories),
        rules=tuple(out),
        phrases=_Phrases(phrases),
        by_stem={s: tuple(v) for s, v in by_stem.items()},
        stems=stems,
        longest_fuzzy=max((len(s) for s in deletes.get("", ()) or ()), default=0) or max(map(len, deletes), default=0),
        long_stems_by_len={n: frozenset(v) for n, v in long_by_len.items()},
        deletes={d: frozenset(v) for d, v in deletes.items()},
        neutral=_Phrases(tuple(_stem(str(x))) for x in raw.get("neutral") or []),
        negations=words("negations"),
        past=_Phrases(tuple(_stem(str(x))) for x in raw.get("past") or []),
        now=_Phrases(tuple(_stem(str(x))) for x in raw.get("now") or []),
        general=_Phrases(tuple(_stem(str(x))) for x in raw.get("general") or []),
        bare_cry=words("bare_cry"),
        filler=words("filler"),
    )


@lru_cache(maxsize=16_384)
def _stems_of(word: str) -> frozenset[str]:
    """Every rule stem this one word meets (see the module docstring)."""
    r = rules()
    hit: set[str] = set()
    if word in r.stems:
        hit.add(word)
    if "=" + word in r.stems:
        hit.add("=" + word)
    for n in range(4, len(word) + 1):
        prefix = word[:n]
        if prefix in r.stems:
            hit.add(prefix)
    # one typo, in stems of 7+ letters (Latin 5+), the first two letters right (a slip rarely starts a word), and
    # never in a word the bot knows as filler ("помогите" is not a slip of "пологи")
    if word not in r.filler and word not in r.bare_cry:
        for n in range(_FUZZY_MIN_LATIN - 1, min(len(word), r.longest_fuzzy + 1) + 1):
            prefix = word[:n]
            for d in _deletions(prefix) | {prefix}:
                for s in r.deletes.get(d, ()):
                    if abs(len(s) - n) <= 1 and s[:2] == word[:2]:
                        hit.add(s)
    if len(word) >= _RUN_TOGETHER:
        shortest = 3 if len(word) >= _RUN_ON else 6
        for n, group in r.long_stems_by_len.items():
            if n < shortest:
                continue
            for i in range(1, len(word) - n + 1):
                if word[i : i + n] in group:
                    hit.add(word[i : i + n])
    return frozenset(hit)


def _without_neutral(words: list[str], neutral: _Phrases) -> list[str]:
    """The words with everyday phrases ("убить время") taken out (a phrase's words in a row, each
    word starting with the phrase's stem)."""
    drop: set[int] = set()
    for i, phrase in _occurrences(words, neutral, prefixes=True):
        drop.update(range(i, i + len(phrase)))
    return [w for i, w in enumerate(words) if i not in drop] if drop else words


def _readings(text: str) -> list[list[str]]:
    """The message's words as written and, when it has Latin letters, transliterated."""
    norm = normalize(text)
    out = [[_fold(w) for w in tokens(norm)]]
    if has_latin(norm):
        out.append([_fold(w) for w in tokens(latin_to_cyrillic(norm))])
    return out


def _meets(word: str, stem: str) -> bool:
    """One word of a phrase: a short stem as the whole word, a longer one as its start."""
    if stem.startswith("="):
        return word == stem[1:]
    return word == stem if len(stem) <= 3 else word.startswith(stem)


def _matched(words: list[str], r: _Rules) -> list[int]:
    """The rules whose slots are all met, a rule not counting when its first slot's word follows a
    negation ("не бьет")."""
    per_word = [_stems_of(w) for w in words]
    met: set[str] = set().union(*per_word) if per_word else set()
    negated: set[str] = set()
    for i, phrase in _occurrences(words, r.phrases):
        key = " ".join(phrase)
        met.add(key)
        before = words[max(0, i - _NEGATION_REACH) : i]
        if phrase[0] not in r.negations and any(w in r.negations for w in before):
            negated.add(key)
    for i, found in enumerate(per_word):
        if found and any(w in r.negations for w in words[max(0, i - _NEGATION_REACH) : i]):
            negated |= found
    hits: list[int] = []
    candidates = sorted({i for s in met for i in r.by_stem.get(s, ())})
    for i in candidates:
        rule = r.rules[i]
        if all(slot & met for slot in rule.slots):
            head = rule.slots[0] & met
            if head and head <= negated and not (rule.slots[0] & r.negations):
                continue
            hits.append(i)
    return hits


def _bare_cry(words: list[str], r: _Rules) -> bool:
    """A cry for help with nothing else in it ("помогите!!!", "SOS", "help me please")."""
    if len(words) == 1 and len(words[0]) >= _RUN_TOGETHER and any(c in words[0] for c in r.bare_cry if len(c) >= 4):
        return True  # typed together: "pleasehelpme", "помогитесрочно"
    if not words or not any(w in r.bare_cry or w.startswith(tuple(r.bare_cry)) for w in words):
        return False
    return all(w in r.filler or w in r.bare_cry or w.startswith(tuple(r.bare_cry)) or w.isdigit() for w in words)


@lru_cache(maxsize=16_384)
def _starts(word: str) -> frozenset[str]:
    """The word and all its beginnings: a phrase can stand in a message only if each of its stems is
    among these for some word."""
    return frozenset(word[:n] for n in range(1, len(word) + 1))


class _Phrases:
    """Phrases of stems, indexed by their longest stem: a message looks only at the phrases whose
    longest stem starts one of its words, not at all of them."""

    def __init__(self, phrases: Iterable[tuple[str, ...]]) -> None:
        self.by_key: dict[str, list[tuple[str, ...]]] = {}
        for phrase in phrases:
            if phrase:
                key = max((stem.lstrip("=") for stem in phrase), key=len)
                self.by_key.setdefault(key, []).append(phrase)

    def __bool__(self) -> bool:
        return bool(self.by_key)


def _occurrences(words: list[str], phrases: _Phrases, prefixes: bool = False) -> list[tuple[int, tuple[str, ...]]]:
    """Where each phrase stands in the words, word after word (at its first place)."""
    if not words:
        return []
    present = frozenset().union(*map(_starts, words))
    out: list[tuple[int, tuple[str, ...]]] = []
    for key in present & phrases.by_key.keys():
        for phrase in phrases.by_key[key]:
            n = len(phrase)
            for i in range(len(words) - n + 1):
                if all(
                    words[i + j].startswith(phrase[j]) if prefixes else _meets(words[i + j], phrase[j])
                    for j in range(n)
                ):
                    out.append((i, phrase))
                    break
    return out


def _has(words: list[str], phrases: _Phrases) -> bool:
    """Does one of the phrases stand in the words?"""
    return bool(_occurrences(words, phrases))


def _by_rules(text: str) -> list[str]:
    """The categories the rules find, in priority order."""
    r = rules()
    strong: set[str] = set()
    weak: set[str] = set()
    excused = False
    for raw_words in _readings(text):
        words = _without_neutral(raw_words, r.neutral)
        for i in _matched(words, r):
            rule = r.rules[i]
            (weak if rule.weak else strong).add(rule.category)
        if _bare_cry(raw_words, r):
            strong.add("help")
        urgent_now = _has(words, r.now)
        if not urgent_now and (_has(words, r.past) or _has(words, r.general)):
            excused = True
    if excused:
        keep = {c.name for c in r.categories if not c.past_can_excuse}
        strong &= keep
    else:
        strong |= weak
    return [c.name for c in r.categories if c.name in strong]


def detect(text: str, learned: bool = True) -> Crisis | None:
    """The crisis the message speaks of, or None (`learned=False`: the rules alone).

    With the model: rules that fire are overruled only when the model is sure the message is calm
    (its margin below crisis_model.VETO: "how can I recognise suicidal thoughts, asking in general");
    where no rule stands (none fired, or the rules set a past story aside), the model's category is
    taken above crisis_model.THRESHOLD (LIFE_THRESHOLD, lower, for suicide and medical). Of several categories, suicide
    and medical keep their place first; otherwise the model's reading of the whole message leads
    (it tells "he beats me at home" from a street attack better than single words do)."""
    found = _by_rules(text)
    model = crisis_model.shipped() if learned else None
    if model is None:
        return _crisis(found)
    category, value = crisis_model.margin(model, text)
    if found:
        if value < crisis_model.VETO:
            return None
        if found[0] not in LIFE_FIRST and category in category_names():
            found = [category, *(c for c in found if c != category)]
        return _crisis(found)
    if value <= (crisis_model.LIFE_THRESHOLD if category in LIFE_FIRST else crisis_model.THRESHOLD):
        return None
    found_by_model = _crisis([category])
    return None if found_by_model is None else replace(found_by_model, learned=True)


LIFE_FIRST = ("suicide", "medical")  # when the rules find these, their reply comes first whatever else


def _crisis(found: list[str]) -> Crisis | None:
    if not found:
        return None
    entry, _ = category_info(found[0])
    return Crisis(category=found[0], categories=tuple(found), entry_id=entry)


def category_info(name: str) -> tuple[str, bool]:
    """(FAQ entry, whether its answer is shown under the crisis text) of a category."""
    for c in rules().categories:
        if c.name == name:
            return c.entry, c.show_entry
    return "emergency", True


def category_names() -> tuple[str, ...]:
    return tuple(c.name for c in rules().categories)

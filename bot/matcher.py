"""Maps a user's message to FAQ entries, for messages as people really type them.

The score of an entry combines two questions, both weighted by how telling each word is (IDF over
entries):
- coverage: how much of the *message* does the entry explain? Words the FAQ never uses count
  against it, which is what lets "погода в Алматы" fall through to the fallback instead of
  matching the one entry that mentions Almaty.
- fit: how much of the entry's *best phrasing* (a question, keyword or title) does the message
  contain? This picks the right entry among those that explain the message.
Words are compared after normalisation and folding, so inflections ("статуса"), Kazakh suffixes
("босқындарға"), typos ("беженеца"), Ukrainian ("біженця") and Russian in Latin letters all land
on the FAQ's words: a word in Latin letters is read both as written (English) and transliterated
("poluchit" -> "получит"), and counts as the reading the FAQ knows better, word by word, so one
message can mix the two. Every language's questions are indexed together: the entry is language-free,
the answer is chosen later in the user's language.

The index is built once per FAQ version and is immutable; `match` is pure.
"""

from __future__ import annotations

import heapq
import math
import operator
import re
import sys
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache, partial
from itertools import chain, repeat
from operator import itemgetter
from typing import Any, NamedTuple

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein, Prefix

from bot.faq import FAQ
from bot.lexicon import lexicon
from bot.normalize import has_latin, latin_to_cyrillic, normalize, tokens

SYNONYM_DISCOUNT = 0.9  # a synonym is nearly, not quite, the word itself
_BLEND_TOP = 6  # token-stage candidates that get the character n-gram blend
# From this many entries the token stage runs on numpy arrays: common words then reach thousands of
# entries, too many to visit one by one in Python. Smaller FAQs (the shipped one has a few dozen) stay
# on plain dicts, which are faster there.
LARGE_FAQ = 1_000
# Phrase fits are summed for every phrasing at once on numpy arrays (one np.bincount, in the same order
# as the dicts would), which also bounds each entry by its best phrasing, so fewer entries need their
# fit worked out. Off only to test that the dict path gives the same results.
_ARRAY_FITS = True
# Up to this many cells (entries x n-grams, 8 bytes a cell: 16 MB) the n-gram blend scores on a dense
# numpy matrix (the shipped FAQ: about 0.4 million); beyond it, on dicts.
_DENSE_CELLS = 2_000_000
_VOWELS = re.compile(r"[аеиоуыэюяaeiouy]")


class Candidate(NamedTuple):  # a tuple, not a frozen dataclass: a dozen are made per message
    entry_id: str
    score: float
    coverage: float
    fit: float
    evidence: float = 0.0  # how many top-weight (max IDF) words of the message the entry explains


NO_REACH: tuple[tuple[str, ...], tuple[float, ...]] = ((), ())


class _Word(NamedTuple):
    """One message word as the token stage sees it."""

    weight: float  # how telling it is (IDF of the FAQ word it matches best, or the unknown weight)
    sims: tuple[tuple[str, float], ...]  # FAQ words close to it, with their similarity
    off_topic: bool  # it names another service
    # (entries, weight * best similarity of each) (small FAQs only): two tuples, not a tuple of pairs,
    # 2 MB less in the word cache of the shipped FAQ
    reach: tuple[tuple[str, ...], tuple[float, ...]]


@dataclass(frozen=True)
class MatcherParams:
    """Shape of the score; decision thresholds live in config.yaml (they are policy, not language)."""

    coverage_weight: float = 0.6  # score = coverage^w * fit^(1-w)
    unknown_weight: float = 2.0  # weight of a word the FAQ never uses, as a share of the top IDF
    off_topic_weight: float = 4.0  # weight of a word that names another service (lexicon's off_topic)
    min_similarity: float = 0.72
    whole_weight: float = 0.0  # phrase fit = (phrase covered)^(1-x) * (message explained by it)^x
    synonym_similarity: float = 0.86
    ngram_weight: float = 0.5  # blend with character 3/4-gram TF-IDF cosine (morphology, spelling)
    ngram_scale: float = 1.5


_TF = [0.0] + [1 + math.log(c) for c in range(1, 64)]  # a gram's weight for its count (1 + log c)


def _rank(c: Candidate) -> tuple[float, str]:
    return (-c.score, c.entry_id)


@lru_cache(maxsize=65_536)
def _word_grams(t: str) -> tuple[str, ...]:
    # interned: the same few thousand grams recur across the FAQ's words, and the cache holds each once
    # (9.5 MB -> 4.1 MB for the shipped FAQ's words)
    w = f" {t} "
    return tuple(sys.intern(w[i : i + n]) for n in (3, 4) for i in range(len(w) - n + 1))


def _grams(terms: list[str] | tuple[str, ...]) -> Counter[str]:
    """Character 3- and 4-grams of the words, with the word's edges ("беженец" -> " бе", "нец ")."""
    return Counter(chain.from_iterable(map(_word_grams, terms)))


@lru_cache(maxsize=65_536)
def _skeleton(word: str) -> str:
    return _VOWELS.sub("", word)


@lru_cache(maxsize=65_536)
def _shape(word: str) -> str:
    return _VOWELS.sub("*", word)


# Kazakh is agglutinative: plural, possessive and case endings stack ("куәлігінің" = of his/her
# certificate). Folded spellings (қ→к, ә→а, і→и), longest first.
_KK_SUFFIXES = sorted(
    [
        "лар",
        "лер",
        "дар",
        "дер",
        "тар",
        "тер",
        "нын",
        "нин",
        "дын",
        "дин",
        "тын",
        "тин",
        "ымыз",
        "имиз",
        "ыныз",
        "иниз",
        "мыз",
        "миз",
        "ныз",
        "низ",
        "нда",
        "нде",
        "нан",
        "нен",
        "дан",
        "ден",
        "тан",
        "тен",
        "нга",
        "нге",
        "га",
        "ге",
        "ка",
        "ке",
        "на",
        "не",
        "да",
        "де",
        "та",
        "те",
        "ны",
        "ни",
        "ды",
        "ди",
        "ты",
        "ти",
        "сы",
        "си",
        "мен",
        "бен",
        "пен",
        "ым",
        "им",
        "ын",
        "ин",
        "ыз",
        "из",
        "ы",
        "и",
        "а",
        "е",
        "м",
        "н",
    ],
    key=len,
    reverse=True,
)


# the same suffixes by their last letter (longest first, as above): a word is tried only against those
_KK_BY_LAST: dict[str, tuple[str, ...]] = {
    last: tuple(s for s in _KK_SUFFIXES if s[-1] == last) for last in {s[-1] for s in _KK_SUFFIXES}
}


@lru_cache(maxsize=65_536)
def kazakh_stem(word: str) -> str:
    """Strip stacked Kazakh endings (at most three) and undo к→г / п→б voicing before them."""
    stem = word
    for _ in range(3):
        for suffix in _KK_BY_LAST.get(stem[-1:], ()):
            if stem.endswith(suffix) and len(stem) - len(suffix) >= 4:
                stem = stem[: -len(suffix)]
                break
        else:
            break
    if stem != word and stem[-1:] in ("г", "б"):
        stem = stem[:-1] + {"г": "к", "б": "п"}[stem[-1]]
    return stem


def similarity(q: str, t: str) -> float:
    """How likely two folded words are the same word: inflection, suffixes, typos, vowel slips."""
    if q == t:
        return 1.0
    lq, lt = len(q), len(t)
    mn, mx = min(lq, lt), max(lq, lt)
    if mn < 3:
        return 0.0
    cp = Prefix.similarity(q, t)  # length of the common beginning
    s = 0.0
    if mn >= 4 and cp >= 4:
        if cp == mn:  # one word continues the other: endings and agglutinated suffixes
            s = 0.78 + 0.2 * mn / mx
        elif cp >= mx - 3 or cp >= 0.7 * mx:  # same stem, different ending
            s = 0.75 + 0.2 * cp / mx
    if mn >= 4:
        lev = Levenshtein.normalized_similarity(q, t)
        if lev >= (0.8 if mn <= 5 else 0.75):
            s = max(s, lev)
    if s < 0.85 and mn >= 4 and cp >= 3:
        kq, kt = kazakh_stem(q), kazakh_stem(t)
        if len(kq) >= 4 and kq == kt:
            s = 0.85
    if abs(lq - lt) <= 2:
        sq = _skeleton(q)
        # vowels differ (Ukrainian и/і, Latin spelling, Kazakh vowels folded) or are left out; words of
        # one length must have their vowels in the same places ("doing" is not "dengi")
        if len(sq) >= 3 and sq == _skeleton(t) and cp >= 1 and (lq != lt or _shape(q) == _shape(t)):
            s = max(s, 0.8)
    return s


class _LengthBuckets:
    """Words grouped by a key (a first letter, two letters), each group ordered by length, so the
    words of one key within a range of lengths are one slice."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        groups: dict[str, list[str]] = defaultdict(list)
        for key, word in pairs:
            groups[key].append(word)
        self._words = {key: sorted(words, key=len) for key, words in groups.items()}
        self._lengths = {key: [len(w) for w in words] for key, words in self._words.items()}

    def get(self, key: str, shortest: int, longest: int) -> list[str]:
        words = self._words.get(key)
        if words is None:
            return []
        lengths = self._lengths[key]
        return words[bisect_left(lengths, shortest) : bisect_right(lengths, longest)]


class Index:
    """All phrasings of all entries, as folded content words with their weights."""

    def __init__(self, faq: FAQ, params: MatcherParams | None = None, warm: bool = True) -> None:
        self.params = params or MatcherParams()
        lex = lexicon()
        self._stop = lex.stopwords.union(*lex.smalltalk.values())
        self._off_exact = frozenset(s for s in lex.off_topic if len(s) <= 3)
        # stems of 4 letters or more, by their first four: a word is checked only against those
        self._off_stems: dict[str, tuple[str, ...]] = defaultdict(tuple)
        for stem in sorted(s for s in lex.off_topic if len(s) > 3):
            self._off_stems[stem[:4]] += (stem,)
        self._canon: dict[str, str] = {}
        for group in faq.synonyms:
            words = [w for w in (tokens(normalize(x)) for x in group) if len(w) == 1]
            if len(words) < 2:
                continue
            head = words[0][0]
            for (w,) in words:
                self._canon.setdefault(w, head)
            latin = [w for (w,) in words if has_latin(w)]
            for translit in {x for w in latin for x in tokens(latin_to_cyrillic(w))}:
                self._canon.setdefault(translit, head)
        self._syn_words = sorted(self._canon)
        # a group's word of 4 letters or more, by first letter or the next two, and by length
        self._syn_by_first = _LengthBuckets((w[0], w) for w in self._syn_words if len(w) >= 4)
        self._syn_by_second = _LengthBuckets((w[1:3], w) for w in self._syn_words if len(w) >= 4)
        syn = self.params.synonym_similarity
        self._syn_cutoff = syn if syn > 0.85 else 0.75
        self._syn_prefix: dict[str, list[str]] = defaultdict(list)
        for w in self._syn_words:
            if len(w) >= 4:
                self._syn_prefix[w[:4]].append(w)
        self._canon_cache: dict[str, str] = {}
        phrases: dict[str, set[tuple[str, ...]]] = defaultdict(set)
        # A message that *is* one of an entry's questions (same words, stopwords included, after
        # folding) is that entry: "как получить статус беженца" must not lose to "кто может получить
        # статус беженца" because как/кто are stopwords. A question two entries share decides nothing.
        exact: dict[str, set[str]] = defaultdict(set)
        for entry in faq.entries.values():
            for block in entry.langs.values():
                for question in block.questions:
                    for variant in self._variants(normalize(question)):
                        exact[" ".join(tokens(variant))].add(entry.id)
        self._exact = {key: next(iter(ids)) for key, ids in exact.items() if " " in key and len(ids) == 1}
        for entry in faq.entries.values():
            for block in entry.langs.values():
                for text in (block.title, *block.questions, *block.keywords):
                    terms = tuple(self._terms(normalize(text)))
                    if terms:
                        phrases[entry.id].add(terms)
        self.entry_ids = tuple(faq.entries)
        n = len(self.entry_ids)
        df: dict[str, int] = defaultdict(int)
        self._postings: dict[str, tuple[str, ...]] = {}
        postings: dict[str, list[str]] = defaultdict(list)
        for entry_id in self.entry_ids:
            for t in {t for p in phrases[entry_id] for t in p}:
                df[t] += 1
                postings[t].append(entry_id)
        self._postings = {t: tuple(v) for t, v in postings.items()}
        self.idf = {t: math.log((n + 1) / (c + 0.5)) for t, c in df.items()}
        self.max_idf = max(self.idf.values(), default=1.0)
        self._phrases: dict[str, tuple[tuple[tuple[str, ...], float], ...]] = {
            e: tuple((p, sum(self.idf[t] for t in p)) for p in sorted(phrases[e])) for e in self.entry_ids
        }
        self._denoms = {e: tuple(denom for _, denom in self._phrases[e]) for e in self.entry_ids}
        # entry -> word -> the entry's phrasings that contain it (phrase fit looks only at those)
        self._entry_phrase_postings: dict[str, dict[str, tuple[int, ...]]] = {}
        for e in self.entry_ids:
            by_term: dict[str, list[int]] = defaultdict(list)
            for p, (phrase, denom) in enumerate(self._phrases[e]):
                if denom > 0:
                    for t in phrase:
                        by_term[t].append(p)
            self._entry_phrase_postings[e] = {t: tuple(v) for t, v in by_term.items()}
        entry_grams = {e: _grams([t for p, _ in self._phrases[e] for t in p]) for e in self.entry_ids}
        gram_df: Counter[str] = Counter()
        for grams in entry_grams.values():
            gram_df.update(grams.keys())
        self._gram_idf = {g: math.log(n / c) for g, c in gram_df.items() if c < n}
        self._gram_vecs = {e: self._unit(grams) for e, grams in entry_grams.items()}
        small = n * len(self._gram_idf) <= _DENSE_CELLS
        self._gram_matrix = _GramMatrix(self._gram_vecs, self._gram_idf) if small else None
        if self._gram_matrix is not None:
            self._gram_vecs = {}  # the matrix holds them: the dicts were 6.7 MB of the shipped FAQ's index
        self._vocab = sorted(self.idf)
        # typo look-up: words by first letter, or by the next two, and by length (an edit-distance
        # match of 0.75 or more needs lengths within a quarter of each other)
        self._by_first = _LengthBuckets((t[0], t) for t in self._vocab)
        self._by_second = _LengthBuckets((t[1:3], t) for t in self._vocab if len(t) >= 3)
        self._by_prefix: dict[str, list[str]] = defaultdict(list)
        self._by_skeleton: dict[str, list[str]] = defaultdict(list)
        for t in self._vocab:
            if len(t) >= 4:
                self._by_prefix[t[:4]].append(t)
            self._by_skeleton[_skeleton(t)].append(t)
            # `similarity` needs these for every FAQ word it meets: worked out (and cached) now, not
            # while a message waits
            kazakh_stem(t)
            _shape(t)
        self._cache: dict[str, tuple[tuple[str, float], ...]] = {}
        self._word_cache: dict[tuple[str, ...], _Word] = {}
        self._gram_cache: dict[str, tuple[str, ...]] = {}
        self._col_cache: dict[str, tuple[int, ...]] = {}
        # synonym group head -> the FAQ's own words that belong to the group (and how closely)
        self._group_terms: dict[str, tuple[tuple[str, float], ...]] = {}
        members_of: dict[str, list[str]] = defaultdict(list)
        for member, head in self._canon.items():
            members_of[head].append(member)
        for head, members in members_of.items():
            hits: dict[str, float] = {}
            for member in members:
                for t, sim in self._direct_matches(member):
                    if sim >= self.params.synonym_similarity and sim > hits.get(t, 0.0):
                        hits[t] = sim
            self._group_terms[head] = tuple(hits.items())
        self._large = n >= LARGE_FAQ
        self._arrays = _Arrays(self, self._large) if self._large or _ARRAY_FITS else None
        if warm:
            self.warm_up()

    def warm_up(self) -> None:
        """A small FAQ works out what each of its own words brings before a message needs it (0.3 s
        for the 6,700 words of the shipped FAQ of 2026-12-08). The bot runs this in a thread right
        after start-up (`warm=False`), so the first answer does not wait for it; a message meanwhile
        works out its own words as they come (the caches are plain dicts: the same value written
        twice at worst)."""
        if len(self.entry_ids) >= LARGE_FAQ:
            return
        for t in self._vocab:
            self._word_info((t,))
            if self._gram_matrix is not None:
                self._gram_cols(t)

    # -- text to terms

    def _variants(self, norm: str) -> list[str]:
        """The text as written and, if it has Latin letters, transliterated (for whole questions)."""
        out = [norm]
        if has_latin(norm):
            translit = latin_to_cyrillic(norm)
            if translit != norm:
                out.append(translit)
        return out

    def _terms(self, norm: str) -> list[str]:
        stop = self._stop
        return list(dict.fromkeys(t for t in tokens(norm) if t not in stop and len(t) >= 2))

    def _off_topic(self, t: str) -> bool:
        """A word that names another service (weather, football, a driving licence...): it is never
        read as a near-miss of an FAQ word, so it counts against every entry like any unknown word."""
        if t in self._off_exact:
            return True
        stems = self._off_stems.get(t[:4])
        return stems is not None and t.startswith(stems)

    def _canonical(self, t: str) -> str:
        """The synonym group a word belongs to (also for its inflected or misspelt forms)."""
        hit = self._canon.get(t)
        if hit is not None:
            return hit
        cached = self._canon_cache.get(t)
        if cached is not None:
            return cached
        result = t
        if len(t) >= 5 and self._syn_words:
            pool = set(self._syn_prefix.get(t[:4], ()))
            # Beyond the shared-prefix pool only an edit-distance match can reach synonym_similarity
            # (`similarity`'s other rules give at most 0.85), so look only among synonyms of a length
            # such a match allows, sharing the first letter or the next two (as in _direct_matches)
            cutoff = self._syn_cutoff
            shortest, longest = math.floor(cutoff * len(t)), math.ceil(len(t) / cutoff)
            near = self._syn_by_first.get(t[0], shortest, longest) + self._syn_by_second.get(t[1:3], shortest, longest)
            for w, _, _ in process.extract(
                t, near, scorer=Levenshtein.normalized_similarity, score_cutoff=cutoff, limit=None
            ):
                pool.add(w)
            best, best_s = None, self.params.synonym_similarity
            for w in sorted(pool):  # sorted: the same choice among equals in every process
                sim = similarity(t, w)
                if len(w) >= 4 and sim >= best_s:
                    best, best_s = w, sim
            if best is not None:
                result = self._canon[best]
        if len(self._canon_cache) > 50_000:
            self._canon_cache.clear()
        self._canon_cache[t] = result
        return result

    def similar_terms(self, q: str) -> tuple[tuple[str, float], ...]:
        """Vocabulary words close to q, with their similarity (cached per index)."""
        hit = self._cache.get(q)
        if hit is not None:
            return hit
        found = dict(self._direct_matches(q))
        head = self._canonical(q)
        if head != q or q in self._canon:
            for t, sim in self._group_terms.get(head, ()):
                expanded = SYNONYM_DISCOUNT * sim
                if expanded > found.get(t, 0.0):
                    found[t] = expanded
        result = tuple(sorted(found.items(), key=lambda kv: (-kv[1], kv[0]))[:12])
        if len(self._cache) > 50_000:
            self._cache.clear()
        self._cache[q] = result
        return result

    def _direct_matches(self, q: str) -> list[tuple[str, float]]:
        """FAQ words that are the same word as q: inflection, typos, folding (no synonyms)."""
        found: dict[str, float] = {}
        if q in self.idf:
            found[q] = 1.0
        if len(q) >= 3 and not q.isdigit():
            pool: set[str] = set(self._by_prefix.get(q[:4], ())) if len(q) >= 4 else set()
            pool.update(self._by_skeleton.get(_skeleton(q), ()))
            # typos: `similarity` takes an edit-distance match only at 0.75 or more; look among words
            # that share the first letter, or the next two (a slip in the first letter)
            shortest, longest = math.floor(0.75 * len(q)), math.ceil(len(q) / 0.75)
            choices = self._by_first.get(q[0], shortest, longest) + self._by_second.get(q[1:3], shortest, longest)
            for t, _, _ in process.extract(
                q, choices, scorer=Levenshtein.normalized_similarity, score_cutoff=0.75, limit=None
            ):
                pool.add(t)
            for t in pool:
                s = similarity(q, t)
                if s >= self.params.min_similarity and s > found.get(t, 0.0):
                    found[t] = s
        return list(found.items())

    # -- scoring

    def _unit(self, grams: Counter[str]) -> dict[str, float]:
        idf = self._gram_idf
        vec = {g: (_TF[c] if c < len(_TF) else 1 + math.log(c)) * idf[g] for g, c in grams.items() if g in idf}
        norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
        return {g: v / norm for g, v in vec.items()}

    def _known_grams(self, t: str) -> tuple[str, ...]:
        """The word's n-grams that carry weight in this FAQ, in order (cached per index)."""
        hit = self._gram_cache.get(t)
        if hit is None:
            idf = self._gram_idf
            hit = tuple(g for g in _word_grams(t) if g in idf)
            if len(self._gram_cache) > 50_000:
                self._gram_cache.clear()
            self._gram_cache[t] = hit
        return hit

    def _gram_cols(self, t: str) -> tuple[int, ...]:
        """The word's n-grams that carry weight in this FAQ, as columns of the gram matrix (cached per
        index)."""
        hit = self._col_cache.get(t)
        if hit is None:
            assert self._gram_matrix is not None
            col = self._gram_matrix.col
            hit = tuple(col[g] for g in _word_grams(t) if g in col)
            if len(self._col_cache) > 50_000:
                self._col_cache.clear()
            self._col_cache[t] = hit
        return hit

    def _query_vector(self, grams: Counter[str]) -> tuple[list[str], list[float]]:
        """`_unit` as two lists (grams, values) for grams that all carry weight: the same numbers,
        without building a dict."""
        idf = self._gram_idf
        keys = list(grams)
        counts = list(grams.values())
        if counts and max(counts) >= len(_TF):
            vec = self._unit(grams)
            return list(vec), list(vec.values())
        raw = list(map(operator.mul, map(_TF.__getitem__, counts), map(idf.__getitem__, keys)))
        norm = math.sqrt(sum(map(operator.mul, raw, raw))) or 1.0
        return keys, list(map(operator.truediv, raw, repeat(norm, len(raw))))

    def match(self, text: str, limit: int = 5) -> list[Candidate]:
        """Entries ranked by score (best first); empty when nothing in the message is known."""
        norm = normalize(text)
        words = self._words(norm)
        cands, off_share = self._score(words, max(_BLEND_TOP, limit))
        best = {c.entry_id: c for c in self._blend([w[0] for w in words], cands, off_share)}
        for variant in self._variants(norm):
            exact_id = self._exact.get(" ".join(tokens(variant)))
            if exact_id is not None:
                old = best.get(exact_id)
                evidence = old.evidence if old is not None else 0.0
                best[exact_id] = Candidate(exact_id, 1.0, 1.0, 1.0, evidence)
                break
        ranked = sorted(best.values(), key=_rank)
        return ranked[:limit]

    def _words(self, norm: str) -> list[tuple[str, ...]]:
        """The message's content words, each with its readings: a word in Latin letters may be
        English or Russian typed in Latin ("status", "poluchit"), so it is also read transliterated,
        and each word counts as whichever reading the FAQ knows better. The reading the n-gram blend
        uses comes first. A word that is a stopword in either reading is dropped ("kak", "the")."""
        stop = self._stop
        words = [t for t in dict.fromkeys(tokens(norm)) if t not in stop and len(t) >= 2]
        if not has_latin(norm):
            return [(t,) for t in words]
        out: list[tuple[str, ...]] = []
        for t in words:
            if not has_latin(t):
                out.append((t,))
                continue
            readings = [r for r in tokens(latin_to_cyrillic(t)) if r != t]
            if any(r in self._stop for r in readings):
                continue
            readings = [r for r in readings if len(r) >= 2]
            if readings and self._best_sim(readings[0]) > self._best_sim(t):
                out.append((readings[0], t))
            else:
                out.append((t, *readings[:1]))
        return out

    def _best_sim(self, t: str) -> float:
        sims = self.similar_terms(t)
        return sims[0][1] if sims else 0.0

    def _word_matches(self, word: tuple[str, ...]) -> tuple[tuple[str, float], ...]:
        """FAQ words close to any reading of the word (the best similarity per FAQ word)."""
        if len(word) == 1:
            return self.similar_terms(word[0])
        found: dict[str, float] = {}
        for r in word:
            for t, s in self.similar_terms(r):
                if s > found.get(t, 0.0):
                    found[t] = s
        return tuple(sorted(found.items(), key=lambda kv: (-kv[1], kv[0]))[: 12 * len(word)])

    def _blend(self, terms: list[str], cands: list[Candidate], off_share: float = 0.0) -> list[Candidate]:
        """Mix in character n-gram similarity, for the token stage's candidates only (cheap at scale).
        Words of other services (off_share of the message's weight) discount it as they do coverage."""
        g = self.params.ngram_weight
        if not cands or g <= 0:
            return cands
        if self._gram_matrix is not None:
            cols = list(chain.from_iterable(map(self._gram_cols, terms)))
            cosines = self._gram_matrix.cosines(cols, [c.entry_id for c in cands])
        else:
            keys, values = self._query_vector(Counter(chain.from_iterable(map(self._known_grams, terms))))
            # a gram the entry lacks adds 0; fsum is correctly rounded, so the zeros and the order
            # change nothing (the same as summing over the shared grams only)
            cosines = [
                math.fsum(map(operator.mul, values, map(self._gram_vecs[c.entry_id].get, keys, repeat(0.0))))
                for c in cands
            ]
        out = []
        # only the token stage's best few can win: the n-gram half of the score cannot lift the rest
        for c, cos in zip(cands, cosines, strict=True):
            score = (1 - g) * c.score + g * min(1.0, self.params.ngram_scale * cos) * (1 - off_share)
            out.append(Candidate(c.entry_id, round(score, 4), c.coverage, c.fit, c.evidence))
        return out

    def off_topic_words(self, text: str) -> list[str]:
        """The message's words that name other services (lexicon's off_topic): the matcher's off-topic
        signal, which counts against every entry (the report tells off-topic questions from gaps by it)."""
        return [r for word in self._words(normalize(text)) for r in word[:1] if any(map(self._off_topic, word))]

    def content_terms(self, text: str) -> list[str]:
        """The message's topic words (no stopwords): empty means it says nothing to match."""
        return self._terms(normalize(text))

    def _word_info(self, word: tuple[str, ...]) -> _Word:
        """What one message word brings to every entry (cached per index: a word costs the same in
        every message)."""
        hit = self._word_cache.get(word)
        if hit is not None:
            return hit
        params = self.params
        if any(map(self._off_topic, word)):
            info = _Word(params.off_topic_weight * self.max_idf, (), True, NO_REACH)
        else:
            q = word[0]
            sims = self._word_matches(word)
            if sims:
                top = sims[0][1] - 1e-9
                w = max(self.idf[t] for t, s in sims if s >= top)
            elif q.isdigit() or len(q) < 3:
                w = 0.0  # numbers and scraps neither help nor hurt
            else:
                w = params.unknown_weight * self.max_idf
            reach = NO_REACH
            if w > 0 and not self._large:
                best_here: dict[str, float] = {}
                for t, s in reversed(sims):  # most similar last: it sets the entry's similarity
                    best_here.update(dict.fromkeys(self._postings.get(t, ()), s))
                reach = (tuple(best_here), tuple(map(w.__mul__, best_here.values())))
            info = _Word(w, sims, False, reach)
        if len(self._word_cache) > 50_000:
            self._word_cache.clear()
        self._word_cache[word] = info
        return info

    def _score(self, q_words: list[tuple[str, ...]], keep: int = 6) -> tuple[list[Candidate], float]:
        """The `keep` best token-stage candidates, and the share of the message's weight that names
        other services."""
        if not q_words:
            return [], 0.0
        params = self.params
        infos = list(map(self._word_info, q_words[:60]))
        weights = [info.weight for info in infos]
        matches = [info.sims for info in infos]
        off_weight = 0.0
        for info in infos:
            if info.off_topic:
                off_weight += info.weight
        total = sum(weights)
        if total <= 0:
            return [], 0.0
        off_share = off_weight / total
        # each FAQ word's best similarity to any message word (sorted by similarity: the best is
        # written last)
        term_best = dict(sorted(chain.from_iterable(matches), key=itemgetter(1)))
        idf_values = map(self.idf.__getitem__, term_best)
        term_value = dict(zip(term_best, map(operator.mul, idf_values, term_best.values()), strict=True))
        term_hits: dict[str, list[tuple[int, float]]] = defaultdict(list)  # only for whole_weight > 0
        if params.whole_weight > 0:
            for i, sims in enumerate(matches):
                for t, s in sims:
                    term_hits[t].append((i, s))
        ranked: Iterator[tuple[str, float, float, Callable[[], float]]]
        if self._arrays is not None and params.whole_weight == 0:
            arrays = self._arrays
            explained = arrays.explained(matches, weights) if self._large else arrays.explained_from(infos)
            ranked = arrays.ranked(self, explained, total, term_value)
        else:
            ranked = self._ranked(infos, weights, total, term_value, term_hits)
        # score = coverage^a * fit^(1-a) with fit <= bound: visiting entries by their bound, once one is
        # below the k-th best score nothing later can enter the top k (exact, and cheap at scale)
        a = params.coverage_weight
        out: list[Candidate] = []
        kth = -1.0
        for e, explained_weight, bound, fit_of in ranked:
            if len(out) >= keep and round(bound, 4) < kth:
                break
            coverage = explained_weight / total
            fit = fit_of()
            if fit <= 0:
                continue
            score = round(coverage**a * fit ** (1 - a), 4)
            if score < kth:
                continue  # below the k-th best already found: it cannot enter
            evidence = explained_weight / self.max_idf
            out.append(Candidate(e, score, round(coverage, 4), round(fit, 4), round(evidence, 3)))
            if len(out) > keep:
                out = heapq.nsmallest(keep, out, key=_rank)
            if len(out) >= keep:
                kth = min(c.score for c in out)
        return out, off_share

    def _ranked(
        self,
        infos: list[_Word],
        weights: list[float],
        total: float,
        term_value: dict[str, float],
        term_hits: dict[str, list[tuple[int, float]]],
    ) -> Iterator[tuple[str, float, float, Callable[[], float]]]:
        """(entry, weight of the message it explains, bound on its score, its fit when asked), best
        bound first: the bound is coverage^a (fit <= 1)."""
        explained = _explained(infos)
        a = self.params.coverage_weight
        # (reverse=True keeps the sort stable: equal weights stay in the order they were found)
        for e, explained_weight in sorted(explained.items(), key=itemgetter(1), reverse=True):
            fit_of = partial(self._fit, e, term_value, term_hits, weights, total)
            yield e, explained_weight, (explained_weight / total) ** a, fit_of

    def _fit(
        self,
        e: str,
        term_value: dict[str, float],
        term_hits: dict[str, list[tuple[int, float]]],
        weights: list[float],
        total: float,
    ) -> float:
        """How well the entry's best phrasings are covered by the message (0 when none shares a word)."""
        by_term = self._entry_phrase_postings[e]
        got: dict[int, float] = defaultdict(float)
        for t in sorted(term_value.keys() & by_term.keys()):  # sorted: the same sums in every process
            v = term_value[t]
            for p in by_term[t]:
                got[p] += v
        if not got:
            return 0.0
        x = self.params.whole_weight
        if x == 0:
            fits: list[float] = list(map(operator.truediv, got.values(), map(self._denoms[e].__getitem__, got)))
        else:
            phrases = self._phrases[e]
            fits = [
                (g / phrases[p][1]) ** (1 - x) * self._whole(phrases[p][0], term_hits, weights, total) ** x
                for p, g in got.items()
            ]
        # the best phrasing decides; several good phrasings break ties (the entry is *about* it)
        fits.sort(reverse=True)
        top = fits[:3]
        return 0.8 * top[0] + 0.2 * sum(top) / 3

    @staticmethod
    def _whole(
        phrase: tuple[str, ...], term_hits: dict[str, list[tuple[int, float]]], weights: list[float], total: float
    ) -> float:
        """How much of the message one phrasing explains (used only when whole_weight > 0)."""
        explained = [0.0] * len(weights)
        for t in phrase:
            for i, s in term_hits.get(t, ()):
                if s > explained[i]:
                    explained[i] = s
        return sum(w * m for w, m in zip(weights, explained, strict=True)) / total


def _explained(infos: list[_Word]) -> dict[str, float]:
    """Entry -> weight of the message it explains, from the words' reach (a small FAQ), added word by
    word."""
    explained: dict[str, float] = defaultdict(float)
    for info in infos:
        for e, ws in zip(*info.reach, strict=True):
            explained[e] += ws
    return explained


class _GramMatrix:
    """The entries' n-gram vectors as one dense matrix (a small FAQ: a few MB), so the blend scores its
    candidates in a few numpy steps instead of a dict look-up per gram and candidate. The cosines
    equal the dict path's to the last bit or two (the sums run in another order), far below the
    four decimals a score keeps."""

    def __init__(self, vecs: dict[str, dict[str, float]], idf: dict[str, float]) -> None:
        import numpy as np

        self.np = np
        self.col = {g: i for i, g in enumerate(idf)}  # every gram that carries weight
        self.row = {e: i for i, e in enumerate(vecs)}
        self.idf = np.fromiter(idf.values(), dtype=np.float64, count=len(idf))
        self.tf = np.array(_TF)
        self.matrix = np.zeros((len(self.row), len(self.col)))
        for e, vec in vecs.items():
            self.matrix[self.row[e], [self.col[g] for g in vec]] = list(vec.values())

    def cosines(self, cols: list[int], entries: list[str]) -> list[float]:
        """Cosine of the message (the columns of its grams, repeats included) with each entry."""
        np = self.np
        if not cols:
            return [0.0] * len(entries)
        ids, counts = np.unique(np.array(cols, dtype=np.intp), return_counts=True)
        tf = self.tf[np.minimum(counts, len(self.tf) - 1)]
        many = counts >= len(self.tf)
        if many.any():  # a gram repeated 64 times or more (1 + log c, as _TF holds for fewer)
            tf[many] = 1 + np.log(counts[many])
        raw = tf * self.idf[ids]
        norm = math.sqrt(float(raw @ raw)) or 1.0
        rows = [self.row[e] for e in entries]
        cos: list[float] = (self.matrix[np.ix_(rows, ids)] @ (raw / norm)).tolist()
        return cos


class _Arrays:
    """The token stage on numpy arrays: entries and phrasings are numbered, and a word's postings are
    arrays of those numbers. Phrase fits are summed for every phrasing at once, which bounds each
    entry's score by its best phrasing; a large FAQ also sums the weight each entry explains on arrays
    (common words then reach thousands of entries). Results are the same as with the dicts: the arrays
    only rank the entries and bound their scores; the score of every entry that can make the top k is
    worked out exactly as before."""

    def __init__(self, index: Index, large: bool) -> None:
        import numpy as np

        self.np = np
        ids = index.entry_ids
        self.number = {e: i for i, e in enumerate(ids)}
        self.n = len(ids)
        self.postings = (
            {t: np.array([self.number[e] for e in es], dtype=np.int32) for t, es in index._postings.items()}
            if large
            else {}
        )
        denoms: list[float] = []
        starts: list[int] = []
        phrase_postings: dict[str, list[int]] = defaultdict(list)
        for e in ids:
            starts.append(len(denoms))
            for phrase, denom in index._phrases[e]:
                for t in phrase:
                    phrase_postings[t].append(len(denoms))
                denoms.append(denom if denom > 0 else math.inf)
        self.phrase_postings = {t: np.array(v, dtype=np.intp) for t, v in phrase_postings.items()}
        self.denoms = np.array(denoms, dtype=np.float64)
        self.has_phrases = np.array([index._phrases[e] != () for e in ids], dtype=bool)
        self.bounds = list(zip(starts, [*starts[1:], len(denoms)], strict=True))  # each entry's phrasings
        self.starts = np.minimum(np.array(starts, dtype=np.int64), max(len(denoms) - 1, 0))
        self.head = 256  # entries sorted first by their bound; the rest are sorted only when reached

    def explained(self, matches: list[tuple[tuple[str, float], ...]], weights: list[float]) -> Any:
        """Weight of the message each entry explains (a large FAQ: one array operation per word)."""
        np = self.np
        explained = np.zeros(self.n)
        for sims, w in zip(matches, weights, strict=True):
            if w > 0 and sims:
                best = np.zeros(self.n)
                for t, s in reversed(sims):  # most similar last: it sets the entry's similarity
                    hit = self.postings.get(t)
                    if hit is not None:
                        best[hit] = s
                explained += w * best  # the same sums, in the same order, as the dicts make
        return explained

    def explained_from(self, infos: list[_Word]) -> Any:
        """The same from the words' cached reach (a small FAQ: a word reaches a few dozen entries)."""
        explained = _explained(infos)
        out = self.np.zeros(self.n)
        if explained:
            out[list(map(self.number.__getitem__, explained))] = list(explained.values())
        return out

    def ranked(
        self, index: Index, explained: Any, total: float, term_value: dict[str, float]
    ) -> Iterator[tuple[str, float, float, Callable[[], float]]]:
        """As Index._ranked, with a tighter bound: an entry's fit is at most its best phrasing's."""
        np = self.np
        # each phrasing's share of its weight the message covers: the values of the message's words
        # added phrasing by phrasing in sorted word order, as Index._fit adds them (the same sums to
        # the last bit: np.bincount adds in the order it is given)
        terms = [t for t in sorted(term_value) if t in self.phrase_postings]
        if terms:
            hits = [self.phrase_postings[t] for t in terms]
            values = np.repeat(np.array([term_value[t] for t in terms]), [len(h) for h in hits])
            got = np.bincount(np.concatenate(hits), weights=values, minlength=len(self.denoms))
        else:
            got = np.zeros(len(self.denoms))
        fits = got / self.denoms
        best_phrase = np.maximum.reduceat(fits, self.starts) if len(fits) else np.zeros(self.n)
        best_phrase = np.where(self.has_phrases, best_phrase, 0.0)
        a = index.params.coverage_weight
        # (inflated by a hair: 0.8 * t1 + 0.2 * (t1 + t2 + t3) / 3 may round one bit above t1)
        bound = (explained / total) ** a * (np.minimum(best_phrase, 1.0) * (1 + 1e-9)) ** (1 - a)
        live = np.flatnonzero(bound > 0)
        values = -bound[live]
        # the best few sorted first; the rest only if the loop gets that far (it rarely does)
        head = min(len(live), self.head)
        part = np.argpartition(values, head - 1) if 0 < head < len(live) else np.arange(len(live))
        ids = index.entry_ids
        for group in (part[:head], part[head:]):
            for j in group[np.argsort(values[group], kind="stable")].tolist():
                i = int(live[j])
                yield ids[i], float(explained[i]), float(bound[i]), partial(self._fit, fits, i)

    def _fit(self, fits: Any, i: int) -> float:
        """Index._fit from the phrasings' fits worked out for all entries at once (the same numbers)."""
        start, end = self.bounds[i]
        values: list[float] = fits[start:end].tolist()
        values.sort(reverse=True)
        top = values[:3]
        if not top or top[0] <= 0:
            return 0.0
        return 0.8 * top[0] + 0.2 * sum(top) / 3

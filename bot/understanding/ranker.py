"""The learned ranker: which FAQ entry a message is about, by a linear model over character and word
n-grams, trained on every phrasing of the FAQ (questions, keywords, titles; every language together)
and on noisy copies of them typed as people type (bot/understanding/augment.py).

- Features: the message normalised and folded as the matcher sees it (bot/normalize.py); a text
  with Latin letters is read twice, as written and transliterated ("kak podat" -> "как подат").
  Character 2-5-grams of each word with its edges (" бе", "нец "), word unigrams and bigrams; TF-IDF
  with a sublinear count, each block scaled to unit length. The asking part of a long message
  weighs more than its story (bot/understanding/asking.py).
- Model: scikit-learn's LinearSVC, one-vs-rest (trained when the FAQ is loaded: `train`).
- Serving: plain numpy arrays (vocabulary, IDF, weights, intercepts), so a model can be cached as
  arrays and served without importing scikit-learn; `Ranker.scores` is one gather and one sum.

Besides one class per entry, the model has an off-topic class (OFF_TOPIC), learnt from the messages
the FAQ does not cover (faq/off_topic.yaml: weather, money exchange, sport, citizens' paperwork...),
so "not ours" is learnt like any entry instead of written as rules; its decision value is one of
the things the decision weighs (bot/understanding/decide.py). It is never an entry: `rank` leaves it
out, `assess` gives it beside the entries' ranking.

A FAQ with more than MAX_ENTRIES entries gets no learned ranker (a one-vs-rest model of hundreds or
thousands of classes takes too long to train while loading: minutes); the matcher then decides alone.
"""

from __future__ import annotations

import hashlib
import random
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise, repeat
from typing import Any

import numpy as np

from bot.faq import FAQ
from bot.normalize import has_latin, latin_to_cyrillic, normalize, tokens
from bot.understanding import augment
from bot.understanding.asking import weighted_parts

# bump when features, augmentation or training change: a cached model of another version is retrained
CODE_VERSION = "ranker-7"
# the off-topic class's label: not a kebab-case id, so no entry can ever be called that
OFF_TOPIC = "~off-topic"
# one-vs-rest training grows with entries x phrasings: 40 entries train in about 7 s of CPU, 100 would
# take about 30 s; beyond this the matcher decides alone (see README, Capacity)
MAX_ENTRIES = 100
NOISY_COPIES = 2  # noisy copies of every question and title (keywords and long questions get one)
LONG_WORDS = 12  # a question of more words is a story: one noisy copy (its words are many already)
C = 0.5  # LinearSVC regularisation (smaller = smoother)
CHAR_WEIGHT = 1.0  # the two blocks' weights in the final vector
WORD_WEIGHT = 0.7
SEED = 12
WORKERS = 2  # training processes (SplitOneVsRest): the build runs beside a mostly idle bot
MIN_DF = 2  # a feature must occur in this many training texts to get a column
# after training, features whose weights all stay below this are dropped: a quarter of them for the
# shipped FAQ of 2026-12-08 (185,000 -> 137,000), 5 MB less in the serving process, and the same
# strict top-1, shown-first and rejection on eval_blind6/7/8 (0.1 would drop half and cost blind 8
# a point of rejection)
PRUNE = 0.05


def _grams(word: str) -> tuple[str, ...]:
    """A word's character 2-5-grams with its edges."""
    w = f" {word} "
    return tuple(w[i : i + n] for n in (2, 3, 4, 5) for i in range(len(w) - n + 1))


# serving: a word's 30-odd grams are about 3 KB, so at most about 50 MB. Training keeps its own
# small cache (`_interned`): 16,384 training words' grams cost 30 MB at training's peak and saved
# under a tenth of a second.
_word_grams = lru_cache(maxsize=16_384)(_grams)
TRAINING_GRAM_CACHE = 1024


def _readings(text: str) -> list[list[str]]:
    """The text's folded words, and a second reading with Latin words transliterated."""
    norm = normalize(text)
    words = tokens(norm)
    if not words:
        return []
    out = [words]
    if has_latin(norm):
        translit = tokens(latin_to_cyrillic(norm))
        if translit != words:
            out.append(translit)
    return out


Counts = dict[str, float]


def raw_features(text: str, grams: Callable[[str], tuple[str, ...]] = _word_grams) -> tuple[Counts, Counts]:
    """(character grams, words and word pairs) of a message with their weighted counts."""
    chars: Counts = defaultdict(float)
    words: Counts = defaultdict(float)
    for part, weight in weighted_parts(text):
        for seq in _readings(part):
            for w in seq:
                for g in grams(w):
                    chars[g] += weight
                words[w] += weight
            for a, b in pairwise(seq):
                words[f"{a} {b}"] += weight
    return chars, words


Phrasing = tuple[str, str, str]  # (entry id, kind: "title" / "question" / "keyword", text)


def phrasings_digest(items: Iterable[Phrasing], seed: int = SEED, copies: int = NOISY_COPIES) -> str:
    """A hash of what a model is trained from: the phrasings, the settings and the code version (the
    noisy copies follow from them: `training_data` is deterministic). It names the cached model, so a
    process can look the model up without making the noisy copies."""
    h = hashlib.sha256(CODE_VERSION.encode())
    h.update(repr((C, CHAR_WEIGHT, WORD_WEIGHT, MIN_DF, PRUNE, copies, seed)).encode())
    for entry_id, kind, text in items:
        h.update(f"{entry_id}\t{kind}\t{text}\n".encode())
    return h.hexdigest()


@dataclass(frozen=True)
class TrainingData:
    texts: tuple[str, ...]
    labels: tuple[str, ...]
    original: tuple[bool, ...]  # written by staff (True) or a noisy copy (False)
    source: str  # phrasings_digest of the phrasings these were made from

    def digest(self) -> str:
        return self.source


def phrasings(faq: FAQ) -> list[Phrasing]:
    """(entry id, kind, text) of every title, question and keyword, every language, in file order;
    then (OFF_TOPIC, "question", text) of every off-topic phrasing (faq/off_topic.yaml)."""
    out: list[Phrasing] = []
    for entry in faq.entries.values():
        for block in entry.langs.values():
            out.append((entry.id, "title", block.title))
            out.extend((entry.id, "question", q) for q in block.questions)
            out.extend((entry.id, "keyword", k) for k in block.keywords)
    out.extend((OFF_TOPIC, "question", text) for text in faq.off_topic)
    return out


def training_data(items: Iterable[Phrasing], seed: int = SEED, copies: int = NOISY_COPIES) -> TrainingData:
    """The phrasings and their noisy copies (deterministic for a seed)."""
    items = list(items)
    rng = random.Random(seed)
    texts: list[str] = []
    labels: list[str] = []
    original: list[bool] = []
    seen: set[tuple[str, str]] = set()

    def add(entry_id: str, text: str, orig: bool) -> None:
        key = (entry_id, text)
        if text.strip() and key not in seen:
            seen.add(key)
            texts.append(text)
            labels.append(entry_id)
            original.append(orig)

    for entry_id, kind, text in items:
        add(entry_id, text, True)
        short = kind != "keyword" and len(text.split()) <= LONG_WORDS
        for v in augment.variants(text, rng, copies if short else 1):
            add(entry_id, v, False)
    return TrainingData(tuple(texts), tuple(labels), tuple(original), phrasings_digest(items, seed, copies))


class Vocabulary:
    """The model's features and their columns, as numbers: each feature's hash (Python's 64-bit
    string hash, taken when the model is read) sorted, with its column. A dict of 100,000 feature
    strings took 16 MB of the serving process and 0.2 s to build; this takes 2.5 MB. A message's
    features are looked up by their hashes (`columns`): two different strings with the same 64-bit
    hash are about one chance in 10^14 per message, and when two of the model's own features share a
    hash (about one in 10^9) the vocabulary keeps a dict instead. `blob` holds the names, one a line
    in column order, as the cache stores them."""

    CHUNK = 8192  # names decoded at a time while hashing (the strings are let go chunk by chunk)

    def __init__(self, blob: bytes) -> None:
        self.blob = blob
        data = np.frombuffer(blob, dtype=np.uint8)
        ends = np.append(np.flatnonzero(data == 10), len(blob))  # each name's end: "\n", or the blob's
        self._size = len(ends) if blob else 0
        hashes = np.empty(self._size, dtype=np.int64)
        start = 0
        for first in range(0, self._size, self.CHUNK):
            last = min(first + self.CHUNK, self._size)
            end = int(ends[last - 1])
            names = blob[start:end].decode().split("\n")
            hashes[first:last] = np.fromiter(map(hash, names), dtype=np.int64, count=last - first)
            start = end + 1
        order = np.argsort(hashes, kind="stable")
        self._hashes = hashes[order]
        self._columns = order.astype(np.int32)  # half of int64's memory: 0.5 MB of each model
        self._dict: dict[str, int] | None = None
        if self._size > 1 and bool((self._hashes[1:] == self._hashes[:-1]).any()):
            self._dict = {name: i for i, name in enumerate(self.names())}

    @classmethod
    def from_names(cls, names: Iterable[str]) -> Vocabulary:
        """The features in column order (none is empty or holds a line break)."""
        return cls("\n".join(names).encode())

    def has_duplicates(self) -> bool:
        """A feature listed twice (a cache file made by something else)."""
        return self._dict is not None and len(self._dict) < self._size

    def names(self) -> list[str]:
        return self.blob.decode().split("\n") if self._size else []

    def __len__(self) -> int:
        return self._size

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and other.blob == self.blob

    __hash__ = None  # type: ignore[assignment]

    def columns(self, names: Iterable[str], count: int) -> Any:
        """The column of each of `count` names (an integer array), -1 for a name the model does not know."""
        if self._dict is not None:
            get = self._dict.get
            return np.fromiter(map(get, names, repeat(-1)), dtype=np.int64, count=count)
        wanted = np.fromiter(map(hash, names), dtype=np.int64, count=count)
        if not self._size:
            return np.full(count, -1, dtype=np.int64)
        at = np.searchsorted(self._hashes, wanted)
        at[at == self._size] = 0
        return np.where(self._hashes[at] == wanted, self._columns[at], -1)


@dataclass(frozen=True)
class RankerModel:
    """The trained model as plain arrays (what a cache stores)."""

    classes: tuple[str, ...]
    vocab: Vocabulary  # feature -> column; character grams first, then words ("w " prefix)
    n_chars: int  # columns below this are character grams
    idf: Any  # float32 [features]
    weights: Any  # float16 [features, classes]: half the memory of float32, the same rankings (below)
    intercept: Any  # float32 [classes]
    digest: str  # of the training data and the code version

    def arrays(self) -> dict[str, Any]:
        return {
            "classes": np.frombuffer("\n".join(self.classes).encode(), dtype=np.uint8),
            "vocab": np.frombuffer(self.vocab.blob, dtype=np.uint8),
            "n_chars": np.array([self.n_chars], dtype=np.int64),
            "idf": self.idf,
            "weights": self.weights,
            "intercept": self.intercept,
            "digest": np.frombuffer(self.digest.encode(), dtype=np.uint8),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, Any]) -> RankerModel:
        """The model back from `arrays()`; raises ValueError when they do not fit together."""
        classes = tuple(bytes(arrays["classes"]).decode().split("\n"))
        vocab = Vocabulary(bytes(arrays["vocab"]))
        vocab.blob.decode()  # UTF-8, or UnicodeDecodeError (a ValueError)
        idf = np.asarray(arrays["idf"], dtype=np.float32)
        weights = np.asarray(arrays["weights"], dtype=np.float16)
        intercept = np.asarray(arrays["intercept"], dtype=np.float32)
        n_chars = int(np.asarray(arrays["n_chars"]).reshape(-1)[0])
        if weights.shape != (len(vocab), len(classes)) or idf.shape != (len(vocab),):
            raise ValueError("ranker arrays of different sizes")
        if intercept.shape != (len(classes),) or not 0 <= n_chars <= len(vocab):
            raise ValueError("ranker arrays of different sizes")
        # all finite: a float64 sum of float32 values cannot overflow, and any inf or nan makes it one
        # (np.isfinite(weights) would be a 4 MB array of its own in the serving process)
        finite = np.isfinite(np.sum(weights, dtype=np.float64))
        if not (finite and np.isfinite(idf).all() and np.isfinite(intercept).all()):
            raise ValueError("ranker arrays hold non-finite numbers")
        if vocab.has_duplicates():
            raise ValueError("ranker vocabulary has duplicates")
        digest = bytes(arrays["digest"]).decode()
        return cls(classes, vocab, n_chars, idf, weights, intercept, digest)


def _vector(vocab: Vocabulary, n_chars: int, idf: Any, chars: Counts, words: Counts) -> tuple[Any, Any]:
    """Columns and TF-IDF values of one text: sublinear counts, each block of unit length."""
    del n_chars  # (the blocks are told apart by where they come from)
    col_parts: list[Any] = []
    val_parts: list[Any] = []
    for counts, prefix, block_weight in ((chars, "", CHAR_WEIGHT), (words, "w ", WORD_WEIGHT)):
        if not counts:
            continue
        names = counts if not prefix else [prefix + f for f in counts]
        cols = vocab.columns(names, len(counts))
        raw = np.fromiter(counts.values(), dtype=np.float32, count=len(counts))
        known = (cols >= 0) & (raw > 0)
        if not known.any():
            continue
        cols, raw = cols[known], raw[known]
        block = np.where(raw >= 1, 1.0 + np.log(np.maximum(raw, 1.0)), raw).astype(np.float32) * idf[cols]
        norm = float(np.sqrt(block @ block)) or 1.0
        col_parts.append(cols)
        val_parts.append(block * np.float32(block_weight / norm))
    if not col_parts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    return np.concatenate(col_parts), np.concatenate(val_parts)


# A message's features, kept for the next few calls: the crisis model (crisis_model.py) and the ranker
# score the same message one after the other. Read-only for callers.
_message_features = lru_cache(maxsize=16)(raw_features)


class Ranker:
    """Serves a RankerModel: scores of every entry for a message (numpy only)."""

    def __init__(self, model: RankerModel) -> None:
        self.model = model
        entries = [i for i, c in enumerate(model.classes) if c != OFF_TOPIC]
        self._entries = np.array(entries, dtype=np.int64)
        self.classes = tuple(model.classes[i] for i in entries)  # the entries (never OFF_TOPIC)
        self._off = model.classes.index(OFF_TOPIC) if OFF_TOPIC in model.classes else None

    def scores(self, text: str) -> Any:
        """Decision values (float32, one per class of the model, `model.classes` order: the entries
        and OFF_TOPIC when it has one); the intercepts for an empty text."""
        m = self.model
        chars, words = _message_features(text)
        cols, vals = _vector(m.vocab, m.n_chars, m.idf, chars, words)
        if not len(cols):
            return m.intercept.copy()
        out: Any = vals @ m.weights[cols].astype(np.float32) + m.intercept
        return out

    def assess(self, text: str, limit: int | None = None) -> tuple[list[tuple[str, float]], float | None]:
        """(the `limit` best entries with their decision values, best first, ties by entry order;
        every entry when `limit` is None) and the off-topic class's value (None: a model without one)."""
        s = self.scores(text)
        entry_scores = s[self._entries]
        order = np.argsort(-entry_scores, kind="stable")[: len(self.classes) if limit is None else limit]
        ranking = [(self.classes[i], float(entry_scores[i])) for i in order]
        return ranking, (float(s[self._off]) if self._off is not None else None)

    def rank(self, text: str, limit: int = 5) -> list[tuple[str, float]]:
        """The `limit` best entries with their decision values, best first (ties by entry order)."""
        return self.assess(text, limit)[0]


def _interned(texts: Iterable[str]) -> tuple[list[str], Any, Any, Any, Any]:
    """Every text's features as numbers, built in one pass with little memory (a dict per text
    would cost hundreds of MB for a large FAQ): (feature names, is-a-word flags, row pointers,
    feature numbers (int32), weighted counts (float64)). Within a row, character grams come first."""
    ids: dict[str, int] = {}
    is_word = array("b")
    cols = array("i")
    counts = array("d")
    indptr = array("q", [0])
    grams = lru_cache(maxsize=TRAINING_GRAM_CACHE)(_grams)
    for text in texts:
        chars, words = raw_features(text, grams)
        for counter, prefix, word in ((chars, "", 0), (words, "w ", 1)):
            for feat, count in counter.items():
                name = prefix + feat if prefix else feat
                col = ids.get(name)
                if col is None:
                    col = ids[name] = len(ids)
                    is_word.append(word)
                cols.append(col)
                counts.append(count)
        indptr.append(len(cols))
    return (
        list(ids),
        np.frombuffer(is_word, dtype=np.int8).astype(bool),
        np.frombuffer(indptr, dtype=np.int64),
        np.frombuffer(cols, dtype=np.int32),
        np.frombuffer(counts, dtype=np.float64),
    )


def _interned_in_halves(texts: Iterable[str], workers: int = WORKERS) -> tuple[list[str], Any, Any, Any, Any]:
    """`_interned`, the second half of the texts in a forked process meanwhile (the pass is pure
    Python: 4.4 s of the shipped FAQ's 10 s of training on 2026-12-08). The halves' feature numbers are
    merged in order of first appearance, so the result is exactly `_interned`'s."""
    texts = list(texts)
    if workers < 2 or len(texts) < 2 * INTERN_SPLIT_MIN or not _can_fork():
        return _interned(texts)
    half = len(texts) // 2
    first, second = _forked_map(_interned, [texts[:half], texts[half:]])
    names, is_word, indptr, cols, counts = first
    names_b, is_word_b, indptr_b, cols_b, counts_b = second
    ids = {name: i for i, name in enumerate(names)}
    new_of_b = np.empty(len(names_b), dtype=np.int32)
    added: list[int] = []
    for j, name in enumerate(names_b):
        col = ids.get(name)
        if col is None:
            col = ids[name] = len(names)
            names.append(name)
            added.append(j)
        new_of_b[j] = col
    return (
        names,
        np.concatenate([is_word, is_word_b[np.array(added, dtype=np.int64)]]),
        np.concatenate([indptr, indptr_b[1:] + indptr[-1]]),
        np.concatenate([cols, new_of_b[cols_b]]),
        np.concatenate([counts, counts_b]),
    )


INTERN_SPLIT_MIN = 1000  # texts per half below which one pass is quicker than a fork


def _matrix(indptr: Any, indices: Any, counts: Any, idf: Any, n_chars: int, n_features: int) -> Any:
    """The training texts as one sparse matrix, built as `_vector` builds one text (vectorised, in
    place: each temporary is one array of the matrix's size, freed before the next). `counts` (float64)
    becomes the matrix's values; `indices` and `indptr` are int32, as liblinear takes them."""
    from scipy.sparse import csr_matrix

    rows = len(indptr) - 1
    values = counts
    ge1 = values >= 1
    values[ge1] = 1.0 + np.log(values[ge1])  # sublinear count
    del ge1
    values *= idf[indices]
    # each block of each row to unit length, then scaled by the block's weight
    is_word = indices >= n_chars
    key = np.repeat(np.arange(rows, dtype=np.int32) * 2, np.diff(indptr))
    key += is_word
    sq = np.bincount(key, weights=values * values, minlength=rows * 2)
    norm = np.sqrt(sq)
    norm[norm == 0] = 1.0
    values /= norm[key]
    del key
    values[is_word] *= WORD_WEIGHT
    values[~is_word] *= CHAR_WEIGHT
    return csr_matrix((values, indices, indptr), shape=(rows, n_features), copy=False)


def _linear_svc() -> Any:
    from sklearn.svm import LinearSVC

    # tol 0.01 (liblinear's default 0.0001): a third faster, the same rankings on the development sets
    return LinearSVC(C=C, loss="squared_hinge", dual=True, tol=0.01, max_iter=5000, random_state=SEED)


class SplitOneVsRest:
    """One-vs-rest in WORKERS processes: liblinear trains one binary model per class, so the classes
    are dealt into groups and each group is trained in its own process (forked: the matrix is shared,
    not copied) by liblinear's own one-vs-rest on the group's labels, every other row under one extra
    "rest" label (one model more per group, thrown away). Each class's model is the one a single run
    makes, up to liblinear's tolerance. Processes, not threads: liblinear draws its coordinate order
    from one global random generator, which threads would share in no fixed order (the same FAQ would
    not always give the same model). With two cores the training takes about two thirds of the time
    (14.4 -> 9.9 s for the shipped FAQ of 2026-12-08)."""

    def __init__(self, workers: int = WORKERS, make: Callable[[], Any] = _linear_svc) -> None:
        self.workers = workers
        self.make = make
        self.coef_: Any = None
        self.intercept_: Any = None

    def fit(self, x: Any, y: Any) -> SplitOneVsRest:
        classes = np.unique(y)
        groups = [g for g in (classes[i :: self.workers] for i in range(self.workers)) if len(g)]
        if len(groups) < 2 or len(classes) < 3 or not _can_fork():  # nothing to split: one plain model
            clf = self.make().fit(x, y)
            self.coef_, self.intercept_ = clf.coef_, clf.intercept_
            return self
        rest = int(classes.max()) + 1

        def fit_group(group: Any) -> tuple[Any, Any, Any]:
            """The group's labels against the rest: (the model's classes, coefficients, intercepts)."""
            clf = self.make().fit(x, np.where(np.isin(y, group), y, rest))
            return np.asarray(clf.classes_), np.asarray(clf.coef_), np.asarray(clf.intercept_)

        fitted = _forked_map(fit_group, groups)
        position = {int(c): i for i, c in enumerate(classes)}
        self.coef_ = np.zeros((len(classes), x.shape[1]), dtype=np.float64)
        self.intercept_ = np.zeros(len(classes), dtype=np.float64)
        for group, (labels, coef, bias) in zip(groups, fitted, strict=True):
            coef, bias = _both_rows(coef, bias)  # one class and "rest": a binary model
            row = {int(c): i for i, c in enumerate(labels)}
            for c in group.tolist():
                self.coef_[position[c]] = coef[row[c]]
                self.intercept_[position[c]] = bias[row[c]]
        return self


def _both_rows(coef: Any, bias: Any) -> tuple[Any, Any]:
    """A binary model's single row is for its second class: the first class's row is its negation."""
    if coef.shape[0] != 1:
        return coef, bias
    return np.concatenate([-coef, coef]), np.concatenate([-bias, bias])


def _can_fork() -> bool:
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods()


# what the forked workers of _forked_map run: (the function, its jobs), set just before the fork
_FORKED: tuple[Callable[[Any], Any], Sequence[Any]] | None = None


def _forked_map(fn: Callable[[Any], Any], jobs: Sequence[Any]) -> list[Any]:
    """[fn(job) for job in jobs], the first job here and the others each in a forked process meanwhile.
    The workers inherit fn and its inputs with the fork (the training matrix is shared, not copied
    or pickled); only their results come back through a pipe."""
    import multiprocessing

    global _FORKED
    _FORKED = (fn, jobs)
    try:
        with multiprocessing.get_context("fork").Pool(len(jobs) - 1) as pool:
            others = pool.map_async(_run_forked, range(1, len(jobs)))
            return [fn(jobs[0]), *others.get()]
    finally:
        _FORKED = None


def _run_forked(i: int) -> Any:
    assert _FORKED is not None
    fn, jobs = _FORKED
    return fn(jobs[i])


def _classifier() -> Any:
    return SplitOneVsRest()


def train(data: TrainingData, classifier: Callable[[], Any] = _classifier, prune: float = PRUNE) -> RankerModel:
    """Fit the model (scikit-learn is imported here only: serving never needs it). `classifier` makes
    the linear model (anything with fit, coef_ and intercept_); features whose (float16) weights all
    stay below `prune` are dropped (the crisis model prunes harder).

    Memory: the serving process never trains (bot/understanding/build.py runs this in a child
    process); here every array of the matrix's size (2.7 million values for the shipped FAQ) is
    made once and dropped as soon as the next step has what it needs."""
    classes = sorted(set(data.labels))
    if sum(c != OFF_TOPIC for c in classes) < 2:
        raise ValueError("the ranker needs at least two entries to tell apart")
    names, is_word, indptr, cols, counts = _interned_in_halves(data.texts)
    n = len(indptr) - 1
    # columns: the features seen in at least MIN_DF texts, character grams first
    df_all = np.bincount(cols, minlength=len(names))
    keep = df_all >= MIN_DF
    order = np.concatenate([np.flatnonzero(keep & ~is_word), np.flatnonzero(keep & is_word)])
    n_chars = int((keep & ~is_word).sum())
    vocab = Vocabulary.from_names([names[old] for old in order.tolist()])
    del names, keep, is_word
    new_of_old = np.full(len(df_all), -1, dtype=np.int32)
    new_of_old[order] = np.arange(len(order), dtype=np.int32)
    mapped = new_of_old[cols]
    del cols, new_of_old
    kept = mapped >= 0
    # row pointers after dropping the rare features: kept features before each row's start
    before = np.empty(len(kept) + 1, dtype=np.int32)
    before[0] = 0
    np.cumsum(kept, out=before[1:])
    new_indptr = before[indptr]
    del before, indptr
    cols, counts = mapped[kept], counts[kept]
    del mapped, kept
    df = df_all[order].astype(np.float64)
    del df_all, order
    idf = (np.log((1.0 + n) / (1.0 + df)) + 1.0).astype(np.float32)
    x = _matrix(new_indptr, cols, counts, idf, n_chars, len(vocab))
    del cols, counts, new_indptr
    number = {c: i for i, c in enumerate(classes)}
    y = np.array([number[label] for label in data.labels])
    clf = classifier()
    clf.fit(x, y)
    del x
    coef, bias = _both_rows(np.asarray(clf.coef_), np.asarray(clf.intercept_))
    # float16: 12.6 MB instead of 25 for the shipped FAQ of 2026-12-08, in the cache and in the serving
    # process; on 1,848 eval messages the top entry was the same for all and no top score moved by
    # more than 0.0003
    weights = np.ascontiguousarray(coef.T, dtype=np.float16)
    del coef
    kept = np.flatnonzero(np.abs(weights).max(axis=1) >= prune)
    if len(kept) < len(vocab):
        names = vocab.names()
        vocab = Vocabulary.from_names([names[i] for i in kept.tolist()])
        n_chars = int((kept < n_chars).sum())
        idf, weights = idf[kept], np.ascontiguousarray(weights[kept])
    intercept = np.asarray(bias, dtype=np.float32)
    return RankerModel(tuple(classes), vocab, n_chars, idf, weights, intercept, data.digest())


def trainable(faq: FAQ) -> bool:
    """Does this FAQ get a learned ranker? (two entries at least, MAX_ENTRIES at most; the off-topic
    class does not count)"""
    return 2 <= len(faq.entries) <= MAX_ENTRIES


def build(faq: FAQ) -> RankerModel | None:
    """The model for a FAQ, trained now; None for a FAQ that gets none (see `trainable`)."""
    if not trainable(faq):
        return None
    return train(training_data(phrasings(faq)))

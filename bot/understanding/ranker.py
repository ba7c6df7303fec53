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
from collections.abc import Callable, Iterable, Mapping
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
CODE_VERSION = "ranker-4"
# the off-topic class's label: not a kebab-case id, so no entry can ever be called that
OFF_TOPIC = "~off-topic"
# one-vs-rest training grows with entries x phrasings: 40 entries train in about 7 s of CPU, 100 would
# take about 30 s; beyond this the matcher decides alone (see README, Capacity)
MAX_ENTRIES = 100
NOISY_COPIES = 2  # noisy copies of every question and title (keywords get one)
C = 0.5  # LinearSVC regularisation (smaller = smoother)
CHAR_WEIGHT = 1.0  # the two blocks' weights in the final vector
WORD_WEIGHT = 0.7
SEED = 12
MIN_DF = 2  # a feature must occur in this many training texts to get a column


@lru_cache(maxsize=16_384)  # a word's 30-odd grams: about 3 KB, so at most about 50 MB
def _word_grams(word: str) -> tuple[str, ...]:
    w = f" {word} "
    return tuple(w[i : i + n] for n in (2, 3, 4, 5) for i in range(len(w) - n + 1))


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


def raw_features(text: str) -> tuple[Counts, Counts]:
    """(character grams, words and word pairs) of a message with their weighted counts."""
    chars: Counts = defaultdict(float)
    words: Counts = defaultdict(float)
    for part, weight in weighted_parts(text):
        for seq in _readings(part):
            for w in seq:
                for g in _word_grams(w):
                    chars[g] += weight
                words[w] += weight
            for a, b in pairwise(seq):
                words[f"{a} {b}"] += weight
    return chars, words


@dataclass(frozen=True)
class TrainingData:
    texts: tuple[str, ...]
    labels: tuple[str, ...]
    original: tuple[bool, ...]  # written by staff (True) or a noisy copy (False)

    def digest(self) -> str:
        h = hashlib.sha256(CODE_VERSION.encode())
        h.update(repr((C, CHAR_WEIGHT, WORD_WEIGHT, NOISY_COPIES, SEED)).encode())
        for text, label in zip(self.texts, self.labels, strict=True):
            h.update(f"{label}\t{text}\n".encode())
        return h.hexdigest()


def phrasings(faq: FAQ) -> list[tuple[str, str, str]]:
    """(entry id, kind, text) of every title, question and keyword, every language, in file order;
    then (OFF_TOPIC, "question", text) of every off-topic phrasing (faq/off_topic.yaml)."""
    out: list[tuple[str, str, str]] = []
    for entry in faq.entries.values():
        for block in entry.langs.values():
            out.append((entry.id, "title", block.title))
            out.extend((entry.id, "question", q) for q in block.questions)
            out.extend((entry.id, "keyword", k) for k in block.keywords)
    out.extend((OFF_TOPIC, "question", text) for text in faq.off_topic)
    return out


def training_data(items: Iterable[tuple[str, str, str]], seed: int = SEED, copies: int = NOISY_COPIES) -> TrainingData:
    """The phrasings and their noisy copies (deterministic for a seed)."""
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
        for v in augment.variants(text, rng, copies if kind != "keyword" else 1):
            add(entry_id, v, False)
    return TrainingData(tuple(texts), tuple(labels), tuple(original))


@dataclass(frozen=True)
class RankerModel:
    """The trained model as plain arrays (what a cache stores)."""

    classes: tuple[str, ...]
    vocab: Mapping[str, int]  # feature -> column; character grams first, then words ("w " prefix)
    n_chars: int  # columns below this are character grams
    idf: Any  # float32 [features]
    weights: Any  # float32 [features, classes]
    intercept: Any  # float32 [classes]
    digest: str  # of the training data and the code version

    def arrays(self) -> dict[str, Any]:
        names = sorted(self.vocab, key=self.vocab.__getitem__)
        return {
            "classes": np.frombuffer("\n".join(self.classes).encode(), dtype=np.uint8),
            "vocab": np.frombuffer("\n".join(names).encode(), dtype=np.uint8),
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
        names = bytes(arrays["vocab"]).decode().split("\n")
        idf = np.asarray(arrays["idf"], dtype=np.float32)
        weights = np.asarray(arrays["weights"], dtype=np.float32)
        intercept = np.asarray(arrays["intercept"], dtype=np.float32)
        n_chars = int(np.asarray(arrays["n_chars"]).reshape(-1)[0])
        if weights.shape != (len(names), len(classes)) or idf.shape != (len(names),):
            raise ValueError("ranker arrays of different sizes")
        if intercept.shape != (len(classes),) or not 0 <= n_chars <= len(names):
            raise ValueError("ranker arrays of different sizes")
        if not (np.isfinite(weights).all() and np.isfinite(idf).all() and np.isfinite(intercept).all()):
            raise ValueError("ranker arrays hold non-finite numbers")
        vocab = {name: i for i, name in enumerate(names)}
        if len(vocab) != len(names):
            raise ValueError("ranker vocabulary has duplicates")
        digest = bytes(arrays["digest"]).decode()
        return cls(classes, vocab, n_chars, idf, weights, intercept, digest)


def _vector(model_vocab: Mapping[str, int], n_chars: int, idf: Any, chars: Counts, words: Counts) -> tuple[Any, Any]:
    """Columns and TF-IDF values of one text: sublinear counts, each block of unit length."""
    del n_chars  # (the blocks are told apart by where they come from)
    get = model_vocab.get
    col_parts: list[Any] = []
    val_parts: list[Any] = []
    for counts, prefix, block_weight in ((chars, "", CHAR_WEIGHT), (words, "w ", WORD_WEIGHT)):
        if not counts:
            continue
        names = counts if not prefix else [prefix + f for f in counts]
        cols = np.fromiter(map(get, names, repeat(-1)), dtype=np.int64, count=len(counts))
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
        out: Any = vals @ m.weights[cols] + m.intercept
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
    feature numbers, weighted counts)."""
    ids: dict[str, int] = {}
    is_word = array("b")
    cols = array("i")
    counts = array("d")
    indptr = array("q", [0])
    for text in texts:
        chars, words = raw_features(text)
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
        np.frombuffer(cols, dtype=np.int32).astype(np.int64),
        np.frombuffer(counts, dtype=np.float64),
    )


def _matrix(indptr: Any, indices: Any, counts: Any, idf: Any, n_chars: int, n_features: int) -> Any:
    """The training texts as one sparse matrix, built as `_vector` builds one text (vectorised)."""
    from scipy.sparse import csr_matrix

    rows = len(indptr) - 1
    tf = np.where(counts >= 1, 1.0 + np.log(np.maximum(counts, 1e-12)), counts)
    values = tf * idf[indices]
    row_of = np.repeat(np.arange(rows), np.diff(indptr))
    is_word = indices >= n_chars
    # each block of each row to unit length, then scaled by the block's weight
    key = row_of * 2 + is_word
    sq = np.bincount(key, weights=values * values, minlength=rows * 2)
    norm = np.sqrt(sq[key])
    norm[norm == 0] = 1.0
    values = values / norm * np.where(is_word, WORD_WEIGHT, CHAR_WEIGHT)
    return csr_matrix((values, indices, indptr), shape=(rows, n_features))


def _linear_svc() -> Any:
    from sklearn.svm import LinearSVC

    # tol 0.01 (liblinear's default 0.0001): a third faster, the same rankings on the development sets
    return LinearSVC(C=C, loss="squared_hinge", dual=True, tol=0.01, max_iter=5000, random_state=SEED)


def train(data: TrainingData, classifier: Callable[[], Any] = _linear_svc) -> RankerModel:
    """Fit the model (scikit-learn is imported here only: serving never needs it). `classifier` makes
    the linear model (anything with fit, coef_ and intercept_)."""

    names, is_word, indptr, cols, counts = _interned(data.texts)
    _word_grams.cache_clear()  # the training words' grams: messages need others
    n = len(indptr) - 1
    # columns: the features seen in at least MIN_DF texts, character grams first
    df_all = np.bincount(cols, minlength=len(names))
    keep = df_all >= MIN_DF
    order = np.concatenate([np.flatnonzero(keep & ~is_word), np.flatnonzero(keep & is_word)])
    n_chars = int((keep & ~is_word).sum())
    new_of_old = np.full(len(names), -1, dtype=np.int64)
    new_of_old[order] = np.arange(len(order))
    mapped = new_of_old[cols]
    kept = mapped >= 0
    row_of = np.repeat(np.arange(n), np.diff(indptr))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(row_of[kept], minlength=n))])
    cols, counts = mapped[kept], counts[kept]
    vocab = {names[int(old)]: i for i, old in enumerate(order)}
    del names, new_of_old, mapped, kept, row_of
    df = df_all[order].astype(np.float64)
    idf = (np.log((1.0 + n) / (1.0 + df)) + 1.0).astype(np.float32)
    x = _matrix(indptr, cols, counts, idf, n_chars, len(vocab))
    classes = sorted(set(data.labels))
    if sum(c != OFF_TOPIC for c in classes) < 2:
        raise ValueError("the ranker needs at least two entries to tell apart")
    number = {c: i for i, c in enumerate(classes)}
    y = np.array([number[label] for label in data.labels])
    clf = classifier()
    clf.fit(x, y)
    coef, bias = np.asarray(clf.coef_), np.asarray(clf.intercept_)
    if len(classes) == 2 and coef.shape[0] == 1:  # a binary model: one hyperplane, for the second class
        coef, bias = np.vstack([-coef, coef]), np.concatenate([-bias, bias])
    weights = np.ascontiguousarray(coef.T, dtype=np.float32)
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

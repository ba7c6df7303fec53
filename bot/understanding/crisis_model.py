"""The learned half of the crisis check: a linear model that catches crisis wordings the rules miss.

The rules (crisis.py, bot/data/crisis.yaml) explain themselves but are brittle in the way of all
word lists: on crisis messages written after they were tuned they found 83 % and then 72 % (the
sealed sets' first looks), and raised 16 % false alarms on new calm near-misses. This model is the
ranker's kind (ranker.py: a linear SVM over character and word n-grams, served with numpy), trained
on bot/data/crisis_examples.yaml: crisis messages by category, with the ranker's typing noise,
against calm near-misses and ordinary questions. crisis.detect combines the two: the model's
category where no rule stands and its margin over "none" is above THRESHOLD (LIFE_THRESHOLD for
suicide and medical); a rule overruled where the margin is below VETO. All three were chosen by
cross-validation over sets written after the rules (README, "Crisis messages").

The model does not depend on the FAQ, so it is built by developers, not at load: the arrays ship as
bot/data/crisis_model.npz (read with allow_pickle=False) and a test fails when they no longer match
the examples or the feature code (rebuild: `make crisis-model`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bot.understanding import ranker

DATA = Path(__file__).resolve().parent.parent / "data"
EXAMPLES = DATA / "crisis_examples.yaml"
SHIPPED = DATA / "crisis_model.npz"
NONE = "none"
VERSION = "crisis-model-1"
CRISIS_COPIES = 3  # noisy copies of every crisis example (typos, Latin letters, words run together)
CALM_COPIES = 2  # ...of every calm near-miss (2 since 2026-12-08: fewer false alarms, no fewer crises, in
# cross-validation over parts 7-10); the ordinary questions go in as written
PRUNE = 0.1  # features whose weights all stay below this are dropped: 90,000 of 234,000 kept, 16 MB less in the bot
THRESHOLD = 0.0  # where no rule fired, the best category must beat "none" by this much
LIFE_THRESHOLD = -0.3  # ...for suicide and medical: a miss there costs a life, a false alarm a few lines
VETO = -0.6  # where a rule fired, a margin below this (the model sure it is calm) overrules it


@dataclass(frozen=True)
class Examples:
    crisis: dict[str, tuple[str, ...]]
    calm: tuple[str, ...]
    ordinary: tuple[str, ...]


def read_examples(path: Path = EXAMPLES) -> Examples:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    crisis = {str(c): tuple(str(q) for q in qs) for c, qs in raw["crisis"].items()}
    return Examples(crisis, tuple(map(str, raw["calm"])), tuple(map(str, raw["ordinary"])))


def training_data(ex: Examples) -> ranker.TrainingData:
    parts = [
        ranker.training_data([(c, "question", q) for c, qs in ex.crisis.items() for q in qs], copies=CRISIS_COPIES),
        ranker.training_data([(NONE, "question", q) for q in ex.calm], copies=CALM_COPIES),
        ranker.training_data([(NONE, "question", q) for q in ex.ordinary], copies=0),
    ]
    return ranker.TrainingData(
        tuple(t for p in parts for t in p.texts),
        tuple(label for p in parts for label in p.labels),
        tuple(o for p in parts for o in p.original),
        hashlib.sha256("".join(p.source for p in parts).encode()).hexdigest(),
    )


def digest(data: ranker.TrainingData) -> str:
    """Names the examples, the features' code and this module's settings (what the shipped file must match)."""
    settings = repr((VERSION, CRISIS_COPIES, CALM_COPIES, PRUNE)).encode()
    return hashlib.sha256(settings + data.digest().encode()).hexdigest()


def build(ex: Examples) -> ranker.RankerModel:
    """Train (scikit-learn, developers only) and drop the features that carry no weight."""
    data = training_data(ex)
    return dataclasses.replace(ranker.train(data, prune=PRUNE), digest=digest(data))


def save(model: ranker.RankerModel, path: Path = SHIPPED) -> None:
    arrays = model.arrays()
    arrays["idf"] = arrays["idf"].astype(np.float16)
    arrays["weights"] = arrays["weights"].astype(np.float16)
    with path.open("wb") as out:
        np.savez_compressed(out, **arrays)


def load(path: Path = SHIPPED) -> ranker.RankerModel:
    with np.load(path, allow_pickle=False) as arrays:
        return ranker.RankerModel.from_arrays(arrays)


@lru_cache(maxsize=1)
def shipped() -> ranker.Ranker | None:
    """The shipped model, served; None (rules only) when the file is missing or unreadable."""
    try:
        return ranker.Ranker(load())
    except (OSError, ValueError, KeyError):
        return None


def margin(model: ranker.Ranker, text: str) -> tuple[str, float]:
    """The best crisis category and by how much its decision value beats "none"."""
    scores: Any = model.scores(text)
    none = model.classes.index(NONE)
    others = np.delete(np.arange(len(model.classes)), none)
    best = int(others[int(np.argmax(scores[others]))])
    return model.classes[best], float(scores[best] - scores[none])


def main(argv: list[str]) -> int:
    """Rebuild bot/data/crisis_model.npz from the examples (`--check`: only say whether it is current)."""
    ex = read_examples()
    want = digest(training_data(ex))
    current = shipped()
    if "--check" in argv:
        ok = current is not None and current.model.digest == want
        print("crisis model is current" if ok else "crisis model is stale: run make crisis-model")
        return 0 if ok else 1
    model = build(ex)
    save(model)
    print(f"wrote {SHIPPED} ({SHIPPED.stat().st_size // 1024} KB, {len(model.vocab)} features)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

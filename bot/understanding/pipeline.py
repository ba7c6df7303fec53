"""One message through the understanding stages, after the crisis check:

    normalise → rank (learned, ranker.py: the entries and the off-topic class) → gate and explain
    (lexical, gate.py over bot/matcher.py; the asking part of a long message when its story gets in
    the way) → decide (decide.py: learnt rejection, then answer / did you mean / fallback)

`Understanding` is everything these stages need for one FAQ version (built once, when the FAQ is
loaded); `understand` is the one function the dialogue calls. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import MatcherConfig
from bot.matcher import Candidate, Index
from bot.normalize import normalize
from bot.understanding.decide import (
    Calibration,
    Decision,
    combined_ranking,
    decide,
    from_verdict,
    shipped_calibration,
)
from bot.understanding.gate import ANSWER, FALLBACK, Verdict, judge
from bot.understanding.ranker import Ranker

ENGINES = ("combined", "matcher", "ranker")


@dataclass(frozen=True)
class Understanding:
    index: Index
    ranker: Ranker | None  # None: no learned ranker (a FAQ too large to train on load); the matcher decides
    calibration: Calibration
    # "combined" serves users; "matcher" and "ranker" alone are for comparisons (python -m bot eval
    # --engine): the ranker alone answers its top entry when its decision value is positive
    engine: str = "combined"

    @classmethod
    def of(cls, index: Index, ranker: Ranker | None, calibration: Calibration | None = None) -> Understanding:
        return cls(index, ranker, calibration or shipped_calibration())


def understand(
    u: Understanding, text: str, mc: MatcherConfig, candidates: tuple[Candidate, ...] | None = None
) -> Decision:
    """Answer, "did you mean" or fallback for a message that holds content words and no crisis.
    `candidates`: the matcher's, when the caller already has them."""
    if u.ranker is None or u.engine == "matcher":
        return from_verdict(judge(u.index, text, mc, candidates, wanted=_matchers_own))
    scores, off_topic = u.ranker.assess(text)
    if u.engine == "ranker":
        return ranker_alone(scores, judge(u.index, text, mc, candidates, wanted=_matchers_own), off_topic)
    weight = u.calibration.matcher_weight
    lexical = judge(u.index, text, mc, candidates, wanted=lambda v: combined_ranking(scores, v, weight, 1)[0][0])
    words = len(normalize(text).split())
    return decide(scores, lexical, words, u.calibration, mc.max_suggestions, off_topic)


def _matchers_own(v: Verdict) -> str | None:
    return v.top.entry_id if v.top is not None else None


def ranker_alone(scores: list[tuple[str, float]], lexical: Verdict, off_topic: float | None = None) -> Decision:
    """The learned ranker on its own: its top entry when its decision value is positive and above its
    off-topic class's, else the fallback."""
    entry_id, value = scores[0]
    if value > 0 and (off_topic is None or value > off_topic):
        return Decision(ANSWER, entry_id, (), value, tuple(scores[:5]), lexical.candidates)
    return Decision(FALLBACK, None, (), value, tuple(scores[:5]), lexical.candidates)

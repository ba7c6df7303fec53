"""The lexical gate: what the matcher (bot/matcher.py) says about a message, as a verdict.

The matcher is good at what a bag-of-n-grams classifier is bad at: noticing that a message is about
something the FAQ does not cover (words the FAQ never uses, words that name other services), and
being unsure when two entries explain a message equally. Its verdict (answer / did you mean /
fallback, by the thresholds in config.yaml → matcher) is one input of the decision
(bot/understanding/decide.py), and its candidates explain it. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from bot.config import MatcherConfig
from bot.matcher import Candidate, Index
from bot.understanding.asking import asking_text

ANSWER, SUGGEST, FALLBACK = "answer", "did_you_mean", "fallback"


@dataclass(frozen=True)
class Verdict:
    kind: str  # ANSWER | SUGGEST | FALLBACK
    candidates: tuple[Candidate, ...]  # the matcher's ranking, best first
    picks: tuple[str, ...]  # the entry answered, or the entries it would offer
    other_services: int = 0  # words of the message that name other services (lexicon's off_topic)
    asking_top: str | None = None  # a long message's asking part on its own: the matcher's top entry

    @property
    def top(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None

    def score_of(self, entry_id: str) -> float:
        return next((c.score for c in self.candidates if c.entry_id == entry_id), 0.0)


def verdict(candidates: tuple[Candidate, ...], mc: MatcherConfig) -> Verdict:
    """The matcher's own decision on its candidates (the rules the bot used before the ranker)."""
    top = candidates[0] if candidates else None
    second = candidates[1] if len(candidates) > 1 else None
    long_and_on_topic = top is not None and top.evidence >= mc.suggest_evidence and top.fit >= mc.suggest_evidence_fit
    if top is None or (top.score < mc.suggest_threshold and not long_and_on_topic):
        return Verdict(FALLBACK, candidates, ())
    if (
        top.score >= mc.answer_threshold
        and top.coverage >= mc.min_coverage
        and (second is None or top.score - second.score >= mc.margin)
    ):
        return Verdict(ANSWER, candidates, (top.entry_id,))
    # a long message let through on its evidence: only the entries about as good as the top
    floor = max(mc.suggest_threshold, top.score - 0.25) if top.score >= mc.suggest_threshold else top.score - 0.03
    picks = tuple(c.entry_id for c in candidates if c.score >= floor)[: mc.max_suggestions]
    return Verdict(SUGGEST, candidates, picks)


def merge(whole: tuple[Candidate, ...], asking: tuple[Candidate, ...], limit: int) -> tuple[Candidate, ...]:
    """The matcher's candidates for a long message and for its asking part as one ranking: each
    entry with the better of its two candidates, best first (ties: the whole message's order)."""
    best: dict[str, Candidate] = {}
    for c in (*whole, *asking):
        old = best.get(c.entry_id)
        if old is None or c.score > old.score:
            best[c.entry_id] = c
    return tuple(sorted(best.values(), key=lambda c: -c.score)[:limit])


def judge(
    index: Index,
    text: str,
    mc: MatcherConfig,
    candidates: tuple[Candidate, ...] | None = None,
    wanted: Callable[[Verdict], str | None] | None = None,
) -> Verdict:
    """The matcher's verdict on a message, looking at the asking part of a long one (a story, then a
    question: bot/understanding/asking.py) when the story's words get in the way:
    - the whole message is rejected: the asking part is matched on its own, and when it is on topic
      the verdict is made on both (each entry with its better score), so the story does not shut the
      gate on a question the FAQ covers;
    - `asking_top`: the matcher's top entry for the asking part alone, which a direct answer may
      agree with (bot/understanding/decide.py) when the story pulls the whole message's elsewhere.
    `candidates`: the whole message's, when the caller already has them. `wanted`: the entry the
    caller would answer on a verdict; the asking part is then matched only when it can matter (the
    whole is rejected, or `wanted` is not the whole message's top entry). Pure."""
    limit = max(5, mc.max_suggestions + 1)
    if candidates is None:
        candidates = tuple(index.match(text, limit=limit))
    whole = verdict(candidates, mc)
    asking = asking_text(text) if whole.kind == FALLBACK or _may_differ(whole, wanted) else text
    asking_top = None
    if asking != text:
        asked = tuple(index.match(asking, limit=limit))
        asking_top = asked[0].entry_id if asked else None
        if whole.kind == FALLBACK:
            merged = verdict(merge(candidates, asked, limit), mc)
            whole = whole if merged.kind == FALLBACK else merged
    if whole.kind == FALLBACK:  # nothing past the gate looks at the rest
        return replace(whole, asking_top=asking_top)
    return replace(whole, other_services=len(index.off_topic_words(text)), asking_top=asking_top)


def _may_differ(v: Verdict, wanted: Callable[[Verdict], str | None] | None) -> bool:
    if wanted is None:
        return True
    top = v.top
    return top is None or wanted(v) != top.entry_id

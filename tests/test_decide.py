"""The lexical gate (bot/understanding/gate.py), the decision (decide.py) and the pipeline that runs
them (pipeline.py)."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.config import MatcherConfig
from bot.dialogue import Knowledge
from bot.matcher import Candidate
from bot.understanding.decide import (
    FEATURES,
    Calibration,
    combined_ranking,
    decide,
    features,
    from_verdict,
    shipped_calibration,
)
from bot.understanding.gate import ANSWER, FALLBACK, SUGGEST, verdict
from bot.understanding.pipeline import ENGINES, understand

MC = MatcherConfig(answer_threshold=0.33, margin=0.04, suggest_threshold=0.30, max_suggestions=3)


def cand(entry_id: str, score: float, coverage: float = 0.8, fit: float = 0.8, evidence: float = 1.0) -> Candidate:
    return Candidate(entry_id, score, coverage, fit, evidence)


# ---------------------------------------------------------------- gate


def test_the_gate_answers_a_clear_top_entry() -> None:
    v = verdict((cand("a", 0.6), cand("b", 0.4)), MC)
    assert (v.kind, v.picks) == (ANSWER, ("a",))


def test_the_gate_is_unsure_when_two_entries_are_close() -> None:
    v = verdict((cand("a", 0.6), cand("b", 0.58), cand("c", 0.2)), MC)
    assert v.kind == SUGGEST and v.picks[:2] == ("a", "b")


def test_the_gate_rejects_a_low_score_or_nothing() -> None:
    assert verdict((cand("a", 0.1),), MC).kind == FALLBACK
    assert verdict((), MC).kind == FALLBACK


def test_the_gate_lets_a_long_on_topic_message_through_as_a_suggestion() -> None:
    v = verdict((cand("a", 0.25, fit=0.9, evidence=3.0), cand("b", 0.1)), MC)
    assert v.kind == SUGGEST and v.picks == ("a",)


# ---------------------------------------------------------------- decide

EVEN = Calibration(matcher_weight=1.0, coef=(0.0,) * len(FEATURES), intercept=0.0, answer_p=0.4, suggest_p=0.3)


def calibration(p: float) -> Calibration:
    """A calibration whose probability is `p` whatever the message (intercept only)."""
    return dataclasses.replace(EVEN, intercept=math.log(p / (1 - p)))


SCORES = [("a", 0.9), ("b", -0.2), ("c", -0.8)]


def test_a_confident_agreeing_pair_answers() -> None:
    v = verdict((cand("a", 0.6), cand("b", 0.3)), MC)
    d = decide(SCORES, v, 5, calibration(0.9))
    assert (d.kind, d.entry_id) == (ANSWER, "a") and d.confidence == pytest.approx(0.9)


def test_no_direct_answer_when_the_two_disagree() -> None:
    v = verdict((cand("b", 0.6), cand("a", 0.3)), MC)  # the matcher is sure of b
    d = decide([("a", 2.0), ("b", -0.5), ("c", -1.0)], v, 5, calibration(0.99))
    assert d.kind == SUGGEST and d.suggestions[0] == "a" and "b" in d.suggestions


def test_thresholds_decide_between_answer_suggestion_and_fallback() -> None:
    v = verdict((cand("a", 0.6), cand("b", 0.3)), MC)
    assert decide(SCORES, v, 5, calibration(0.35)).kind == SUGGEST
    assert decide(SCORES, v, 5, calibration(0.2)).kind == FALLBACK


def test_what_the_gate_rejects_stays_rejected() -> None:
    v = verdict((cand("a", 0.1),), MC)
    d = decide(SCORES, v, 5, calibration(0.999))
    assert d.kind == FALLBACK and d.ranking[0][0] == "a"  # still explained


def test_without_a_ranker_the_matcher_decides() -> None:
    v = verdict((cand("a", 0.6), cand("b", 0.58)), MC)
    d = decide([], v, 3, EVEN)
    assert d == from_verdict(v) and d.kind == SUGGEST


def test_the_combined_ranking_adds_the_matchers_score() -> None:
    v = verdict((cand("b", 0.6),), MC)
    assert combined_ranking([("a", 0.5), ("b", 0.0)], v, 1.0)[0][0] == "b"
    assert combined_ranking([("a", 0.5), ("b", 0.0)], v, 0.5)[0][0] == "a"


def test_features_are_in_order_and_finite() -> None:
    v = verdict((cand("a", 0.6), cand("b", 0.3)), MC)
    f = features(combined_ranking(SCORES, v, 1.0), SCORES, v, 7)
    assert len(f) == len(FEATURES) and all(math.isfinite(x) for x in f)
    assert f[FEATURES.index("agrees_with_matcher")] == 1.0


def test_the_shipped_calibration_is_sane() -> None:
    cal = shipped_calibration()
    assert 0.0 < cal.suggest_p <= cal.answer_p < 1.0
    assert cal.matcher_weight >= 0 and len(cal.coef) == len(FEATURES)
    assert 0.0 <= cal.probability([1e9] * len(FEATURES)) <= 1.0
    assert 0.0 <= cal.probability([-1e9] * len(FEATURES)) <= 1.0
    assert Calibration.from_dict(cal.as_dict()) == cal
    with pytest.raises(ValueError):
        Calibration.from_dict({**cal.as_dict(), "features": ["something", "else"]})


# ---------------------------------------------------------------- the pipeline on the real FAQ

BAD_INPUT = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=2000, max_size=5000),
    st.text(alphabet="😀🙏🇰🇿\u200d\u202e\u0000\u0007\t\n ", max_size=60),
    st.text(alphabet="убежище беженец паспорт asylum status босқын куәлік іїєґ?!,.", max_size=400),
)


@given(BAD_INPUT, st.sampled_from(ENGINES))
def test_understand_never_raises_and_offers_only_known_entries(knowledge: Knowledge, text: str, engine: str) -> None:
    u = dataclasses.replace(knowledge.understanding, engine=engine)
    mc = knowledge.config.matcher
    d = understand(u, text, mc)
    assert d.kind in (ANSWER, SUGGEST, FALLBACK)
    if d.kind == ANSWER:
        assert d.entry_id in knowledge.faq.entries
    if d.kind == SUGGEST:
        assert d.suggestions and set(d.suggestions) <= set(knowledge.faq.entries)
        assert len(d.suggestions) <= mc.max_suggestions
    assert 0.0 <= d.confidence <= 1.0 or engine != "combined"


@pytest.mark.parametrize(
    ("text", "entry_id", "direct"),
    [
        ("как подать на убежище", "asylum-apply", True),
        ("kak poluchit status bezhenca", "asylum-apply", True),
        ("потерял паспорт что делать", "lost-documents", True),
        ("where is the unhcr office", "contacts", True),
        ("how to get refugee status", "asylum-apply", True),
        ("боскын мартебесин калай алам", "asylum-apply", False),  # answered or offered first
    ],
)
def test_plain_questions_are_understood(knowledge: Knowledge, text: str, entry_id: str, direct: bool) -> None:
    d = understand(knowledge.understanding, text, knowledge.config.matcher)
    shown = [d.entry_id] if d.kind == ANSWER else list(d.suggestions)
    assert shown[:1] == [entry_id], d
    assert d.kind == ANSWER or not direct, d


@pytest.mark.parametrize("text", ["какая погода завтра в астане", "рецепт плова", "who won the football match"])
def test_off_topic_questions_get_the_fallback(knowledge: Knowledge, text: str) -> None:
    assert understand(knowledge.understanding, text, knowledge.config.matcher).kind == FALLBACK

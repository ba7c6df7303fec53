"""Learnt rejection and the asking part (issue: off-topic rejection and long messages):
faq/off_topic.yaml (loaded and checked like the rest of the FAQ), the ranker's off-topic class, the
rejection model of the decision and its calibration, and the gate's reading of a long message's
asking part. Fast: a small model trained once, the shared real knowledge, synthetic rows."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from pathlib import Path

import pytest
from conftest import CONFIG, DATA, copy_content
from hypothesis import given
from hypothesis import strategies as st

from bot.config import MatcherConfig, load_config
from bot.dialogue import Knowledge
from bot.evaluation import parse_items
from bot.faq import FAQ, load_faq
from bot.matcher import Candidate
from bot.normalize import normalize
from bot.problems import ContentError, Problems
from bot.understanding import ranker
from bot.understanding.asking import STORY_WEIGHT, asking_text, weighted_parts
from bot.understanding.calibrate import REJECT_COST, Row, fit_rejection
from bot.understanding.decide import (
    FEATURES,
    LONG_WORDS,
    REJECT_FEATURES,
    Calibration,
    agrees,
    decide,
    reject_features,
    rejects,
    shipped_calibration,
)
from bot.understanding.gate import ANSWER, FALLBACK, SUGGEST, Verdict, judge, merge, verdict
from bot.understanding.pipeline import ranker_alone
from bot.yamlio import read_yaml

# the tuning sets' off-topic messages are phrasings now (`eval --unseen`)
BLIND_SETS = ("eval_blind6.yaml",)
MC = MatcherConfig(answer_threshold=0.33, margin=0.04, suggest_threshold=0.30, max_suggestions=3)


def cand(entry_id: str, score: float, coverage: float = 0.8) -> Candidate:
    return Candidate(entry_id, score, coverage, 0.8, 1.0)


# ---------------------------------------------------------------- faq/off_topic.yaml


def test_the_shipped_off_topic_file_is_loaded_and_varied(knowledge: Knowledge) -> None:
    texts = knowledge.faq.off_topic
    assert len(texts) >= 300
    joined = " ".join(texts)
    assert any("а" <= ch <= "я" for ch in joined) and any("a" <= ch <= "z" for ch in joined)
    assert any(ch in "әғқңөұүі" for ch in joined) and any(ch in "їєґ" for ch in joined)  # kk, uk
    assert sum(len(t.split()) >= 15 for t in texts) >= 10  # long stories too


def test_no_evaluation_message_stands_in_the_off_topic_file(knowledge: Knowledge) -> None:
    """The blind set measures what the bot was not taught: none of its messages is an off-topic phrasing."""
    off = {normalize(t) for t in knowledge.faq.off_topic}
    inside = [
        (name, item.q)
        for name in BLIND_SETS
        for item in parse_items(read_yaml(DATA / name))
        if normalize(item.q) in off
    ]
    assert inside == []


def load(tmp_path: Path, off_topic: str) -> tuple[FAQ | None, Problems]:
    """The small valid sample with `off_topic` as its faq/off_topic.yaml, loaded (no training)."""
    root = copy_content(tmp_path / "c", faq_files=DATA / "broken" / "valid").root
    (root / "faq" / "off_topic.yaml").write_text(off_topic, "utf-8")
    problems = Problems()
    config = load_config(CONFIG)
    try:
        faq = load_faq(root / "faq", config, dt.date.today(), problems)
    except ContentError:
        return None, problems
    return faq, problems


def test_off_topic_phrasings_load_in_file_order(tmp_path: Path) -> None:
    faq, problems = load(tmp_path, "weather:\n  - какая погода\n  - will it rain\nsport:\n  - '12345'\n")
    assert faq is not None and not problems.errors
    assert faq.off_topic == ("какая погода", "will it rain", "12345")


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        ("weather:\n  - ok\nsport:\n  - 12345\n", 4, "must be a text: put it in quotes"),
        ("weather:\n  - ok\nsport: football\n", 3, "subject 'sport' must be a list of phrasings"),
        ("- just\n- a list\n", 1, "lists phrasings under subjects"),
        ("weather:\n  - " + "a" * 700 + "\n", 2, "longer than 600 characters"),
        ("weather:\n  - ok\n  - как подать на убежище\n", 3, "also a question of entry 'asylum-apply'"),
    ],
)
def test_check_names_the_line_of_a_bad_off_topic_phrasing(tmp_path: Path, text: str, line: int, says: str) -> None:
    faq, problems = load(tmp_path, text)
    assert faq is None
    found = [p for p in problems.errors if says in p.message]
    assert found, [str(p) for p in problems.errors]
    assert found[0].line == line and found[0].file.endswith("off_topic.yaml")


def test_a_repeated_off_topic_phrasing_is_only_a_warning(tmp_path: Path) -> None:
    faq, problems = load(tmp_path, "weather:\n  - Какая погода?\nagain:\n  - какая  погода\n")
    assert faq is not None and faq.off_topic == ("Какая погода?",)
    assert any("already on line 2" in p.message and p.line == 4 for p in problems.warnings)


def test_an_empty_off_topic_file_is_fine(tmp_path: Path) -> None:
    faq, problems = load(tmp_path, "# nothing yet\n")
    assert faq is not None and faq.off_topic == () and not problems.errors


# ---------------------------------------------------------------- the ranker's off-topic class

SMALL = [
    ("apply", "question", "как подать на убежище"),
    ("apply", "question", "где подать заявление на статус беженца"),
    ("apply", "question", "how to apply for asylum"),
    ("passport", "question", "я потерял паспорт что делать"),
    ("passport", "question", "паспорт украли как восстановить"),
    ("passport", "question", "i lost my passport"),
    (ranker.OFF_TOPIC, "question", "какая завтра погода"),
    (ranker.OFF_TOPIC, "question", "рецепт плова"),
    (ranker.OFF_TOPIC, "question", "who won the football match"),
    (ranker.OFF_TOPIC, "question", "курс доллара сегодня"),
]


@pytest.fixture(scope="module")
def small() -> ranker.Ranker:
    return ranker.Ranker(ranker.train(ranker.training_data(SMALL)))


def test_the_off_topic_class_is_learnt_but_never_ranked_as_an_entry(small: ranker.Ranker) -> None:
    assert small.classes == ("apply", "passport")
    assert ranker.OFF_TOPIC in small.model.classes
    ranking, off = small.assess("погода завтра")
    assert [e for e, _ in ranking] in (["apply", "passport"], ["passport", "apply"])
    assert off is not None and off > ranking[0][1]
    ranking, off = small.assess("как подать на убежище")
    assert ranking[0][0] == "apply" and off is not None and ranking[0][1] > off
    assert small.rank("паспорт", 5) == small.assess("паспорт", 5)[0]


def test_phrasings_add_the_off_topic_file_under_its_own_label(knowledge: Knowledge) -> None:
    items = ranker.phrasings(knowledge.faq)
    off = [text for label, _, text in items if label == ranker.OFF_TOPIC]
    assert tuple(off) == knowledge.faq.off_topic
    assert not ranker.trainable(dataclasses.replace(knowledge.faq, entries={}))


def test_a_model_without_an_off_topic_class_still_serves() -> None:
    r = ranker.Ranker(ranker.train(ranker.training_data([x for x in SMALL if x[0] != ranker.OFF_TOPIC])))
    ranking, off = r.assess("погода")
    assert off is None and len(ranking) == 2


def test_the_ranker_alone_rejects_when_its_off_topic_class_wins() -> None:
    v = verdict((cand("a", 0.6),), MC)
    assert ranker_alone([("a", 0.5), ("b", -1.0)], v, off_topic=0.9).kind == FALLBACK
    assert ranker_alone([("a", 0.5), ("b", -1.0)], v, off_topic=0.1).kind == ANSWER
    assert ranker_alone([("a", 0.5), ("b", -1.0)], v, off_topic=None).kind == ANSWER


@given(
    st.one_of(
        st.text(max_size=200),
        st.text(alphabet=st.characters(codec="utf-8"), min_size=1000, max_size=5000),
        st.text(alphabet="😀🙏🇰🇿\u200d\u202e\u0000\t\n ", max_size=50),
        st.text(alphabet="абвгдқәіңөұүһ abcxyz іїєґ?!.,", max_size=300),
    )
)
def test_assess_is_finite_and_sorted_for_any_text(knowledge: Knowledge, text: str) -> None:
    r = knowledge.understanding.ranker
    assert r is not None
    ranking, off = r.assess(text)
    assert len(ranking) == len(r.classes) and ranker.OFF_TOPIC not in dict(ranking)
    values = [v for _, v in ranking]
    assert values == sorted(values, reverse=True) and all(math.isfinite(v) for v in values)
    assert off is not None and math.isfinite(off)


# ---------------------------------------------------------------- the rejection model

SCORES = [("a", 0.4), ("b", -0.5), ("c", -0.9)]


def rejecting(p: float) -> Calibration:
    """A calibration whose rejection model says `p` whatever the message (intercept only), and
    whose answer model always answers."""
    return Calibration(
        matcher_weight=1.0,
        coef=(0.0,) * len(FEATURES),
        intercept=10.0,
        answer_p=0.5,
        suggest_p=0.3,
        reject_coef=(0.0,) * len(REJECT_FEATURES),
        reject_intercept=math.log(p / (1 - p)),
        reject_p=0.5,
    )


def test_the_rejection_model_sends_what_it_finds_off_topic_to_the_fallback() -> None:
    v = verdict((cand("a", 0.6), cand("b", 0.3)), MC)
    assert decide(SCORES, v, 4, rejecting(0.9), off_topic=0.8).kind == FALLBACK
    d = decide(SCORES, v, 4, rejecting(0.1), off_topic=0.8)
    assert (d.kind, d.entry_id) == (ANSWER, "a")


def test_a_long_story_both_engines_read_as_one_entry_is_not_rejected_by_the_model() -> None:
    agreeing = verdict((cand("a", 0.6), cand("b", 0.3)), MC)  # the ranker's top (SCORES) is "a" too
    disagreeing = verdict((cand("b", 0.6), cand("a", 0.3)), MC)
    story = LONG_WORDS + 1
    assert not rejects(SCORES, -0.5, agreeing, story, rejecting(0.9))
    assert rejects(SCORES, -0.5, disagreeing, story, rejecting(0.9))
    assert rejects(SCORES, -0.5, agreeing, LONG_WORDS, rejecting(0.9))  # not a story: the model decides
    d = decide(SCORES, agreeing, story, rejecting(0.9), off_topic=-0.5)
    assert (d.kind, d.entry_id) == (ANSWER, "a")
    # the off-topic class beating every entry still rejects a story the matcher is unsure of
    unsure = verdict((cand("a", 0.31), cand("b", 0.30)), MC)
    assert rejects(SCORES, 0.5, unsure, story, rejecting(0.1))


def test_without_a_rejection_model_nothing_is_rejected_by_it() -> None:
    cal = dataclasses.replace(rejecting(0.9), reject_coef=())
    assert not rejects(SCORES, 5.0, verdict((cand("a", 0.6),), MC), 3, cal)


@given(
    st.lists(st.floats(-50, 50), min_size=2, max_size=6),
    st.one_of(st.none(), st.floats(-50, 50)),
    st.integers(0, 10_000),
    st.integers(0, 20),
)
def test_reject_features_are_finite_and_in_order(
    values: list[float], off: float | None, words: int, other: int
) -> None:
    scores = sorted(((f"e{i}", v) for i, v in enumerate(values)), key=lambda s: -s[1])
    v = dataclasses.replace(verdict((cand("e0", 0.5),), MC), other_services=other)
    f = reject_features(scores, off, v, words)
    assert len(f) == len(REJECT_FEATURES) and all(math.isfinite(x) for x in f)
    assert 0.0 <= f[REJECT_FEATURES.index("other_services")] <= 1.0
    assert 0.0 <= shipped_calibration().off_topic_probability(f) <= 1.0


def test_the_shipped_calibration_has_a_rejection_model() -> None:
    cal = shipped_calibration()
    assert len(cal.reject_coef) == len(REJECT_FEATURES) and 0.0 < cal.reject_p < 1.0
    assert Calibration.from_dict(cal.as_dict()) == cal
    with pytest.raises(ValueError):
        Calibration.from_dict({**cal.as_dict(), "reject_features": ["something"]})


def row(expect: str | None, top: str, off: float, value: float = 0.0) -> Row:
    return Row([(top, value), ("z", value - 1.0)], verdict((cand(top, 0.5),), MC), 5, expect, off)


def test_the_rejection_threshold_takes_at_most_its_share_of_right_answers() -> None:
    # in-scope rows: off-topic value spread over -2..0 (a few high ones); off-topic rows: high values
    rows = [row("a", "a", -2.0 + i / 500) for i in range(1000)]
    rows += [row(None, "a", 0.5 + i / 100) for i in range(60)]
    coef, intercept, threshold = fit_rejection(rows)
    cal = dataclasses.replace(rejecting(0.5), reject_coef=coef, reject_intercept=intercept, reject_p=threshold)
    lost = sum(rejects(r.ranker_scores, r.off_topic, r.verdict, r.words, cal) for r in rows if r.expect)
    caught = sum(rejects(r.ranker_scores, r.off_topic, r.verdict, r.words, cal) for r in rows if not r.expect)
    assert lost <= REJECT_COST * 1000 and caught >= 55


def test_no_rejection_model_without_both_kinds_of_rows() -> None:
    assert fit_rejection([row("a", "a", -1.0), row("a", "a", -0.5)]) == ((), 0.0, 1.0)


# ---------------------------------------------------------------- the gate and the asking part

STORY = (
    "Здравствуйте. Мы приехали с семьей полгода назад, живем у родственников, работаем где придется. "
    "Соседи говорят разное. Как подать на статус беженца?"
)


def test_a_story_around_a_question_is_weighed_by_its_asking_part() -> None:
    parts = weighted_parts(STORY)
    assert parts[-1] == ("Как подать на статус беженца?", 1.0)
    # "где" in the middle of the story is not a question when the message has a question mark
    assert all(w == STORY_WEIGHT for _, w in parts[:-1])
    assert asking_text(STORY) == "Как подать на статус беженца?"
    # without any question mark, a question word anywhere marks a part
    plain = "мы приехали полгода назад. живем у родственников. подскажите куда идти за статусом беженца"
    assert asking_text(plain) == "подскажите куда идти за статусом беженца"


def test_merge_keeps_each_entry_once_with_its_better_score() -> None:
    whole = (cand("a", 0.3), cand("b", 0.2))
    asking = (cand("b", 0.5), cand("c", 0.1))
    merged = merge(whole, asking, 5)
    assert [(c.entry_id, c.score) for c in merged] == [("b", 0.5), ("a", 0.3), ("c", 0.1)]
    assert len(merge(whole, asking, 2)) == 2


def test_the_gate_reads_the_asking_part_of_a_long_message(knowledge: Knowledge) -> None:
    mc = knowledge.config.matcher
    v = judge(knowledge.index, STORY, mc)
    assert v.kind != FALLBACK and v.asking_top == "asylum-apply"
    short = judge(knowledge.index, "как подать на убежище", mc)
    assert short.asking_top is None and short.kind == ANSWER
    # words naming other services are counted for what passes the gate (the rejection model's input)
    other = judge(knowledge.index, "горячая линия каспи номер", mc)
    assert other.kind != FALLBACK and other.other_services == 1
    assert short.other_services == 0


def test_a_direct_answer_may_agree_with_the_matchers_top_for_the_asking_part() -> None:
    v = Verdict(SUGGEST, (cand("b", 0.4), cand("a", 0.38)), ("b", "a"), asking_top="a")
    assert agrees([("a", 1.0), ("b", 0.5)], v)
    assert not agrees([("c", 1.0)], v)
    assert not agrees([("a", 1.0)], dataclasses.replace(v, asking_top=None))


@given(
    st.one_of(
        st.text(max_size=400),
        st.text(alphabet=st.characters(codec="utf-8"), min_size=1000, max_size=4000),
        st.text(alphabet="😀🙏🇰🇿\u200d\u202e\u0000\t\n ?.,", max_size=80),
        st.text(alphabet="убежище беженец паспорт asylum status босқын куәлік іїєґ ли ма чи?!,.\n", max_size=600),
    )
)
def test_the_gate_never_raises_and_its_verdict_is_consistent(knowledge: Knowledge, text: str) -> None:
    v = judge(knowledge.index, text, knowledge.config.matcher)
    assert v.kind in (ANSWER, SUGGEST, FALLBACK) and v.other_services >= 0
    ids = [c.entry_id for c in v.candidates]
    assert len(ids) == len(set(ids)) and set(ids) <= set(knowledge.faq.entries)
    assert v.asking_top is None or v.asking_top in knowledge.faq.entries
    assert (v.kind == FALLBACK) == (not v.picks)
    assert all(part in text for part, _ in weighted_parts(text))


def test_the_rankers_off_topic_class_rejects_where_the_matcher_is_unsure() -> None:
    # no rejection model at all: the rule alone
    cal = dataclasses.replace(rejecting(0.1), reject_coef=())
    unsure = verdict((cand("a", 0.31), cand("b", 0.30)), MC)  # did you mean
    sure = verdict((cand("a", 0.6), cand("b", 0.3)), MC)  # the matcher would answer "a"
    assert unsure.kind == SUGGEST and sure.kind == ANSWER
    assert rejects(SCORES, 0.5, unsure, 4, cal)  # off-topic 0.5 beats the best entry's 0.4
    assert not rejects(SCORES, 0.3, unsure, 4, cal)  # it does not
    assert not rejects(SCORES, 0.5, sure, 4, cal)  # a confident lexical match stands
    assert not rejects(SCORES, None, unsure, 4, cal)  # a model without the class
    assert decide(SCORES, unsure, 4, cal, off_topic=0.5).kind == FALLBACK

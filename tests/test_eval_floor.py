"""Accuracy floors on the tuning sets (tests/data/eval.yaml, eval_holdout, eval_blind, eval_blind2 to eval_blind7).

Figures are measured by `python -m bot eval FILE` (see bot/evaluation.py for the definitions). The
floors sit just under what the shipped pipeline measures, so a change that makes it understand people
worse fails here; and the combination must do better than either of its parts alone (`--engine
matcher`, `--engine ranker`) on strict top-1, and at least as well on shown-first and off-topic
rejection, on every set (issue 12). These sets are tuned on: the honest figure is a blind set's.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from bot.dialogue import Knowledge
from bot.evaluation import Item, evaluate, parse_items, unseen, with_engine
from bot.understanding.pipeline import ENGINES
from bot.yamlio import read_yaml

DATA = Path(__file__).resolve().parent / "data"
# the nine sets measure 0.940-0.982 shown-first and 0.919-0.971 strict (README, Accuracy)
SHOWN_FIRST_FLOOR = 0.92
STRICT_TOP1_FLOOR = 0.90
REJECTION_FLOOR = 0.93  # the bar
DIRECT_PRECISION_FLOOR = 0.95  # a wrong direct answer is the worst outcome (crisis replies count as direct)
# the sets are taken out of the FAQ in groups, and the ranker trained once per group (a training per
# set made this the slowest test file): the three oldest (1,000 messages), then two by two
GROUPS = (
    ("eval.yaml", "eval_holdout.yaml", "eval_blind.yaml"),
    ("eval_blind2.yaml", "eval_blind3.yaml"),
    ("eval_blind4.yaml", "eval_blind5.yaml"),
)
# read after their first looks, so tuning sets too, but not in the FAQ: the shipped model is fair on them
OUTSIDE_THE_FAQ = ("eval_blind6.yaml", "eval_blind7.yaml")


@pytest.fixture(scope="module")
def items() -> list[Item]:
    return parse_items(read_yaml(DATA / "eval.yaml"))


def test_eval_set_is_big_varied_and_covers_every_entry(knowledge: Knowledge, items: list[Item]) -> None:
    assert len(items) >= 340
    off = [i for i in items if i.expect is None]
    assert len(off) >= 40
    per_entry = Counter(i.expect for i in items if i.expect is not None)
    # entries added with issue 12 (six new topics) are not in these older sets: tests/data/eval_blind2.yaml covers them
    assert set(per_entry) <= set(knowledge.faq.entries)
    assert min(per_entry.values()) >= 8
    langs = Counter(i.lang for i in items)
    assert {"ru", "kk", "en", "uk", "ru-lat"} <= set(langs)
    assert len({i.q for i in items}) == len(items)


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: "+".join(n.removesuffix(".yaml") for n in g))
def test_accuracy_floor_and_the_combination_beats_its_parts(knowledge: Knowledge, group: tuple[str, ...]) -> None:
    # These messages are FAQ phrasings now (issue 12): a group's sets are taken out of the FAQ first
    # and the ranker is trained on the rest (`python -m bot eval --unseen`, as `make eval` runs it,
    # takes out one set at a time: a little more training data than here)
    fair = unseen(knowledge, [item for name in group for item in parse_items(read_yaml(DATA / name))])
    for name in group:
        _floors_hold(fair, name)


@pytest.mark.parametrize("name", OUTSIDE_THE_FAQ)
def test_floors_on_the_sets_outside_the_faq(knowledge: Knowledge, name: str) -> None:
    _floors_hold(knowledge, name)


def _floors_hold(fair: Knowledge, name: str) -> None:
    items = parse_items(read_yaml(DATA / name))
    got = {engine: evaluate(with_engine(fair, engine), items).as_dict()["overall"] for engine in ENGINES}
    combined = got["combined"]
    assert combined["shown_first"] >= SHOWN_FIRST_FLOOR, (name, combined)
    assert combined["strict_top1"] >= STRICT_TOP1_FLOOR, (name, combined)
    assert combined["rejection"] >= REJECTION_FLOOR, (name, combined)
    assert combined["direct_precision"] >= DIRECT_PRECISION_FLOOR, (name, combined)
    # rejection: at least as good, but for one off-topic message at most. The ranker alone rejects
    # every message whose best value is not positive, so it wins a message now and then, always at a
    # far lower strict top-1 (eval.yaml, 2026-12-08: 63 of 65 against the combination's 62, at strict
    # 0.923 against 0.949); which single message falls either way moves with any retraining
    one_message = 1 / max(1, sum(1 for i in items if i.expect is None))
    for alone in ("matcher", "ranker"):
        assert combined["strict_top1"] > got[alone]["strict_top1"], (name, got)
        assert combined["shown_first"] >= got[alone]["shown_first"], (name, got)
        assert combined["rejection"] >= got[alone]["rejection"] - one_message - 5e-4, (name, got)  # rounded to 4 places

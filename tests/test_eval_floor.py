"""The matcher's accuracy floor on the labelled evaluation set (tests/data/eval.yaml).

Figures are measured by `python -m bot eval tests/data/eval.yaml` (see bot/evaluation.py for the
definitions). The floors sit just under what the shipped matcher measures, so a change that makes it
understand people worse fails here. The issue's target is top-1 >= 0.90 and rejection >= 0.90.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from bot.dialogue import Knowledge
from bot.evaluation import Item, evaluate, parse_items
from bot.yamlio import read_yaml

DATA = Path(__file__).resolve().parent / "data"
TOP1_FLOOR = 0.89  # 0.90 before crisis replies: a crisis message now shows its category's entry (112 first)
REJECTION_FLOOR = 0.90
DIRECT_PRECISION_FLOOR = 0.93  # a wrong direct answer is the worst outcome


@pytest.fixture(scope="module")
def items() -> list[Item]:
    return parse_items(read_yaml(DATA / "eval.yaml"))


def test_eval_set_is_big_varied_and_covers_every_entry(knowledge: Knowledge, items: list[Item]) -> None:
    assert len(items) >= 340
    off = [i for i in items if i.expect is None]
    assert len(off) >= 40
    per_entry = Counter(i.expect for i in items if i.expect is not None)
    assert set(per_entry) == set(knowledge.faq.entries)
    assert min(per_entry.values()) >= 8
    langs = Counter(i.lang for i in items)
    assert {"ru", "kk", "en", "uk", "ru-lat"} <= set(langs)
    assert len({i.q for i in items}) == len(items)


def test_matcher_accuracy_floor(knowledge: Knowledge, items: list[Item]) -> None:
    overall = evaluate(knowledge, items).as_dict()["overall"]
    assert overall["top1"] >= TOP1_FLOOR, overall
    assert overall["rejection"] >= REJECTION_FLOOR, overall
    assert overall["direct_precision"] >= DIRECT_PRECISION_FLOOR, overall

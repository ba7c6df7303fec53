"""The blind evaluation set measures messages the bot was not taught: none of its messages stands in
the FAQ (issue 12), and it stays big and varied enough to mean something."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from bot.dialogue import Knowledge
from bot.evaluation import parse_items
from bot.normalize import normalize
from bot.yamlio import read_yaml

DATA = Path(__file__).parent / "data"
# the earlier ones are FAQ phrasings now (test_eval_floor)
BLIND_SETS = ("eval_blind6.yaml", "eval_blind7.yaml", "eval_blind8.yaml", "eval_blind9.yaml")


@pytest.mark.parametrize("name", BLIND_SETS)
def test_no_blind_message_is_a_faq_phrasing(knowledge: Knowledge, name: str) -> None:
    phrasings = {
        normalize(q) for e in knowledge.faq.entries.values() for block in e.langs.values() for q in block.questions
    }
    inside = [item.q for item in parse_items(read_yaml(DATA / name)) if normalize(item.q) in phrasings]
    assert inside == []


@pytest.mark.parametrize("name", BLIND_SETS)
def test_the_blind_set_covers_every_entry_language_and_kind(knowledge: Knowledge, name: str) -> None:
    items = parse_items(read_yaml(DATA / name))
    assert len(items) >= 600
    per_entry = Counter(i.expect for i in items if i.expect is not None)
    assert set(per_entry) == set(knowledge.faq.entries) and min(per_entry.values()) >= 10
    assert sum(1 for i in items if i.expect is None) >= 100
    assert {"ru", "kk", "en", "uk", "ru-lat"} <= {i.lang for i in items}
    raw = read_yaml(DATA / name)
    assert {"plain", "typo", "long", "short", "translit"} <= {str(r["kind"]) for r in raw}

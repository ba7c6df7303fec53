"""Crisis recognition (bot/understanding/crisis.py): every category in every language and spelling
gets its urgent reply; calm near-misses and ordinary questions do not (issue 11).

The sets in tests/data were written from the categories alone, before tuning; crisis_sealed.yaml and
calm_sealed.yaml were first read only after their first-look figure (README)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.dialogue import URGENT, Knowledge, reply_to_text
from bot.understanding.crisis import category_names, detect
from bot.yamlio import read_yaml

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parent.parent
URGENT_ENTRIES = {"gbv", "emergency", "detention-deportation", "trafficking", "crisis-support"}
FALSE_ALARM_CEILING = 0.03

# One message per category and language, as people write them (written for this test, not copied
# from the sets): ru, uk, kk (Kazakh letters), kk typed with Russian letters, en, Russian in Latin letters.
CASES: dict[str, list[str]] = {
    "suicide": [
        "не хочу больше жить",
        "не хочу жити",
        "өмір сүргім келмейді",
        "омир сургим келмейди",
        "i want to end my life",
        "ne hochu zhit",
    ],
    "medical": [
        "ребенок без сознания",
        "у дитини судоми",
        "балам есінен танып қалды",
        "кан токтамай жатыр",
        "my mother is not breathing",
        "u muzha sil'noe krovotechenie",
    ],
    "attack": [
        "у него нож, он стоит у двери",
        "ламають двері",
        "мылтықпен қорқытып тұр",
        "пышак алып келди",
        "a man with a gun outside our flat",
        "lomayut dver",
    ],
    "domestic_violence": [
        "муж избивает меня",
        "чоловік б'є мене",
        "күйеуім ұрады",
        "куйеуим урып жатыр",
        "my husband beats me",
        "muzh b'et menya",
    ],
    "sexual_violence": [
        "меня изнасиловали",
        "мене зґвалтували",
        "мені зорлады",
        "кызымды зорлады",
        "i was raped",
        "menya iznasilovali",
    ],
    "trafficking": [
        "работодатель забрал паспорт и не выпускает",
        "забрали паспорт і не відпускають",
        "паспортымды алып қойды, жібермейді",
        "паспортымды алып койды жибермейди",
        "they took my passport and won't let me leave",
        "zabrali pasport ne vypuskayut",
    ],
    "forced_marriage": [
        "дочь 14 лет хотят выдать замуж",
        "хочуть видати заміж доньку",
        "қызымды алып қашты",
        "кызымды ериксиз турмыска бермек",
        "they are forcing my daughter to marry",
        "hotyat vydat zamuzh",
    ],
    "abduction": [
        "похитили сына",
        "викрали дитину",
        "баламды ұрлап кетті",
        "баламды урлап кетти",
        "my son was kidnapped",
        "pohitili rebenka",
    ],
    "detention": [
        "меня задержала полиция",
        "мене затримала поліція",
        "полиция ұстап алды",
        "полиция устап алды",
        "police arrested my husband",
        "menya zaderzhali v aeroportu",
    ],
    "cold_night": [
        "нас выгнали на улицу с детьми",
        "нас вигнали на вулицю з дітьми",
        "балалармен көшеде қалдық",
        "балалармен кошеде калдык",
        "we were kicked out, kids sleeping outside",
        "nas vygnali na ulicu s detmi",
    ],
    "help": ["помогите", "допоможіть", "көмектесіңдер", "комектесиндер", "help me please", "pomogite"],
}
CALM = [
    "сколько стоит скорая",
    "kill time in the queue",
    "my phone died",
    "убить время",
    "меня избивали дома, поэтому я уехал, как подать на убежище",
    "I was beaten at home, so I left; how do I apply for asylum",
    "никто меня не бьет, вопрос про работу",
    "помогите разобраться с документами",
    "help me fill the form",
    "как получить статус беженца",
]


def test_the_categories_are_the_ones_of_issue_11() -> None:
    assert set(category_names()) == set(CASES)


@pytest.mark.parametrize(("category", "text"), [(c, t) for c, texts in CASES.items() for t in texts])
def test_each_category_in_each_language(category: str, text: str) -> None:
    crisis = detect(text)
    assert crisis is not None and category in crisis.categories, (text, crisis)
    assert detect(text.upper()) is not None  # ALL CAPS
    assert detect(text + "!!!") is not None  # punctuation


@pytest.mark.parametrize("text", CALM)
def test_calm_near_misses_are_not_alarms(text: str) -> None:
    assert detect(text) is None


def test_words_typed_together_and_typos() -> None:
    assert detect("хочуумереть") is not None
    assert detect("мужбьетменяидетей") is not None
    assert detect("ПОМГИТЕ") is not None


def _items(name: str) -> list[dict[str, object]]:
    data = read_yaml(DATA / name)
    assert isinstance(data, list)
    return data


CRISIS_SETS = [
    "crisis.yaml",
    "crisis_sealed.yaml",
    "crisis_blind3.yaml",
    "crisis4.yaml",
    "crisis4_sealed.yaml",
    "crisis5.yaml",
    "crisis6.yaml",
    "crisis6b.yaml",
    "crisis7.yaml",
    "crisis8.yaml",
    "crisis9.yaml",
    "crisis10.yaml",
    "crisis11.yaml",
    "crisis12.yaml",
    "crisis13.yaml",
]


@pytest.mark.parametrize("name", CRISIS_SETS)
def test_every_crisis_message_of_the_set_is_recognised(name: str) -> None:
    items = _items(name)
    assert len(items) >= 165 or name.startswith("crisis4")  # part 4 is split in two halves
    missed = [it["q"] for it in items if detect(str(it["q"])) is None]
    assert missed == []


@pytest.mark.parametrize(
    "name",
    [
        "calm.yaml",
        "calm_sealed.yaml",
        "calm_blind3.yaml",
        "calm4.yaml",
        "calm4_sealed.yaml",
        "calm5.yaml",
        "calm6.yaml",
        "calm6b.yaml",
        "calm7.yaml",
        "calm8.yaml",
        "calm9.yaml",
        "calm10.yaml",
        "calm11.yaml",
        "calm12.yaml",
        "calm13.yaml",
        "eval.yaml",
        "eval_holdout.yaml",
        "eval_blind.yaml",
        "eval_blind2.yaml",
        "eval_blind3.yaml",
        "eval_blind4.yaml",
        "eval_blind5.yaml",
        "eval_blind6.yaml",
        "eval_blind7.yaml",
        "eval_blind8.yaml",
        "eval_blind9.yaml",
    ],
)
def test_false_alarms_stay_under_three_percent(name: str) -> None:
    items = [it for it in _items(name) if it.get("expect") not in URGENT_ENTRIES]
    alarms = [it["q"] for it in items if detect(str(it["q"])) is not None]
    assert len(alarms) / len(items) <= FALSE_ALARM_CEILING, alarms


def test_the_whole_set_has_40_per_category_and_600_in_all() -> None:
    items = _items("crisis.yaml") + _items("crisis_sealed.yaml") + _items("crisis_blind3.yaml")
    calm = _items("calm.yaml") + _items("calm_sealed.yaml") + _items("calm_blind3.yaml")
    per: dict[str, int] = {}
    for it in items:
        per[str(it["category"])] = per.get(str(it["category"]), 0) + 1
    assert set(per) == set(CASES) and min(per.values()) >= 40 and len(items) >= 600
    assert len(calm) >= 400


@pytest.mark.parametrize("lang", ["ru", "kk", "en"])
@pytest.mark.parametrize("category", list(CASES))
def test_the_reply_puts_the_category_text_first(knowledge: Knowledge, category: str, lang: str) -> None:
    reply = reply_to_text(knowledge, CASES[category][0], lang)
    assert reply.kind == URGENT and reply.urgent and reply.crisis == category
    assert reply.text.startswith(knowledge.t(f"crisis_{category}", lang))
    datas = [b.data for row in reply.buttons for b in row]
    assert "ask" in datas  # "Ask a person" is always there


def test_the_suicide_reply_gives_111_and_112_and_no_lecture(knowledge: Knowledge) -> None:
    reply = reply_to_text(knowledge, "I want to kill myself", "en")
    assert reply.crisis == "suicide"
    assert "111" in reply.text and "112" in reply.text and "103" in reply.text
    assert reply.text.index("111") < reply.text.index("112")
    assert len(reply.text) < 600  # short: the crisis-support entry is a button, not a second text


def test_ask_json_gives_urgent_and_the_category() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bot", "ask", "--json", "у ребенка высокая температура и судороги"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    reply = json.loads(out.stdout)
    assert reply["urgent"] is True and reply["crisis"] == "medical" and "103" in reply["text"][:120]


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=300))
def test_any_text_is_handled(text: str) -> None:
    crisis = detect(text)
    assert crisis is None or crisis.category in CASES

"""The learned half of the crisis check (bot/understanding/crisis_model.py): the shipped arrays match
their examples, it catches wordings no rule lists, and it stays quiet where the rules set a message aside."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.dialogue import SMALLTALK, URGENT, Knowledge, reply_to_text
from bot.understanding import crisis_model
from bot.understanding.crisis import category_names, detect


def test_the_shipped_model_was_built_from_the_examples_and_features_of_today() -> None:
    model = crisis_model.shipped()
    assert model is not None, "bot/data/crisis_model.npz is missing or unreadable: run make crisis-model"
    want = crisis_model.digest(crisis_model.training_data(crisis_model.read_examples()))
    assert model.model.digest == want, "crisis_examples.yaml or the ranker's features changed: run make crisis-model"
    assert set(model.classes) == set(category_names()) | {crisis_model.NONE}


def test_every_example_category_is_a_rule_category() -> None:
    ex = crisis_model.read_examples()
    assert list(ex.crisis) == list(category_names())
    assert all(len(qs) >= 40 for qs in ex.crisis.values())


@pytest.mark.parametrize(
    ("text", "category"),
    [
        # written for this test; no rule of crisis.yaml fires on them
        ("устала от всего, пусть всё закончится сегодня", "suicide"),
        ("cant take this anymore goodbye everyone", "suicide"),
        ("мне незачем больше просыпаться", "suicide"),
        ("we sleep at the train station with baby tonight", "cold_night"),
        ("сын ушёл утром и до сих пор нет, не отвечает", "abduction"),
    ],
)
def test_the_model_catches_wordings_no_rule_knows(text: str, category: str) -> None:
    assert detect(text, learned=False) is None
    found = detect(text)
    assert found is not None and found.category == category
    assert found.entry_id  # the reply has its FAQ entry


@pytest.mark.parametrize(
    "text",
    [
        "меня избивали дома, поэтому я уехал; как подать на убежище",
        "how much does an ambulance cost without insurance",
        "где продлить справку ищущего убежище",
        "weather in almaty tomorrow",
        "здравствуйте",
        "спасибо большое",
        "рақмет сізге",
        "thank you",
    ],
)
def test_calm_messages_stay_calm(text: str) -> None:
    assert detect(text) is None


def test_the_model_overrules_a_rule_only_when_sure_the_message_is_calm() -> None:
    # written for this test: a general question that uses the rules' words
    calm = "how can I tell if a friend is thinking about suicide? asking in general, for a leaflet"
    assert detect(calm, learned=False) is not None
    assert detect(calm) is None
    urgent = "my friend says she will kill herself tonight"
    assert detect(urgent, learned=False) is not None
    found = detect(urgent)
    assert found is not None and found.category == "suicide"


def test_a_broken_model_file_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "crisis_model.npz"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(Exception):  # noqa: B017 (any refusal will do: shipped() catches it and serves the rules)
        crisis_model.load(broken)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=400))
def test_any_text_gets_a_category_or_none(text: str) -> None:
    model = crisis_model.shipped()
    assert model is not None
    category, value = crisis_model.margin(model, text)
    assert category in category_names()
    assert value == value  # not NaN
    found = detect(text)
    assert found is None or found.category in category_names()


@pytest.mark.parametrize("text", ["hello", "hello!", "привет", "сәлем", "thanks"])
def test_small_talk_alone_gets_small_talk_not_an_alarm(knowledge: Knowledge, text: str) -> None:
    reply = reply_to_text(knowledge, text, "en")
    assert reply.kind == SMALLTALK and not reply.urgent


def test_a_bare_cry_stays_an_alarm(knowledge: Knowledge) -> None:
    for text in ("help", "помогите", "SOS"):
        assert reply_to_text(knowledge, text, "en").kind == URGENT

"""Typing noise for the ranker's training data (bot/understanding/augment.py)."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st
from rapidfuzz.distance import Levenshtein

from bot.normalize import latin_to_cyrillic
from bot.understanding import augment

TYPO_FUNCTIONS = (
    augment.neighbour_key,
    augment.drop_letter,
    augment.double_letter,
    augment.swap_letters,
    augment.vowel_slip,
)


def test_each_typo_is_one_small_slip() -> None:
    rng = random.Random(1)
    text = "как получить статус беженца"
    for noise in TYPO_FUNCTIONS:
        for _ in range(20):
            out = noise(text, rng)
            assert Levenshtein.distance(out, text) <= 2, (noise.__name__, out)


def test_keyboard_neighbours_are_neighbours() -> None:
    assert set(augment.NEIGHBOURS["ы"]) >= {"ф", "в", "ц", "у", "я", "ч"}
    assert set(augment.NEIGHBOURS["s"]) >= {"a", "d", "w", "e", "z", "x"}
    rng = random.Random(3)
    out = augment.neighbour_key("ы", rng)
    assert out in augment.NEIGHBOURS["ы"]


def test_vowel_slips_and_signs_and_kazakh_letters() -> None:
    rng = random.Random(0)
    assert augment.vowel_slip("о", rng) == "а"
    assert augment.drop_signs("подъезд объявление соль", rng) == "подезд обявление сол"
    assert augment.kazakh_as_russian("босқын мәртебесі", rng) == "боскын мартебеси"


def test_latin_transliteration_reads_back_close_to_the_russian() -> None:
    rng = random.Random(5)
    text = "как получить статус беженца"
    for _ in range(10):
        latin = augment.to_latin(text, rng)
        assert latin.isascii(), latin
        back = latin_to_cyrillic(latin)
        assert Levenshtein.normalized_similarity(back, text) >= 0.75, (latin, back)


def test_run_together_and_drop_word() -> None:
    rng = random.Random(2)
    assert augment.run_together("как подать", rng) == "какподать"
    assert len(augment.drop_word("где подать заявление на убежище", rng).split()) == 4
    assert augment.drop_word("два слова", rng) == "два слова"  # too short to lose one


def test_variants_are_deterministic_for_a_seed_and_cover_latin_and_plain_letters() -> None:
    a = augment.variants("босқын мәртебесін қалай аламын", random.Random(9))
    b = augment.variants("босқын мәртебесін қалай аламын", random.Random(9))
    assert a == b
    assert "боскын мартебесин калай аламын" in a
    assert any(v.isascii() for v in a)
    english = augment.variants("how to apply for asylum", random.Random(9), count=2)
    assert len(english) == 2  # no Cyrillic: no Latin or Kazakh-letter copy


@given(st.text(max_size=300), st.integers(0, 2**32))
def test_noise_never_raises_on_any_text(text: str, seed: int) -> None:
    rng = random.Random(seed)
    for noise in (*TYPO_FUNCTIONS, *augment.OTHER, augment.to_latin, augment.kazakh_as_russian):
        assert isinstance(noise(text, rng), str)
    assert all(isinstance(v, str) for v in augment.variants(text, rng))

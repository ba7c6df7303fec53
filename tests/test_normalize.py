"""bot.normalize: what people type on cheap phones, folded to one comparable form."""

from __future__ import annotations

import unicodedata

import pytest
from hostile import HOSTILE_PIECES
from hypothesis import given
from hypothesis import strategies as st

from bot.normalize import MAX_INPUT_CHARS, fold, has_cyrillic, has_latin, latin_to_cyrillic, normalize, tokens


def words(text: str) -> list[str]:
    """Folded words of a text, as the matcher sees them."""
    return tokens(normalize(text))


# ---------------------------------------------------------------- normalize: examples


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # case, including Kazakh capitals and German ß (casefold, not lower)
        ("Как Получить СТАТУС", "как получить статус"),
        ("ҚАЗАҚСТАН Әке", "қазақстан әке"),
        ("STRASSE Straße", "strasse strasse"),
        # ё → е, capital too
        ("Ёлка, ещё ЁЖ", "елка еще еж"),
        # punctuation and symbols become spaces, runs of them collapse
        ("как?!...подать,,,на-убежище", "как подать на убежище"),
        ("«статус» — (беженца)!!!", "статус беженца"),
        ("100% №5 $20 #help @unhcr", "100 no5 20 help unhcr"),  # NFKC: № → No
        # emoji, skin tones, flags, ZWJ family sequences
        ("помогите🙏🏽😭пожалуйста", "помогите пожалуйста"),
        ("🇰🇿 виза 👨\u200d👩\u200d👧 семья", "виза семья"),
        ("😀" * 50, ""),
        # zero-width characters inside a word are dropped, not turned into a break
        ("бе\u200dже\u200cнец", "беженец"),
        ("ста\u200bтус\ufeff", "статус"),
        ("беже\u00adнец", "беженец"),  # soft hyphen
        # bidi controls: RTL override, isolates, marks
        ("\u202eстатус\u202c беженца", "статус беженца"),
        ("abc\u202edef", "abcdef"),
        ("\u2067убежище\u2069\u200f", "убежище"),
        # NFKC: full-width letters and digits, ligatures, compatibility forms
        ("ＳＴＡＴＵＳ　ｂｅｚｈｅｎｃａ", "status bezhenca"),
        ("１２３ ＡＢＣ", "123 abc"),
        ("ﬁle ﬂight", "file flight"),
        # apostrophes belong to the word (Ukrainian, English)
        ("зв'язатися м’ята don`t", "звязатися мята dont"),
        # whitespace of every kind, and control characters
        ("  как\t\tподать\n\nна\r\nубежище  ", "как подать на убежище"),
        ("\x00как\x07 подать\x7f", "как подать"),
        # a combining mark with nothing to combine with
        ("\u0301убежище", "убежище"),
        ("", ""),
        ("   \n\t ", ""),
    ],
)
def test_normalize_examples(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_normalize_keeps_kazakh_and_ukrainian_letters() -> None:
    # normalize keeps letters; folding is a separate step (tokens)
    assert normalize("Босқын БІЖЕНЕЦЬ їжа ґанок") == "босқын біженець їжа ґанок"


def test_normalize_cuts_at_telegram_limit() -> None:
    assert len(normalize("а" * 100_000)) == MAX_INPUT_CHARS
    assert len(normalize("беженец! " * 20_000)) <= MAX_INPUT_CHARS


# ---------------------------------------------------------------- folding and tokens


@pytest.mark.parametrize(
    ("word", "folded"),
    [
        # Kazakh letters → nearest Russian ones
        ("әғқңөұүһ", "агкноуух"),
        ("босқындарға", "боскындарга"),
        ("куәлік", "куалик"),
        ("мәртебесі", "мартебеси"),
        # Ukrainian (and Belarusian ў) letters
        ("біженець", "биженец"),
        ("їжа", "ижа"),
        ("європа", "европа"),
        ("ґрунт", "грунт"),
        ("ўрад", "урад"),
        # soft and hard signs are dropped (people skip them), ё → е
        ("получить", "получит"),
        ("подъезд", "подезд"),
        ("ёж", "еж"),
        # Russian and Latin letters pass unchanged
        ("убежище", "убежище"),
        ("asylum", "asylum"),
    ],
)
def test_fold(word: str, folded: str) -> None:
    assert fold(word) == folded


def test_tokens_fold_and_keep_numbers() -> None:
    assert words("Босқындарға КУӘЛІК") == ["боскындарга", "куалик"]
    assert words("Біженця статус") == ["биженця", "статус"]
    assert words("90 дней, 5 календарных дней") == ["90", "дней", "5", "календарных", "дней"]
    assert words("snake_case _ __") == ["snake", "case"]


def test_kazakh_typed_without_kazakh_letters_meets_the_real_spelling() -> None:
    assert words("босқын мәртебесі") == words("боскын мартебеси")
    assert words("азаматтығы жоқ") == words("азаматтыгы жок")


def test_ukrainian_meets_russian_after_folding() -> None:
    # "і" folds to "и": "біженець" lands on "биженец", one vowel away from "беженец"
    assert words("біженець") == ["биженец"]
    assert words("притулок") == ["притулок"]


# ---------------------------------------------------------------- Latin letters → Cyrillic


@pytest.mark.parametrize(
    ("latin", "russian"),
    [
        ("kak poluchit status bezhenca", "как получить статус беженца"),
        ("zhdat", "ждать"),
        ("shkola", "школа"),
        ("ubezhishche", "убежище"),
        ("chto delat", "что делать"),
        ("novyj dokument", "новый документ"),
        ("moy pasport", "мой паспорт"),
        ("yurist", "юрист"),
        ("xochu rabotat", "хочу работать"),  # "x" for х
    ],
)
def test_latin_to_cyrillic_reads_russian_typed_in_latin(latin: str, russian: str) -> None:
    # compared after folding: a transliteration cannot know where the soft sign was
    assert words(latin_to_cyrillic(normalize(latin))) == words(russian)


def test_latin_to_cyrillic_exact_simple_words() -> None:
    assert latin_to_cyrillic("shkola") == "школа"
    assert latin_to_cyrillic("zhdat") == "ждат"  # no soft sign: tokens drop it anyway


def test_latin_to_cyrillic_keeps_cyrillic_and_digits() -> None:
    assert latin_to_cyrillic("статус bezhenca 2024") == "статус беженца 2024"
    assert latin_to_cyrillic("") == ""


def test_script_detection() -> None:
    assert has_latin("abc") and not has_latin("абв")
    assert has_cyrillic("қазақ") and has_cyrillic("біженець") and not has_cyrillic("asylum")


# ---------------------------------------------------------------- properties

TRICKY = HOSTILE_PIECES  # shared with the dialogue property tests

texts = st.one_of(
    st.text(),
    st.lists(st.sampled_from(TRICKY), max_size=60).map("".join),
    st.lists(st.one_of(st.sampled_from(TRICKY), st.text(max_size=4)), max_size=40).map("".join),
    st.text(alphabet=st.characters(categories=["Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "So", "Sk"]), max_size=80),
)
# 100 kB and more: a short random text repeated (hypothesis does not generate such sizes itself)
huge_texts = st.text(min_size=1, max_size=40).map(lambda s: s * (100_000 // len(s) + 1))


@given(texts)
def test_normalize_never_raises_and_is_clean(text: str) -> None:
    out = normalize(text)
    assert isinstance(out, str)
    assert out == out.strip()
    assert "  " not in out
    assert all(not ch.isspace() or ch == " " for ch in out), "only plain spaces separate words"
    assert not [ch for ch in out if unicodedata.category(ch)[0] == "C"], "no control or format characters"
    assert "ё" not in out


@given(texts)
def test_normalize_is_idempotent(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once


@given(huge_texts)
def test_normalize_huge_input(text: str) -> None:
    assert len(text) >= 100_000
    out = normalize(text)
    assert "  " not in out and out == out.strip()
    # NFKC may expand a few characters, but the work is bounded by the cut at MAX_INPUT_CHARS
    assert len(out) <= MAX_INPUT_CHARS * 18


def test_normalize_idempotent_on_a_full_length_message() -> None:
    message = "а" * (MAX_INPUT_CHARS - 2) + " ½"  # a 4,096-character Telegram message
    once = normalize(message)
    assert normalize(once) == once


def test_a_lone_hard_sign_is_not_a_word() -> None:
    # "ъ" and "ь" fold to nothing; a message of just that must give no empty token
    assert tokens(normalize("Ъ")) == []
    assert tokens(normalize("подъезд ъ ь")) == ["подезд"]


@given(st.one_of(texts, huge_texts))
def test_tokens_and_transliteration_never_raise(text: str) -> None:
    norm = normalize(text)
    toks = tokens(norm)
    assert all(t and t == t.strip() for t in toks)
    translit = latin_to_cyrillic(norm)
    assert isinstance(tokens(translit), list)
    # raw, unnormalised text must not break them either
    tokens(text)
    latin_to_cyrillic(text)
    fold(text)


@given(st.text(alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyz "), max_size=80))
def test_transliteration_leaves_no_latin_letters(text: str) -> None:
    assert not has_latin(latin_to_cyrillic(text))


def test_settled_text_is_a_fixed_point_of_one_pass() -> None:
    """Every character the fast path trusts goes through a full pass unchanged, alone and in words."""
    from bot.normalize import _SETTLED

    letters = "abcdefghijklmnopqrstuvwxyz0123456789абвгдежзийклмнопрстуфхцчшщъыьэюяәғқңөұүһіїєґў"
    for ch in letters:
        assert _SETTLED.fullmatch(ch)
        for text in (ch, f"{ch}{ch} {ch}", f"x{ch}y z"):
            assert normalize.__wrapped__(text) == text, text
    assert not _SETTLED.fullmatch("a  b") and not _SETTLED.fullmatch(" a") and not _SETTLED.fullmatch("ё")

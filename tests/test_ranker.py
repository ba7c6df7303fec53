"""The learned ranker (bot/understanding/ranker.py), the asking part of long messages
(bot/understanding/asking.py) and the model cache (bot/content.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA, RunCli, copy_content
from hypothesis import given
from hypothesis import strategies as st

from bot.content import ranker_model, read_cached_model, write_cached_model
from bot.dialogue import Knowledge
from bot.problems import ContentError
from bot.understanding import ranker
from bot.understanding.asking import STORY_WEIGHT, asking_text, weighted_parts

SMALL = [
    ("apply", "question", "как подать на убежище"),
    ("apply", "question", "где подать заявление на статус беженца"),
    ("apply", "question", "how to apply for asylum"),
    ("apply", "keyword", "заявление"),
    ("passport", "question", "я потерял паспорт что делать"),
    ("passport", "question", "паспорт украли как восстановить"),
    ("passport", "question", "i lost my passport"),
    ("passport", "keyword", "паспорт"),
    ("school", "question", "как устроить ребенка в школу"),
    ("school", "question", "ребенок не ходит в школу нет документов"),
    ("school", "question", "can my child go to school"),
    ("school", "keyword", "школа"),
]


@pytest.fixture(scope="module")
def small_model() -> ranker.RankerModel:
    return ranker.train(ranker.training_data(SMALL))


def test_a_small_model_ranks_noisy_messages_right(small_model: ranker.RankerModel) -> None:
    r = ranker.Ranker(small_model)
    assert r.rank("как подат на убижище", 1)[0][0] == "apply"
    assert r.rank("potyeryal pasport", 1)[0][0] == "passport"  # Latin letters, typos
    assert r.rank("rebenok v shkolu", 1)[0][0] == "school"
    assert r.rank("паспорт", 3)[0][0] == "passport"
    assert len(r.rank("паспорт", 10)) == 3


def test_training_is_deterministic(small_model: ranker.RankerModel) -> None:
    again = ranker.train(ranker.training_data(SMALL))
    assert again.digest == small_model.digest
    assert np.array_equal(again.weights, small_model.weights)


def test_the_digest_follows_the_training_data() -> None:
    a = ranker.training_data(SMALL).digest()
    b = ranker.training_data([*SMALL, ("school", "question", "детский сад")]).digest()
    assert a != b


def test_arrays_round_trip_gives_the_same_scores(small_model: ranker.RankerModel) -> None:
    back = ranker.RankerModel.from_arrays(small_model.arrays())
    for text in ("как подать", "passport", "", "школа школа школа"):
        assert np.array_equal(ranker.Ranker(back).scores(text), ranker.Ranker(small_model).scores(text))
    assert back.classes == small_model.classes and back.digest == small_model.digest


@given(st.lists(st.text(alphabet="абвгдқ wxyz12", max_size=6), max_size=40), st.lists(st.text(max_size=6), max_size=40))
def test_the_vocabulary_finds_exactly_its_own_features(features: list[str], asked: list[str]) -> None:
    names = list(dict.fromkeys(f for f in features if f and "\n" not in f))  # features are never empty
    vocab = ranker.Vocabulary.from_names(names)
    column = {name: i for i, name in enumerate(names)}
    queries = asked + names[::-1]
    assert vocab.columns(queries, len(queries)).tolist() == [column.get(q, -1) for q in queries]
    assert len(vocab) == len(names) and vocab.names() == names and not vocab.has_duplicates()


def test_a_vocabulary_with_a_name_twice_is_told_apart_and_refused(small_model: ranker.RankerModel) -> None:
    twice = ranker.Vocabulary.from_names(["бе", "w паспорт", "бе"])
    assert twice.has_duplicates() and twice.columns(["w паспорт", "нет"], 2).tolist() == [1, -1]
    arrays = small_model.arrays()
    names = small_model.vocab.names()
    doubled = np.frombuffer("\n".join([*names[:-1], names[0]]).encode(), dtype=np.uint8)
    with pytest.raises(ValueError, match="duplicates"):
        ranker.RankerModel.from_arrays({**arrays, "vocab": doubled})


def test_inconsistent_arrays_are_refused(small_model: ranker.RankerModel) -> None:
    arrays = small_model.arrays()
    with pytest.raises(ValueError):
        ranker.RankerModel.from_arrays({**arrays, "weights": arrays["weights"][:-1]})
    bad = arrays["weights"].copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError):
        ranker.RankerModel.from_arrays({**arrays, "weights": bad})
    with pytest.raises(ValueError):
        ranker.RankerModel.from_arrays({**arrays, "intercept": arrays["intercept"][:1]})


def test_a_model_of_two_entries_ranks_both_and_round_trips_through_the_cache(tmp_path: Path) -> None:
    two = [row for row in SMALL if row[0] != "school"]
    model = ranker.train(ranker.training_data(two))
    assert model.weights.shape == (len(model.vocab), 2) and model.intercept.shape == (2,)
    r = ranker.Ranker(model)
    assert [e for e, _ in r.rank("как подать на убежище", 2)] == ["apply", "passport"]
    assert [e for e, _ in r.rank("я потерял паспорт", 2)] == ["passport", "apply"]
    write_cached_model(tmp_path, model)
    back = read_cached_model(tmp_path, model.digest)
    assert back is not None and np.array_equal(back.weights, model.weights)


def test_the_cache_holds_a_model_and_shrugs_off_stale_and_broken_files(
    small_model: ranker.RankerModel, tmp_path: Path
) -> None:
    folder = tmp_path / "cache"
    assert read_cached_model(folder, small_model.digest) is None  # nothing there yet
    write_cached_model(folder, small_model)
    back = read_cached_model(folder, small_model.digest)
    assert back is not None and np.array_equal(back.weights, small_model.weights)
    assert read_cached_model(folder, "0" * 64) is None  # another version of the FAQ
    (path,) = folder.glob("ranker-*.npz")
    path.write_bytes(path.read_bytes()[:100])  # truncated
    assert read_cached_model(folder, small_model.digest) is None
    path.write_bytes(b"PK\x03\x04 not an archive")
    assert read_cached_model(folder, small_model.digest) is None
    np.savez(path, classes=np.array([1, 2]))  # a foreign archive
    assert read_cached_model(folder, small_model.digest) is None


def test_a_cache_that_cannot_be_written_costs_nothing(small_model: ranker.RankerModel, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    write_cached_model(blocker / "cache", small_model)  # logs, never raises


def test_a_pickled_file_is_never_loaded(small_model: ranker.RankerModel, tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    write_cached_model(folder, small_model)
    (path,) = folder.glob("ranker-*.npz")
    arrays = dict(small_model.arrays())
    arrays["classes"] = np.array([object()], dtype=object)  # needs pickle to read back
    np.savez(path, **arrays)
    assert read_cached_model(folder, small_model.digest) is None


def test_a_faq_the_ranker_cannot_learn_from_fails_with_a_clear_message(knowledge: Knowledge) -> None:
    faq = knowledge.faq
    blank = {
        e.id: dataclasses.replace(
            e,
            langs={
                lang: dataclasses.replace(b, title="🙂", questions=("🙂",), keywords=("…",))
                for lang, b in e.langs.items()
            },
        )
        for e in faq.entries.values()
    }
    with pytest.raises(ContentError) as exc:  # (its off-topic phrasings blank too: nothing to learn from)
        ranker_model(dataclasses.replace(faq, entries=blank, off_topic=("🙂",)), None)
    assert "learned ranker could not be trained" in str(exc.value.problems[0])


def test_the_shipped_faq_has_a_ranker_and_a_tiny_one_does_not(knowledge: Knowledge) -> None:
    r = knowledge.understanding.ranker
    assert r is not None and set(r.classes) == set(knowledge.faq.entries)
    one = dataclasses.replace(knowledge.faq, entries=dict(list(knowledge.faq.entries.items())[:1]))
    assert not ranker.trainable(one) and ranker.build(one) is None


# Bad input: empty, huge, emoji, mixed scripts, control characters
TEXTS = st.one_of(
    st.text(max_size=200),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1000, max_size=6000),
    st.text(alphabet="😀🙏🇰🇿\u200d\u202e\u0000\u0007\t\n ", max_size=50),
    st.text(alphabet="абвгдқәіңөұүһ abcxyz іїєґ?!.,", max_size=300),
)


@given(TEXTS)
def test_scores_are_finite_for_any_text(knowledge: Knowledge, text: str) -> None:
    r = knowledge.understanding.ranker
    assert r is not None
    scores = r.scores(text)  # every class of the model: the entries and the off-topic class
    assert scores.shape == (len(r.model.classes),) == (len(r.classes) + 1,) and np.isfinite(scores).all()
    ranked = r.rank(text, 3)
    assert len(ranked) == 3 and ranked[0][1] >= ranked[1][1] >= ranked[2][1]


def test_the_asking_part_of_a_long_message_weighs_more_than_the_story() -> None:
    text = (
        "здравствуйте, мы приехали три месяца назад, живем у родственников, муж работает на стройке. "
        "как нам подать на статус беженца?"
    )
    parts = weighted_parts(text)
    assert parts[-1] == ("как нам подать на статус беженца?", 1.0)
    assert all(w == STORY_WEIGHT for _, w in parts[:-1])
    assert asking_text(text) == "как нам подать на статус беженца?"
    assert weighted_parts("как подать на убежище") == [("как подать на убежище", 1.0)]  # short: one part
    story = "мы приехали три месяца назад. живем у родственников. муж работает на стройке. дети ходят в школу."
    assert {w for _, w in weighted_parts(story)} == {1.0}  # nothing asks: evenly


@given(st.text(max_size=2000))
def test_weighted_parts_never_raise_and_keep_every_letter(text: str) -> None:
    parts = weighted_parts(text)
    assert all(w in (1.0, STORY_WEIGHT) for _, w in parts)
    assert "".join(ch for p, _ in parts for ch in p if ch.isalnum()) == "".join(ch for ch in text if ch.isalnum())


def test_check_trains_the_ranker_or_finds_this_version_cached(cli: RunCli, tmp_path: Path) -> None:
    # the valid two-entry sample: the same path through check as the real FAQ, trained in a second, not ten
    content = copy_content(tmp_path / "content", faq_files=DATA / "broken" / "valid")
    env_cache = tmp_path / "cache"
    first = cli("check", "--quiet", "--config", content.config, env={"KOMEK_MODEL_CACHE": str(env_cache)})
    assert first.returncode == 0, first.stdout + first.stderr
    assert "learned ranker: trained on this FAQ (" in first.stdout
    assert list(env_cache.glob("ranker-*.npz"))  # cached for the next start
    again = cli("check", "--quiet", "--config", content.config, env={"KOMEK_MODEL_CACHE": str(env_cache)})
    assert "learned ranker: trained on this FAQ before (cached)" in again.stdout


def test_training_in_two_processes_gives_each_class_the_model_a_single_run_gives() -> None:
    data = ranker.training_data(SMALL)
    one = ranker.train(data, classifier=ranker._linear_svc)
    split = ranker.train(data, classifier=lambda: ranker.SplitOneVsRest(workers=2))
    assert one.classes == split.classes and one.vocab == split.vocab
    # liblinear stops at its tolerance, and each group sees the rows in another order
    assert np.abs(one.weights.astype(np.float32) - split.weights.astype(np.float32)).max() < 0.05
    r1, r2 = ranker.Ranker(one), ranker.Ranker(split)
    for text in ("как подат на убижище", "potyeryal pasport", "rebenok v shkolu", "паспорт"):
        assert r1.rank(text, 1)[0][0] == r2.rank(text, 1)[0][0]
    again = ranker.train(data, classifier=lambda: ranker.SplitOneVsRest(workers=2))
    assert np.array_equal(again.weights, split.weights)  # deterministic


def test_a_group_of_one_class_is_a_binary_model_turned_the_right_way() -> None:
    # three classes in two processes: one group is a single class and "rest"
    x = np.array([[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.0, 1.0, 0.0], [0.1, 0.9, 0.0], [0.0, 0.0, 1.0], [0.0, 0.1, 0.9]])
    y = np.array([0, 0, 1, 1, 2, 2])
    clf = ranker.SplitOneVsRest(workers=2).fit(x, y)
    assert clf.coef_.shape == (3, 3)
    assert (np.argmax(x @ clf.coef_.T + clf.intercept_, axis=1) == y).all()


def test_weights_are_served_as_float16(small_model: ranker.RankerModel) -> None:
    assert small_model.weights.dtype == np.float16
    back = ranker.RankerModel.from_arrays(small_model.arrays())
    assert back.weights.dtype == np.float16 and np.array_equal(back.weights, small_model.weights)
    assert ranker.Ranker(small_model).scores("паспорт").dtype == np.float32


def test_features_with_only_small_weights_are_dropped_and_the_ranking_stays(small_model: ranker.RankerModel) -> None:
    weights = np.abs(small_model.weights.astype(np.float32)).max(axis=1)
    assert weights.min() >= np.float16(ranker.PRUNE) and len(small_model.vocab) == len(weights)
    assert small_model.idf.shape == (len(small_model.vocab),) and 0 < small_model.n_chars < len(small_model.vocab)
    whole = ranker.train(ranker.training_data(SMALL), prune=0.0)
    assert len(whole.vocab) > len(small_model.vocab)  # something was dropped
    kept = set(small_model.vocab.names())
    assert kept < set(whole.vocab.names()) and small_model.vocab.names()[: small_model.n_chars] == [
        n for n in whole.vocab.names()[: whole.n_chars] if n in kept
    ]
    pruned, full = ranker.Ranker(small_model), ranker.Ranker(whole)
    for text in ("как подат на убижище", "potyeryal pasport", "rebenok v shkolu", "паспорт", "can my child go"):
        assert pruned.rank(text, 1)[0][0] == full.rank(text, 1)[0][0]


def test_interning_in_two_halves_gives_exactly_the_one_pass_result() -> None:
    texts = [f"{q} {i} вариант{i % 97}" for i in range(2600) for _, _, q in SMALL[i % len(SMALL) : i % len(SMALL) + 1]]
    assert len(texts) >= 2 * ranker.INTERN_SPLIT_MIN
    one = ranker._interned(texts)
    halves = ranker._interned_in_halves(texts, workers=2)
    assert one[0] == halves[0]
    for a, b in zip(one[1:], halves[1:], strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b)

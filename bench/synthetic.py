"""Synthetic FAQs of any size, made from the shipped FAQ's own words and phrasings.

Each synthetic entry is a variant of a random shipped entry, built like a real one in every language
of the shipped FAQ: a title, ten questions and six keywords. A question is one of that entry's real
questions in that language with about half of its content words swapped for the synthetic entry's
*topic words* (the short and common words stay). Topic words are
new words spliced from the shipped text of the same language (the head of one word and the tail of
another: "беженство" + "документы" -> "бежементы"), so they have the FAQ's letters, lengths and
endings. Every size keeps the shipped entries (the eval messages still have their right answer, so
the synthetic entries are distractors) and adds synthetic ones until it has `size` entries. The
vocabulary grows with the size (a pool of 2 topic words per entry per language, 3 used per entry),
the way a real, larger FAQ's would, and the common words keep the shipped distribution.

The objects are the real model (bot.faq.Entry / LangBlock / FAQ) with the shipped UI texts and
synonyms, so Knowledge.build and reply_to_text run unchanged on them.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from dataclasses import replace

from bot.faq import FAQ, Entry, LangBlock, Section

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
SWAP_SHARE = 0.5  # share of a borrowed question's content words replaced by the entry's topic words
TOPIC_WORDS = 3  # new words per entry and language (drawn from a pool of 2 per entry)


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


class _Lang:
    """What one language of the shipped FAQ offers to recombine."""

    def __init__(self, blocks: list[LangBlock]) -> None:
        self.questions = [q for b in blocks for q in b.questions]
        self.keywords = [k for b in blocks for k in b.keywords]
        self.titles = [b.title for b in blocks]
        self.answers = [b.answer for b in blocks]
        text = " ".join(self.questions + self.keywords + self.titles + self.answers)
        self.known = set(_words(text))
        long_words = sorted(w for w in self.known if len(w) >= 5)
        # by script, so a spliced word is all Latin or all Cyrillic, like the words it comes from
        self.by_script = [
            g for g in ([w for w in long_words if w.isascii()], [w for w in long_words if not w.isascii()]) if g
        ]
        self.weights = [len(g) for g in self.by_script]

    def splice(self, rng: random.Random, taken: set[str]) -> str:
        while True:
            [group] = rng.choices(self.by_script, self.weights)
            a, b = rng.choice(group), rng.choice(group)
            word = a[: rng.randint(3, 5)] + b[-rng.randint(3, 5) :]
            if word not in self.known and word not in taken:
                taken.add(word)
                return word


def _swap_words(question: str, topic: list[str], rng: random.Random) -> str:
    """Replace about half of the content words (4+ letters, at least one) of a real question by
    topic words; the short and common words stay, so the word distribution stays the FAQ's."""
    parts = question.split()
    slots = [i for i, p in enumerate(parts) if len(_words(p)) == 1 and len(p) >= 4]
    rng.shuffle(slots)
    for i in slots[: max(1, round(len(slots) * SWAP_SHARE))] or [len(parts)]:
        word = rng.choice(topic)
        if i == len(parts):
            parts.append(word)
        else:
            parts[i] = word
    return " ".join(parts)


def synthetic_faq(base: FAQ, size: int, seed: int = 1) -> FAQ:
    """`base` plus synthetic entries up to `size` entries in all (at least the base's own)."""
    rng = random.Random(seed)
    langs = sorted({lang for e in base.entries.values() for lang in e.langs})
    material = {lang: _Lang([e.langs[lang] for e in base.entries.values() if lang in e.langs]) for lang in langs}
    extra = max(0, size - len(base.entries))
    taken: set[str] = set()
    pools = {lang: [material[lang].splice(rng, taken) for _ in range(2 * extra)] for lang in langs}
    template = next(iter(base.entries.values()))
    section_ids = [s.id for s in base.sections]
    entries: dict[str, Entry] = dict(base.entries)
    by_section: dict[str, list[str]] = {s.id: list(s.entry_ids) for s in base.sections}
    for i in range(extra):
        model = rng.choice(list(base.entries.values()))  # the real entry this one is a variant of
        blocks: dict[str, LangBlock] = {}
        for lang in langs:
            m = material[lang]
            own = model.langs.get(lang)
            questions_pool = list(own.questions) if own else m.questions
            keywords_pool = list(own.keywords) if own and len(own.keywords) >= 3 else m.keywords
            topic = rng.sample(pools[lang], TOPIC_WORDS)
            title = f"{(own.title if own else rng.choice(m.titles)).split()[0]} {topic[0]} {topic[1]}"[:32]
            questions = tuple(_swap_words(rng.choice(questions_pool), topic, rng) for _ in range(10))
            keywords = tuple(topic + rng.sample(keywords_pool, 3))
            blocks[lang] = LangBlock(
                title=title, questions=questions, keywords=keywords, answer=rng.choice(m.answers), checked="draft"
            )
        entry_id = f"synthetic-{i:05d}"
        section = section_ids[i % len(section_ids)]
        entries[entry_id] = replace(
            template,
            id=entry_id,
            section=section,
            urgent=False,
            related=(),
            langs=blocks,
            reviewed=dt.date(2026, 1, 1),
            line=0,
        )
        by_section[section].append(entry_id)
    sections = tuple(Section(s.id, s.titles, tuple(by_section[s.id])) for s in base.sections)
    return FAQ(entries=entries, sections=sections, ui=base.ui, synonyms=base.synonyms, warnings=())


def describe(faq: FAQ) -> dict[str, int]:
    """Entries, phrasings (title + questions + keywords, all languages) and distinct words."""
    phrasings = 0
    vocab: set[str] = set()
    for e in faq.entries.values():
        for b in e.langs.values():
            texts = (b.title, *b.questions, *b.keywords)
            phrasings += len(texts)
            for t in texts:
                vocab.update(_words(t))
    return {"entries": len(faq.entries), "phrasings": phrasings, "distinct_words": len(vocab)}

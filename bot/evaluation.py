"""Accuracy on a labelled set of messages: the figures behind every claim about quality.

Every figure is named by what it counts (in-scope messages unless said otherwise):
- strict_top1: answered directly (no "did you mean" step) with the expected entry;
- shown_first: the first entry the user is shown (the direct answer, or the first "did you mean"
  button) is the expected one (the README's "top-1" before issue 12);
- top3: the expected entry is among the first three shown;
- direct: share answered directly; direct_precision: of those direct answers, the share that is
  right (a wrong direct answer is the worst outcome, so it is reported on its own);
- rejection (off-topic messages): the fallback or small talk, never a guess or a suggestion.
Reported overall, by language and, when the items carry a `kind` (typo, long, short, plain,
translit), by kind.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from bot.dialogue import ANSWER_KINDS, FALLBACK, SMALLTALK, Knowledge, Reply, reply_to_text
from bot.i18n import choose_language
from bot.normalize import normalize


@dataclass(frozen=True)
class Item:
    q: str
    expect: str | None
    lang: str = "?"
    kind: str | None = None


@dataclass
class Tally:
    in_scope: int = 0
    top1: int = 0
    top3: int = 0
    off_scope: int = 0
    rejected: int = 0
    direct: int = 0
    direct_right: int = 0

    def add(self, item: Item, reply: Reply) -> bool:
        """Count one reply; True when it is right."""
        if item.expect is None:
            self.off_scope += 1
            ok = reply.kind in (FALLBACK, SMALLTALK)
            self.rejected += ok
            return ok
        self.in_scope += 1
        shown = ([reply.entry_id] if reply.entry_id else []) + list(reply.suggestions)
        hit1 = bool(shown) and shown[0] == item.expect
        self.top1 += hit1
        self.top3 += item.expect in shown[:3]
        if reply.kind in ANSWER_KINDS:
            self.direct += 1
            self.direct_right += reply.entry_id == item.expect
        return hit1

    def as_dict(self) -> dict[str, Any]:
        return {
            "in_scope": self.in_scope,
            "strict_top1": _ratio(self.direct_right, self.in_scope),
            "shown_first": _ratio(self.top1, self.in_scope),
            "top3": _ratio(self.top3, self.in_scope),
            "direct": _ratio(self.direct, self.in_scope),
            "direct_precision": _ratio(self.direct_right, self.direct),
            "off_scope": self.off_scope,
            "rejection": _ratio(self.rejected, self.off_scope),
        }


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


@dataclass
class Report:
    overall: Tally = field(default_factory=Tally)
    per_lang: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    per_kind: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    misses: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "overall": self.overall.as_dict(),
            "per_lang": {k: v.as_dict() for k, v in sorted(self.per_lang.items())},
            "per_kind": {k: v.as_dict() for k, v in sorted(self.per_kind.items())},
            "misses": self.misses,
        }


def parse_items(data: Any) -> list[Item]:
    if not isinstance(data, list):
        raise ValueError("an evaluation file is a list of {q, expect} items")
    items = []
    for i, raw in enumerate(data, 1):
        if not isinstance(raw, dict) or not isinstance(raw.get("q"), str) or "expect" not in raw:
            raise ValueError(f"item {i} needs 'q' (text) and 'expect' (an entry id or null)")
        kind = raw.get("kind")
        items.append(
            Item(
                q=raw["q"],
                expect=raw["expect"],
                lang=str(raw.get("lang", "?")),
                kind=str(kind) if kind is not None else None,
            )
        )
    return items


def with_engine(k: Knowledge, engine: str) -> Knowledge:
    """The same knowledge deciding with another engine ("combined", "matcher", "ranker" alone)."""
    if engine == k.understanding.engine:
        return k
    return dataclasses.replace(k, understanding=dataclasses.replace(k.understanding, engine=engine), _filled={})


def unseen(k: Knowledge, items: list[Item]) -> Knowledge:
    """The same content without the FAQ questions and off-topic phrasings that are one of the set's
    messages (after normalisation), the ranker trained and the index built on what is left: figures
    on a set whose messages went into the FAQ as phrasings are then fair again."""
    asked = {normalize(i.q) for i in items}
    entries = {
        e.id: dataclasses.replace(
            e,
            langs={
                lang: dataclasses.replace(b, questions=tuple(q for q in b.questions if normalize(q) not in asked))
                for lang, b in e.langs.items()
            },
        )
        for e in k.faq.entries.values()
    }
    off_topic = tuple(t for t in k.faq.off_topic if normalize(t) not in asked)
    return Knowledge.build(k.config, dataclasses.replace(k.faq, entries=entries, off_topic=off_topic))


def evaluate(k: Knowledge, items: list[Item]) -> Report:
    report = Report()
    for item in items:
        lang = choose_language(None, None, item.q, k.config.languages, k.config.default_language)
        reply = reply_to_text(k, item.q, lang)
        ok = report.overall.add(item, reply)
        report.per_lang[item.lang].add(item, reply)
        if item.kind is not None:
            report.per_kind[item.kind].add(item, reply)
        if not ok:
            report.misses.append(
                {
                    "q": item.q,
                    "lang": item.lang,
                    "item_kind": item.kind,
                    "expect": item.expect,
                    "kind": reply.kind,
                    "got": reply.entry_id,
                    "suggestions": list(reply.suggestions),
                    "top": [(c.entry_id, c.score) for c in reply.candidates[:3]],
                }
            )
    return report


def unknown_ids(k: Knowledge, items: list[Item]) -> list[str]:
    return sorted({i.expect for i in items if i.expect is not None and i.expect not in k.faq.entries})

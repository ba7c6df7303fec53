"""The staff report: reply rates by day and language, top entries, 👍/👎, unanswered questions grouped.

Pure: rows read from the database go in, figures come out, rendered as text, CSV or one self-contained
HTML page whose charts are inline SVG (the file is mailed around and opened offline, so nothing is
fetched from the network). The CLI does the reading and writing. Unanswered questions are user input:
every renderer escapes them for its format.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from rapidfuzz import fuzz, process

from bot.faq import FAQ
from bot.lexicon import lexicon
from bot.matcher import Index
from bot.normalize import normalize, tokens

# The reply kinds that answer a question; /stats counts the same ones, so the figures agree.
QUESTION_KINDS = ("answer", "did_you_mean", "fallback", "urgent", "smalltalk")
RATE_KINDS = ("answer", "did_you_mean", "fallback", "urgent")
LABELS = {
    "answer": "answered",
    "did_you_mean": "did-you-mean",
    "fallback": "fallback",
    "urgent": "urgent",
    "smalltalk": "small talk",
}
COLOURS = {
    "answer": "#2e7d32",
    "urgent": "#c62828",
    "did_you_mean": "#f9a825",
    "fallback": "#78909c",
    "smalltalk": "#b0bec5",
}
SIMILARITY = 80  # rapidfuzz token_set_ratio (0-100) from which two questions count as the same one
EXAMPLES = 8  # distinct phrasings shown per group

Closest = Callable[[str], tuple[str, float] | None]
OffTopic = Callable[[str], Sequence[str]]  # the words of a question that name other services


@dataclass(frozen=True)
class Event:
    ts: dt.datetime
    kind: str
    entry_id: str | None
    lang: str | None
    crisis: str | None = None  # the crisis category of an urgent reply


@dataclass(frozen=True)
class Unanswered:
    ts: dt.datetime
    lang: str
    kind: str
    text: str


@dataclass(frozen=True)
class Decided:
    """Staff's decision about a stored question (/unanswered or `python -m bot teach`)."""

    ts: dt.datetime
    action: str  # taught / new_topic / ignored
    entry_id: str | None
    lang: str | None
    text: str | None  # the question, while it is still stored


@dataclass(frozen=True)
class Vote:
    ts: dt.datetime
    entry_id: str
    helpful: bool


@dataclass(frozen=True)
class Counts:
    """Replies of each kind; rates are shares of all questions (small talk included, as in /stats)."""

    by_kind: Mapping[str, int]

    @property
    def questions(self) -> int:
        return sum(self.by_kind.get(k, 0) for k in QUESTION_KINDS)

    def n(self, kind: str) -> int:
        return self.by_kind.get(kind, 0)

    def rate(self, kind: str) -> float | None:
        total = self.questions
        return self.n(kind) / total if total else None


@dataclass(frozen=True)
class EntryFigures:
    entry_id: str
    title: str
    shown: int
    helpful: int
    not_helpful: int


@dataclass(frozen=True)
class Group:
    """Unanswered questions that say about the same thing, and the entry the matcher finds closest."""

    phrasings: tuple[tuple[str, int], ...]  # distinct texts, how often, most frequent first
    size: int
    langs: Mapping[str, int]
    kinds: Mapping[str, int]
    closest: str | None
    closest_title: str
    closest_score: float
    off_topic: bool = False  # most of its questions name other services (the matcher's off-topic signal)
    off_words: tuple[str, ...] = ()  # those words, most frequent first


@dataclass(frozen=True)
class NewTopic:
    """A question staff kept for the next content review."""

    asked: dt.datetime | None
    decided: dt.datetime
    lang: str
    text: str


@dataclass(frozen=True)
class Report:
    first_day: dt.date
    last_day: dt.date
    timezone: str
    total: Counts
    by_day: tuple[tuple[dt.date, Counts], ...]
    by_lang: tuple[tuple[str, Counts], ...]
    top: tuple[EntryFigures, ...]
    feedback: tuple[EntryFigures, ...]
    groups: tuple[Group, ...]
    unanswered: int
    near: float  # a closest entry scoring at least this is worth new phrasings; below, a new entry
    teaching: Mapping[str, int] = field(default_factory=dict)  # decisions in the period by action
    new_topics: tuple[NewTopic, ...] = ()
    handled: int = 0  # unanswered questions of the period already decided on (not in the groups)
    crisis: tuple[tuple[str, int], ...] = ()  # urgent replies by crisis category, most first

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    @property
    def gaps(self) -> tuple[Group, ...]:
        return tuple(g for g in self.groups if not g.off_topic)

    @property
    def off_topic(self) -> tuple[Group, ...]:
        return tuple(g for g in self.groups if g.off_topic)


# ---------------------------------------------------------------- inputs


def parse_ts(ts: str) -> dt.datetime:
    """Storage's ISO 8601 UTC text → aware datetime."""
    value = dt.datetime.fromisoformat(ts)
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def period(now: dt.datetime, days: int, tz: ZoneInfo) -> tuple[dt.date, dt.date, dt.datetime]:
    """The last `days` calendar days in `tz`, today included: (first day, last day, start in UTC)."""
    if days < 1:
        raise ValueError("days must be at least 1")
    last = now.astimezone(tz).date()
    first = last - dt.timedelta(days=days - 1)
    start = dt.datetime.combine(first, dt.time(), tzinfo=tz).astimezone(dt.UTC)
    return first, last, start


def entry_titles(faq: FAQ, lang: str) -> dict[str, str]:
    """Entry id → title in the staff's language (the default language)."""
    return {e.id: (e.langs[lang].title if lang in e.langs else e.id) for e in faq.entries.values()}


def matcher_closest(index: Index) -> Closest:
    """The real matcher's top entry for a text, exactly as the bot ranks it."""

    def closest(text: str) -> tuple[str, float] | None:
        ranked = index.match(text, limit=1)
        return (ranked[0].entry_id, ranked[0].score) if ranked else None

    return closest


# ---------------------------------------------------------------- figures


def compute(
    events: Iterable[Event],
    unanswered: Iterable[Unanswered],
    votes: Iterable[Vote],
    *,
    first_day: dt.date,
    last_day: dt.date,
    tz: ZoneInfo,
    titles: Mapping[str, str],
    closest: Closest,
    near: float = 0.4,
    top_n: int = 10,
    off_topic: OffTopic = lambda text: (),
    decisions: Iterable[Decided] = (),
) -> Report:
    """Every figure of the report; rows outside [first_day, last_day] (local days) are left out.
    Unanswered questions staff already decided on (taught, new topic, ignored: at any time) are
    counted as handled, not grouped again."""

    def inside(ts: dt.datetime) -> bool:
        return first_day <= ts.astimezone(tz).date() <= last_day

    per_day: dict[dt.date, Counter[str]] = defaultdict(Counter)
    per_lang: dict[str, Counter[str]] = defaultdict(Counter)
    total: Counter[str] = Counter()
    shown: Counter[str] = Counter()
    crisis: Counter[str] = Counter()
    for e in events:
        if not inside(e.ts):
            continue
        total[e.kind] += 1
        if e.crisis:
            crisis[e.crisis] += 1
        per_day[e.ts.astimezone(tz).date()][e.kind] += 1
        if e.kind in QUESTION_KINDS:
            per_lang[e.lang or "?"][e.kind] += 1
        if e.entry_id and e.kind in ("answer", "urgent"):
            shown[e.entry_id] += 1
    days = [first_day + dt.timedelta(days=i) for i in range((last_day - first_day).days + 1)]
    by_lang = sorted(per_lang.items(), key=lambda kv: (-sum(kv[1][k] for k in QUESTION_KINDS), kv[0]))

    up: Counter[str] = Counter()
    down: Counter[str] = Counter()
    for v in votes:
        if inside(v.ts):
            (up if v.helpful else down)[v.entry_id] += 1

    def figures(entry_id: str) -> EntryFigures:
        title = titles.get(entry_id, "not in the FAQ any more")
        return EntryFigures(entry_id, title, shown[entry_id], up[entry_id], down[entry_id])

    top = [figures(e) for e, _ in sorted(shown.items(), key=lambda kv: (-kv[1], kv[0]))[:top_n]]
    voted = sorted(set(up) | set(down), key=lambda e: (-(up[e] + down[e]), -up[e], e))
    decided = list(decisions)
    handled_texts = {d.text for d in decided if d.text is not None}
    asked: dict[str, Unanswered] = {}
    period_items = [u for u in unanswered if inside(u.ts)]
    for u in period_items:
        asked.setdefault(u.text, u)
    kept = [u for u in period_items if u.text not in handled_texts]
    in_period = [d for d in decided if inside(d.ts)]
    new_topics = tuple(
        NewTopic(
            asked[d.text].ts if d.text in asked else None, d.ts, asked[d.text].lang if d.text in asked else "", d.text
        )
        for d in in_period
        if d.action == "new_topic" and d.text is not None
    )
    return Report(
        first_day=first_day,
        last_day=last_day,
        timezone=str(tz),
        total=Counts(dict(total)),
        by_day=tuple((d, Counts(dict(per_day.get(d, Counter())))) for d in days),
        by_lang=tuple((lang, Counts(dict(c))) for lang, c in by_lang),
        top=tuple(top),
        feedback=tuple(figures(e) for e in voted),
        groups=tuple(group_unanswered(kept, titles, closest, off_topic)),
        unanswered=len(kept),
        near=near,
        teaching=dict(Counter(d.action for d in in_period)),
        new_topics=new_topics,
        handled=len(period_items) - len(kept),
        crisis=tuple(sorted(crisis.items(), key=lambda kv: (-kv[1], kv[0]))),
    )


def topic_key(text: str) -> str:
    """What a question is about: normalised words without stopwords ("как получить" is not a topic)."""
    stop = lexicon().stopwords
    words = [w for w in tokens(normalize(text)) if w not in stop and len(w) > 1]
    return " ".join(words) or normalize(text) or text.strip().casefold()


def cluster(keys: Sequence[str], threshold: float = SIMILARITY) -> list[list[int]]:
    """Greedy grouping: the most frequent phrasings first become groups; each other one joins the group
    whose first phrasing is most similar (token_set_ratio ≥ threshold), else starts a new group."""
    same: dict[str, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        same[key].append(i)
    heads: list[str] = []
    groups: list[list[int]] = []
    for key, members in sorted(same.items(), key=lambda kv: (-len(kv[1]), kv[1][0])):
        hit = process.extractOne(key, heads, scorer=fuzz.token_set_ratio, score_cutoff=threshold) if heads else None
        if hit is None:
            heads.append(key)
            groups.append(list(members))
        else:
            groups[hit[2]].extend(members)
    return groups


def group_unanswered(
    items: Sequence[Unanswered], titles: Mapping[str, str], closest: Closest, off_topic: OffTopic = lambda t: ()
) -> list[Group]:
    """Similar questions together, biggest group first, each with the entry most of them are closest to
    (the matcher is asked about a group's most frequent phrasings only: about 10 ms each). A group
    most of whose questions name other services (weather, pizza, an iPhone) is off-topic."""
    out: list[Group] = []
    for members in cluster([topic_key(u.text) for u in items]):
        texts = Counter(items[i].text for i in members)
        votes: dict[str, list[float]] = defaultdict(list)
        off_count = 0
        off_words: Counter[str] = Counter()
        for text, count in texts.items():
            words = off_topic(text)
            if words:
                off_count += count
                off_words.update(dict.fromkeys(words, count))
        for text, count in texts.most_common(EXAMPLES):
            best = closest(text)
            if best is not None:
                votes[best[0]].extend([best[1]] * count)
        pick = max(votes.items(), key=lambda kv: (len(kv[1]), sum(kv[1]), kv[0]), default=None)
        out.append(
            Group(
                phrasings=tuple(sorted(texts.items(), key=lambda kv: (-kv[1], kv[0]))),
                size=len(members),
                langs=dict(Counter(items[i].lang or "?" for i in members).most_common()),
                kinds=dict(Counter(items[i].kind for i in members).most_common()),
                closest=pick[0] if pick else None,
                closest_title=titles.get(pick[0], "") if pick else "",
                closest_score=round(sum(pick[1]) / len(pick[1]), 2) if pick else 0.0,
                off_topic=off_count * 2 >= len(members),
                off_words=tuple(w for w, _ in off_words.most_common(5)),
            )
        )
    out.sort(key=lambda g: -g.size)  # stable: equal sizes keep the order of their most common phrasing
    return out


def advice(report: Report, group: Group) -> str:
    """What staff can do with a group of unanswered questions."""
    if group.off_topic:
        return f"about other services ({', '.join(group.off_words)}): no entry needed unless UNHCR wants to cover it"
    if group.closest is not None and group.closest_score >= report.near:
        return f"if '{group.closest}' answers them, teach it these phrasings (/unanswered or `python -m bot teach`)"
    return "no entry is close: a new entry may be needed (🆕 new topic in /unanswered keeps it for the review)"


# ---------------------------------------------------------------- text


def pct(rate: float | None) -> str:
    return "–" if rate is None else f"{100 * rate:.0f}%"


def _counts_line(c: Counts) -> str:
    rates = ", ".join(f"{LABELS[k]} {pct(c.rate(k))}" for k in RATE_KINDS)
    return f"{c.questions} question{'' if c.questions == 1 else 's'}: {rates}"


def day_rows(report: Report) -> list[tuple[dt.date, dt.date, Counts]]:
    """The days as table rows (first day, last day, counts): a run of two or more days without a
    question is one row, so a quiet month is a few lines, not thirty."""
    rows: list[tuple[dt.date, dt.date, Counts]] = []
    for day, c in report.by_day:
        if rows and not c.questions and not rows[-1][2].questions:
            rows[-1] = (rows[-1][0], day, Counts({}))
        else:
            rows.append((day, day, c))
    return rows


def span(first: dt.date, last: dt.date) -> str:
    return first.isoformat() if first == last else f"{first} – {last}"


def local(ts: dt.datetime, timezone: str) -> str:
    """A moment in the office's zone, with the zone's name: every time staff read says its zone."""
    return f"{ts.astimezone(ZoneInfo(timezone)):%Y-%m-%d %H:%M} {timezone}"


def teaching_line(report: Report) -> str:
    t = report.teaching
    return (
        f"taught {t.get('taught', 0)}, new topic {t.get('new_topic', 0)}, ignored {t.get('ignored', 0)} "
        "(decisions on /unanswered or with `python -m bot teach` in this period)"
    )


def _text_groups(report: Report, groups: Sequence[Group]) -> list[str]:
    out = []
    for n, g in enumerate(groups, 1):
        langs = ", ".join(f"{k} {v}" for k, v in g.langs.items())
        kinds = ", ".join(f"{LABELS.get(k, k)} {v}" for k, v in g.kinds.items())
        closest = f"'{g.closest}' ({g.closest_title}), score {g.closest_score:.2f}" if g.closest else "none"
        out.append(f"  {n}. {g.size} question(s) [{langs}; {kinds}]; closest entry: {closest}")
        out.append(f"     → {advice(report, g)}")
        out += [f"     - {text}" + (f"  ×{count}" if count > 1 else "") for text, count in g.phrasings[:EXAMPLES]]
        if len(g.phrasings) > EXAMPLES:
            out.append(f"     … and {len(g.phrasings) - EXAMPLES} more")
    return out or ["  –"]


def _size(groups: Sequence[Group]) -> str:
    return f"{sum(g.size for g in groups)} question(s) in {len(groups)} group(s)"


def render_text(report: Report) -> str:
    r = report
    out = [
        f"Komek report {r.first_day} – {r.last_day} ({r.days} days, {r.timezone} time)",
        f"Total: {_counts_line(r.total)}; small talk {r.total.n('smalltalk')}",
        "",
        f"By day ({r.timezone}; days without questions collapsed):",
        f"  {'day':10} {'questions':>9} {'answered':>9} {'did-you-mean':>13} {'fallback':>9} {'urgent':>7}",
    ]
    for first, last, c in day_rows(r):
        if first != last:
            out.append(f"  {span(first, last)}: no questions ({(last - first).days + 1} days)")
            continue
        cells = " ".join(f"{pct(c.rate(k)):>{w}}" for k, w in zip(RATE_KINDS, (9, 13, 9, 7), strict=True))
        out.append(f"  {first.isoformat():10} {c.questions:>9} {cells}")
    out += ["", "By language:"]
    out += [f"  {lang:4} {_counts_line(c)}" for lang, c in r.by_lang] or ["  –"]
    out += ["", "Urgent replies by crisis category (counts only):"]
    out += [f"  {n:>5}  {c}" for c, n in r.crisis] or ["  –"]
    out += ["", "Top entries (answers and urgent replies):"]
    out += [f"  {e.shown:>5}  {e.entry_id}  ({e.title})" for e in r.top] or ["  –"]
    out += ["", "Feedback per entry (👍 / 👎):"]
    out += [f"  👍 {e.helpful:>3}  👎 {e.not_helpful:>3}  {e.entry_id}  ({e.title})" for e in r.feedback] or ["  –"]
    out += [
        "",
        f"Unanswered questions: {r.unanswered} to review (scrubbed), grouped by similarity; "
        f"{r.handled} more already handled.",
        "",
        f"Possible gaps ({_size(r.gaps)}): the FAQ may be missing these",
        *_text_groups(r, r.gaps),
        "",
        f"Off-topic ({_size(r.off_topic)}): about other services (the matcher's off-topic words)",
        *_text_groups(r, r.off_topic),
        "",
        f"Teaching: {teaching_line(r)}",
        "",
        f"New topics for the next content review ({len(r.new_topics)}):",
    ]
    out += [
        f"  - {t.text}  [{t.lang or '?'}; asked {local(t.asked, r.timezone) if t.asked else '–'}]" for t in r.new_topics
    ] or ["  –"]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- CSV


def _cell(text: str) -> str:
    """User text in a spreadsheet: a leading = + - @ would be read as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _rate_cell(rate: float | None) -> str:
    return "" if rate is None else f"{rate:.4f}"


def render_csv_tables(report: Report) -> dict[str, str]:
    """One CSV file per table (file name -> text); every day is a row here (spreadsheets want them)."""
    rate_header = ["questions", *RATE_KINDS, "smalltalk", *(f"{k}_rate" for k in RATE_KINDS)]
    tz = report.timezone

    def counts_row(c: Counts) -> list[object]:
        return [
            c.questions,
            *(c.n(k) for k in (*RATE_KINDS, "smalltalk")),
            *(_rate_cell(c.rate(k)) for k in RATE_KINDS),
        ]

    def table(header: list[str], rows: Iterable[Sequence[object]]) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
        return buf.getvalue()

    groups = [("gap", n, g) for n, g in enumerate(report.gaps, 1)]
    groups += [("off-topic", n, g) for n, g in enumerate(report.off_topic, 1)]
    return {
        "days.csv": table([f"day ({tz})", *rate_header], ([d.isoformat(), *counts_row(c)] for d, c in report.by_day)),
        "languages.csv": table(
            ["language", *rate_header],
            [*([lang, *counts_row(c)] for lang, c in report.by_lang), ["total", *counts_row(report.total)]],
        ),
        "top_entries.csv": table(
            ["entry", "title", "shown", "helpful", "not_helpful"],
            ([e.entry_id, e.title, e.shown, e.helpful, e.not_helpful] for e in report.top),
        ),
        "crisis.csv": table(["crisis_category", "urgent_replies"], ([c, n] for c, n in report.crisis)),
        "feedback.csv": table(
            ["entry", "title", "helpful", "not_helpful"],
            ([e.entry_id, e.title, e.helpful, e.not_helpful] for e in report.feedback),
        ),
        "unanswered.csv": table(
            [
                "category",
                "group",
                "group_size",
                "closest_entry",
                "closest_title",
                "closest_score",
                "off_topic_words",
                "question",
                "count",
            ],
            (
                [
                    kind,
                    n,
                    g.size,
                    g.closest or "",
                    g.closest_title,
                    f"{g.closest_score:.2f}",
                    " ".join(g.off_words),
                    _cell(text),
                    count,
                ]
                for kind, n, g in groups
                for text, count in g.phrasings
            ),
        ),
        "new_topics.csv": table(
            [f"asked ({tz})", f"decided ({tz})", "language", "question"],
            (
                [
                    f"{t.asked.astimezone(ZoneInfo(tz)):%Y-%m-%d %H:%M}" if t.asked else "",
                    f"{t.decided.astimezone(ZoneInfo(tz)):%Y-%m-%d %H:%M}",
                    t.lang,
                    _cell(t.text),
                ]
                for t in report.new_topics
            ),
        ),
        "teaching.csv": table(
            ["action", "count"], ([a, report.teaching.get(a, 0)] for a in ("taught", "new_topic", "ignored"))
        ),
    }


# ---------------------------------------------------------------- HTML

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:1100px;
padding:0 1rem;color:#212121}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.2rem .6rem;border-bottom:1px solid #eee;
text-align:right}td.t,th.t{text-align:left}
.legend span{display:inline-block;margin-right:1rem}.legend i{display:inline-block;width:.9em;height:.9em;
margin-right:.3em;vertical-align:-.1em}
.group{margin:1rem 0;padding:.5rem 1rem;border-left:4px solid #90caf9;background:#f7fbff}
.group ul{margin:.3rem 0}
.group[data-category=off-topic]{border-left-color:#b0bec5;background:#fafafa}.muted{color:#666}svg{max-width:100%;height:auto}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def daily_chart(report: Report) -> str:
    """Stacked bars, one per day: the share of each reply kind (hover shows the numbers)."""
    plot_h, left, top_pad, bottom = 180, 40, 20, 40
    step = 24 if report.days <= 45 else max(6, 1080 // report.days)
    width = left + step * report.days + 10
    height = top_pad + plot_h + bottom
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="daily-chart" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Share of answered, did-you-mean, fallback and urgent replies per day">'
    ]
    for frac in (0.0, 0.5, 1.0):
        y = top_pad + plot_h * (1 - frac)
        parts.append(f'<line x1="{left}" x2="{width - 5}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"></line>')
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{frac:.0%}</text>')
    bar_w = max(3, step - 6)
    for i, (day, c) in enumerate(report.by_day):
        x = left + i * step + (step - bar_w) / 2
        y = float(top_pad + plot_h)
        for kind in (*RATE_KINDS, "smalltalk"):
            rate = c.rate(kind)
            if not rate:
                continue
            h = plot_h * rate
            y -= h
            tip = f"{day}: {LABELS[kind]} {c.n(kind)} of {c.questions} ({pct(rate)})"
            parts.append(
                f'<rect class="bar" data-day="{day}" data-kind="{kind}" data-count="{c.n(kind)}" '
                f'data-questions="{c.questions}" data-rate="{rate:.4f}" x="{x:.1f}" y="{y:.1f}" '
                f'width="{bar_w}" height="{h:.1f}" fill="{COLOURS[kind]}"><title>{_e(tip)}</title></rect>'
            )
        if c.questions and step >= 18:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{top_pad - 6}" font-size="9" text-anchor="middle">'
                f"{c.questions}</text>"
            )
        if step >= 18 or day.day == 1 or i == 0:
            label = day.strftime("%d.%m") if (day.day == 1 or i == 0) else f"{day.day}"
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{top_pad + plot_h + 14}" font-size="9" '
                f'text-anchor="middle">{label}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def feedback_chart(report: Report) -> str:
    """Horizontal bars per entry: 👍 then 👎, to the same scale."""
    rows = report.feedback
    label_w, bar_max, row_h = 230, 420, 22
    most = max((e.helpful + e.not_helpful for e in rows), default=1)
    height = row_h * len(rows) + 10
    width = label_w + bar_max + 80
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="feedback-chart" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="Helpful and not helpful per entry">'
    ]
    for i, e in enumerate(rows):
        y = 5 + i * row_h
        parts.append(f'<text x="{label_w - 6}" y="{y + 14}" font-size="11" text-anchor="end">{_e(e.entry_id)}</text>')
        x = float(label_w)
        for vote, count, colour in (("helpful", e.helpful, "#2e7d32"), ("not_helpful", e.not_helpful, "#c62828")):
            w = bar_max * count / most
            tip = f"{e.entry_id}: {'👍' if vote == 'helpful' else '👎'} {count}"
            parts.append(
                f'<rect class="bar" data-entry="{_e(e.entry_id)}" data-vote="{vote}" data-count="{count}" '
                f'x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row_h - 6}" fill="{colour}">'
                f"<title>{_e(tip)}</title></rect>"
            )
            x += w
        parts.append(f'<text x="{x + 6:.1f}" y="{y + 14}" font-size="11">{e.helpful} / {e.not_helpful}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _counts_table(first: str, rows: Sequence[tuple[str, Counts]]) -> str:
    head = "".join(f"<th>{LABELS[k]}</th>" for k in RATE_KINDS)
    body = "".join(
        f'<tr><td class="t">{_e(key)}</td><td>{c.questions}</td>'
        + "".join(f'<td title="{c.n(k)}">{pct(c.rate(k))}</td>' for k in RATE_KINDS)
        + "</tr>"
        for key, c in rows
    )
    head = f'<tr><th class="t">{first}</th><th>questions</th>{head}</tr>'
    return f"<table><thead>{head}</thead><tbody>{body}</tbody></table>"


def _html_groups(report: Report, groups: Sequence[Group], category: str) -> str:
    out = []
    for n, g in enumerate(groups, 1):
        items = "".join(
            f"<li>{_e(text)}" + (f' <span class="muted">×{count}</span>' if count > 1 else "") + "</li>"
            for text, count in g.phrasings
        )
        langs = ", ".join(f"{_e(k)} {v}" for k, v in g.langs.items())
        kinds = ", ".join(f"{_e(LABELS.get(k, k))} {v}" for k, v in g.kinds.items())
        closest = (
            f"<b>{_e(g.closest)}</b> ({_e(g.closest_title)}), score {g.closest_score:.2f}" if g.closest else "none"
        )
        out.append(
            f'<div class="group" data-category="{category}" data-size="{g.size}" '
            f'data-closest="{_e(g.closest or "")}" data-off-topic-words="{_e(" ".join(g.off_words))}">'
            f'<p><b>{n}.</b> {g.size} question(s) <span class="muted">[{langs}; {kinds}]</span><br>'
            f"Closest entry: {closest} — {_e(advice(report, g))}</p><ul>{items}</ul></div>"
        )
    return "".join(out) or "<p>None in this period.</p>"


def render_html(report: Report, generated: str = "") -> str:
    """One self-contained page: inline CSS and SVG, no scripts, fonts or links to fetch."""
    r = report
    legend = "".join(
        f'<span><i style="background:{COLOURS[k]}"></i>{LABELS[k]}</span>' for k in (*RATE_KINDS, "smalltalk")
    )
    total_rates = " · ".join(f"{LABELS[k]} <b>{pct(r.total.rate(k))}</b>" for k in RATE_KINDS)
    top_rows = "".join(
        f'<tr><td>{e.shown}</td><td class="t">{_e(e.entry_id)}</td><td class="t">{_e(e.title)}</td></tr>' for e in r.top
    )
    fb_rows = "".join(
        f'<tr><td class="t">{_e(e.entry_id)}</td><td class="t">{_e(e.title)}</td>'
        f"<td>{e.helpful}</td><td>{e.not_helpful}</td></tr>"
        for e in r.feedback
    )
    days = [
        (span(first, last) + (f" ({(last - first).days + 1} days, no questions)" if first != last else ""), c)
        for first, last, c in day_rows(r)
    ]
    new_rows = "".join(
        f'<tr><td class="t">{_e(local(t.asked, r.timezone)) if t.asked else "–"}</td><td class="t">{_e(t.lang)}</td>'
        f'<td class="t">{_e(t.text)}</td></tr>'
        for t in r.new_topics
    )
    t = r.teaching
    sections = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Komek report {r.first_day} – {r.last_day}</title><style>{_CSS}</style></head><body>",
        f"<h1>Komek report {r.first_day} – {r.last_day}</h1>",
        f'<p class="muted">{r.days} days, days in {_e(r.timezone)} time. {_e(generated)}</p>',
        f'<p id="total" data-questions="{r.total.questions}">{r.total.questions} questions: {total_rates}; '
        f"small talk {r.total.n('smalltalk')}. Rates are shares of all questions.</p>",
        "<h2>Replies by day</h2>",
        f'<div class="legend">{legend}</div>',
        daily_chart(r),
        _counts_table(f"day ({_e(r.timezone)})", days),
        "<h2>By language</h2>",
        _counts_table("language", list(r.by_lang)) if r.by_lang else "<p>–</p>",
        "<h2>Urgent replies by crisis category</h2>",
        '<table id="crisis"><thead><tr><th class="t">category</th><th>replies</th></tr></thead><tbody>'
        + "".join(f'<tr><td class="t">{_e(c)}</td><td>{n}</td></tr>' for c, n in r.crisis)
        + "</tbody></table>"
        if r.crisis
        else "<p>–</p>",
        "<h2>Top entries</h2>",
        '<table id="top"><thead><tr><th>shown</th><th class="t">entry</th><th class="t">title</th></tr></thead>'
        f"<tbody>{top_rows}</tbody></table>"
        if r.top
        else "<p>–</p>",
        "<h2>Feedback per entry (👍 / 👎)</h2>",
        (
            feedback_chart(r) + '<table id="feedback"><thead><tr><th class="t">entry</th><th class="t">title</th>'
            f"<th>👍</th><th>👎</th></tr></thead><tbody>{fb_rows}</tbody></table>"
        )
        if r.feedback
        else "<p>No feedback in this period.</p>",
        f"<h2>Unanswered questions ({r.unanswered} to review)</h2>",
        '<p class="muted">Phone numbers, e-mails and document numbers were removed before storing. '
        f"{r.handled} more were already handled (taught, new topic or ignored) and are not listed. Teach a "
        "phrasing to an entry with /unanswered in Telegram or <code>python -m bot teach</code>.</p>",
        '<section id="possible-gaps">',
        f"<h3>Possible gaps ({_size(r.gaps)})</h3>",
        '<p class="muted">Questions about the FAQ\'s topics that no entry answered well: add the phrasings to '
        "the closest entry if it answers them, or write a new entry.</p>",
        _html_groups(r, r.gaps, "gap"),
        "</section>",
        '<section id="off-topic">',
        f"<h3>Off-topic ({_size(r.off_topic)})</h3>",
        '<p class="muted">Questions that name other services (weather, sport, shopping, phones…: the '
        "matcher's off-topic words). No entry is needed unless UNHCR wants to cover them.</p>",
        _html_groups(r, r.off_topic, "off-topic"),
        "</section>",
        "<h2>Teaching</h2>",
        f'<p id="teaching" data-taught="{t.get("taught", 0)}" data-new-topic="{t.get("new_topic", 0)}" '
        f'data-ignored="{t.get("ignored", 0)}">{_e(teaching_line(r))}</p>',
        f'<section id="new-topics"><h3>New topics for the next content review ({len(r.new_topics)})</h3>',
        f'<table><thead><tr><th class="t">asked ({_e(r.timezone)})</th><th class="t">language</th>'
        f'<th class="t">question</th></tr></thead><tbody>{new_rows}</tbody></table>'
        if r.new_topics
        else "<p>None in this period.</p>",
        "</section>",
        "</body></html>",
    ]
    return "\n".join(sections) + "\n"

"""Reviewing the questions the bot could not answer: what /unanswered and `python -m bot teach` list,
and what teaching a phrasing checks and writes. No Telegram here: bot/staff_teach.py (the buttons),
bot/cli.py (`teach`) and bot/console.py (`chat --db`) share it, so all three say the same things.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.dialogue import Knowledge
from bot.i18n import detect_language
from bot.matcher import Candidate
from bot.taught import TAUGHT_FILE, Taught, append_taught, clean_text, phrasing_key, text_problem

KIND_LABELS = {"fallback": "fallback", "did_you_mean": "did-you-mean"}
ACTION_LABELS = {"taught": "✓ taught", "new_topic": "🆕 new topic", "ignored": "✖ ignored"}
QUESTION_KINDS = ("answer", "did_you_mean", "fallback", "urgent", "smalltalk")  # as /stats and the report
DEFAULT_LIMIT = 10
MAX_LIMIT = 30


def parse_ts(ts: str) -> dt.datetime:
    """Storage's ISO 8601 UTC text → aware datetime."""
    value = dt.datetime.fromisoformat(ts)
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def local_time(ts: dt.datetime, tz: ZoneInfo) -> str:
    """A moment as staff read it, always with its zone: '2026-12-07 14:05 Asia/Almaty'."""
    return f"{ts.astimezone(tz):%Y-%m-%d %H:%M} {tz.key}"


@dataclass(frozen=True)
class Decision:
    action: str  # taught / new_topic / ignored
    entry_id: str | None
    lang: str | None
    by: str
    ts: dt.datetime


@dataclass(frozen=True)
class Question:
    """A stored question as staff review it. The same text asked several times is one question:
    the newest one's id stands for all (`count`), and a decision about any of them covers all."""

    id: int
    ts: dt.datetime
    lang: str
    kind: str
    text: str
    count: int
    decision: Decision | None


def decisions_by_text(
    rows: Iterable[tuple[str, int, str, str | None, str | None, str, str | None]],
) -> dict[str, Decision]:
    """Storage.teaching_decisions → the latest decision per question text (gone questions dropped)."""
    out: dict[str, Decision] = {}
    for ts, _, action, entry_id, lang, by, text in rows:
        if text is not None:
            out[text] = Decision(action, entry_id, lang, by, parse_ts(ts))
    return out


def questions_for_review(
    rows: Sequence[tuple[int, str, str, str, str]],
    decisions: dict[str, Decision],
    limit: int = DEFAULT_LIMIT,
) -> list[Question]:
    """Storage.recent_unanswered rows (newest first) → up to `limit` distinct questions, newest first."""
    counts = Counter(text for *_, text in rows)
    seen: dict[str, Question] = {}
    for qid, ts, lang, kind, text in rows:
        if text in seen:
            continue
        seen[text] = Question(qid, parse_ts(ts), lang, kind, text, counts[text], decisions.get(text))
        if len(seen) >= limit:
            break
    return list(seen.values())


def parse_limit(arg: str) -> int:
    """`/unanswered 20`: how many questions (default 10, at most 30)."""
    try:
        n = int(arg.strip() or DEFAULT_LIMIT)
    except ValueError:
        return DEFAULT_LIMIT
    return max(1, min(MAX_LIMIT, n))


# ---------------------------------------------------------------- what a question could be taught to


def closest_entries(k: Knowledge, text: str, n: int = 3) -> list[Candidate]:
    """The entries the bot's matcher ranks first for the question, best first."""
    return k.index.match(text, limit=n)


def title(k: Knowledge, entry_id: str, lang: str) -> str:
    entry = k.faq.entries.get(entry_id)
    if entry is None:
        return entry_id
    block = entry.langs.get(lang) or entry.langs.get(k.config.default_language)
    return block.title if block is not None else entry_id


def phrasing_lang(k: Knowledge, text: str, stored: str | None) -> str:
    """Which language block a phrasing joins: the language it is written in (the stored one is the
    reply's, which may be the user's chosen language rather than the text's), else the stored one."""
    return detect_language(text, k.config.languages) or k.lang(stored)


def teach_problem(k: Knowledge, entry_id: str, text: str) -> str | None:
    """Why `text` cannot be taught to `entry_id`, or None. `text` must already be clean_text()."""
    if entry_id not in k.faq.entries:
        return f"entry '{entry_id}' does not exist (any more)"
    problem = text_problem(text)
    if problem is not None:
        return problem
    if not k.index.content_terms(text):
        return "the phrasing has only filler words: there is nothing for the bot to learn"
    key = phrasing_key(text)
    for entry in k.faq.entries.values():
        for block in entry.langs.values():
            if any(phrasing_key(q) == key for q in block.questions):
                if entry.id == entry_id:
                    return f"'{entry_id}' already has this phrasing"
                return f"this phrasing is already a question of entry '{entry.id}': one entry per phrasing"
    return None


def teach(
    k: Knowledge, faq_dir: Path, question: Question, entry_id: str, by: str, today: dt.date
) -> tuple[Taught | None, str]:
    """Write the question's text, as a phrasing of `entry_id`, to faq/taught.yaml: (what was added,
    what to tell staff). Nothing is written when teach_problem finds a reason not to."""
    text = clean_text(question.text)
    problem = teach_problem(k, entry_id, text)
    if problem is not None:
        return None, f"Not taught: {problem}."
    item = Taught(entry_id, phrasing_lang(k, text, question.lang), text, today, by)
    try:
        append_taught(faq_dir / TAUGHT_FILE, item)
    except OSError as exc:
        return None, f"Not taught: {faq_dir / TAUGHT_FILE} cannot be written ({exc.strerror or exc})."
    return item, f"✓ Taught: “{text}” is now a question of {entry_id} ({item.lang})."


def confirm_text(k: Knowledge, question: Question, entry_id: str, staff_lang: str) -> str:
    """Exactly what teaching will add, before it is added."""
    text = clean_text(question.text)
    lang = phrasing_lang(k, text, question.lang)
    return (
        f"Teach the bot this phrasing?\n\nEntry: {entry_id} — {title(k, entry_id, staff_lang)}\n"
        f"Language: {lang}\nAdded to its questions, exactly:\n“{text}”\n\n"
        f"(written to faq/{TAUGHT_FILE}, which the bot reads with the rest of the FAQ)"
    )


# ---------------------------------------------------------------- text for staff


def question_text(q: Question, tz: ZoneInfo) -> str:
    """One question as /unanswered and `teach` show it (plain text; escape it for HTML)."""
    kind = KIND_LABELS.get(q.kind, q.kind)
    times = f" · asked {q.count}×" if q.count > 1 else ""
    return f"#{q.id} · {local_time(q.ts, tz)} · {q.lang or '?'} · {kind}{times}\n“{q.text}”"


def decision_text(d: Decision, tz: ZoneInfo) -> str:
    label = ACTION_LABELS.get(d.action, d.action)
    target = f" to {d.entry_id} ({d.lang})" if d.action == "taught" and d.entry_id else ""
    return f"{label}{target} by {d.by}, {local_time(d.ts, tz)}"


def review_header(tz: ZoneInfo, shown: int, handled: Sequence[tuple[Question, Decision]]) -> str:
    lines = [
        f"Unanswered questions, newest first (times in {tz.key}; phone numbers, e-mails and documents "
        "scrubbed before storing)."
    ]
    if shown:
        lines.append(
            "Under each: tap the entry that answers it to teach the bot this phrasing (you confirm first), "
            "🆕 to keep it for the next content review, ✖ to ignore it."
        )
    else:
        lines.append("None waiting." if handled else "No unanswered questions stored.")
    if handled:
        lines.append("\nAlready handled:")
        lines += [f"• #{q.id} “{q.text}”: {decision_text(d, tz)}" for q, d in handled]
    return "\n".join(lines)


def listing(k: Knowledge, items: Sequence[Question], tz: ZoneInfo, staff_lang: str) -> str:
    """The whole review as plain text, candidates numbered (for `python -m bot teach` and chat)."""
    handled = [(q, q.decision) for q in items if q.decision is not None]
    open_items = [q for q in items if q.decision is None]
    out = [review_header(tz, len(open_items), handled), ""]
    for q in open_items:
        out.append(question_text(q, tz))
        for n, c in enumerate(closest_entries(k, q.text), 1):
            out.append(f"   {n}. {c.entry_id} — {title(k, c.entry_id, staff_lang)} (score {c.score:.2f})")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


# ---------------------------------------------------------------- /stats

StatsReader = Callable[[dt.datetime], Awaitable[dict[str, Any] | None]]


def crisis_counts(stats: Mapping[str, Any]) -> str:
    """Urgent replies by crisis category, counts only: " (suicide 2, medical 1)"."""
    crisis = stats.get("crisis") or {}
    return f" ({', '.join(f'{c} {n}' for c, n in crisis.items())})" if crisis else ""


async def stats_text(read: StatsReader, now: dt.datetime, tz: ZoneInfo) -> str:
    """/stats: today (the office's day) and the last 7 days; `read(since)` is Storage.stats."""
    today = dt.datetime.combine(now.astimezone(tz).date(), dt.time(), tzinfo=tz)
    out = []
    for label, since in (("Today", today), ("Last 7 days", now - dt.timedelta(days=7))):
        stats = await read(since)
        if stats is None:
            return "Statistics are unavailable: the database cannot be read."
        kinds = stats["kinds"]
        total = sum(kinds.get(k, 0) for k in QUESTION_KINDS)

        def pct(kind: str, kinds: dict[str, int] = kinds, total: int = total) -> str:
            return f"{100 * kinds.get(kind, 0) / total:.0f}%" if total else "–"

        top = ", ".join(f"{e} ({n})" for e, n in stats["top"]) or "–"
        out.append(
            f"{label}: {total} questions; answered {pct('answer')}, did-you-mean {pct('did_you_mean')}, "
            f"fallback {pct('fallback')}; urgent {kinds.get('urgent', 0)}{crisis_counts(stats)}; "
            f"👍 {stats['helpful']} / 👎 {stats['not_helpful']}\n  top: {top}"
        )
    out.append(f"(days in {tz.key} time; now {local_time(now, tz)})")
    return "\n".join(out)
